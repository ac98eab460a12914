"""Validation: the trained v3+ against DeepLab-v3, MediaPipe and RVM on what was not trained on.

Each model's own output (one pass, no ROI or mirrored pass, as ``bench quality``'s "raw model
output" row), upsampled to the reference and taken at 0.5, scored with the IoU and Boundary IoU of
``../shared/data/README.md``:

- the validation clips, every frame the teacher kept (:data:`~.data.VALIDATION_CLIPS`): against
  the chroma key on ``d0_greenscreen`` (an exact reference, its letterbox rows left out), against
  the teacher (RVM at its best settings) on the others; a recurrent model sees every frame in order;
- the held-out portraits, against their own alpha mattes.

Clips are averaged with equal weight. The CPU cost is ``segment()`` on 1280x720 frames, v3 and v3+
taking turns frame by frame (one run on a shared machine: read the ratio, not the milliseconds).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.metrics import boundary_iou, chroma_key, iou, picture_area
from livebokeh.segment.deeplab.train import data as D

log = logging.getLogger(__name__)

#: Frames of ``office720p.mp4`` timed for the cost.
COST_FRAMES = 60


def segmenters(release: Path, decoder: Path, rvm_weights: str | None, threads: int) -> dict[str, Callable]:
    """label -> a factory of the segmenter compared."""
    from livebokeh.segment import DeepLabOptions, MediaPipeOptions, RVMOptions, SegmenterOptions, create_segmenter

    base = SegmenterOptions(threads=threads, serial_threads=threads, roi=False, live=False)

    def deeplab(decoder_setting: str):
        own = DeepLabOptions(weights=str(release), runtime="tflite", decoder=decoder_setting,
                             decoder_weights=str(decoder) if decoder_setting == "on" else "")
        return lambda: create_segmenter("deeplab", dataclasses.replace(base, own=own))

    return {
        "deeplab v3+": deeplab("on"),
        "deeplab v3": deeplab("off"),
        "mediapipe raw": lambda: create_segmenter("mediapipe", dataclasses.replace(base, own=MediaPipeOptions())),
        "rvm default (files)": lambda: create_segmenter("rvm", dataclasses.replace(
            base, own=RVMOptions(weights=rvm_weights or ""))),
    }


def _score(prob: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    up = cv2.resize(prob, (ref.shape[1], ref.shape[0]), interpolation=cv2.INTER_LINEAR) > 0.5
    return iou(up, ref), boundary_iou(up, ref)


def clips(seg, split: D.Split, teacher: dict[str, Path]) -> dict[str, dict]:
    """Per validation clip: mean IoU and Boundary IoU, frames scored, reference."""
    out = {}
    for clip in split.validation_clips:
        with np.load(teacher[clip.stem]) as z:
            keep = {int(t): a for t, a in zip(z["index"], z["alphas"])}
        keyed = clip.stem.endswith("greenscreen")
        area = None
        if keyed:
            area = picture_area([f for t, f in enumerate(D.clip_frames(clip)) if t in keep])
        seg.reset()
        ious, bious = [], []
        for t, frame in enumerate(D.clip_frames(clip)):
            if t not in keep and not seg.traits.stateful:
                continue
            prob = seg.model_output(frame)
            if t not in keep:
                continue
            if keyed:
                up = cv2.resize(prob, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)[area] > 0.5
                ref = chroma_key(frame)[area] > 0.5
                i, b = iou(up, ref), boundary_iou(up, ref)
            else:
                i, b = _score(prob, keep[t] > 127)
            ious.append(i)
            bious.append(b)
        out[clip.stem] = {"iou": float(np.mean(ious)), "biou": float(np.mean(bious)), "frames": len(ious),
                          "reference": "chroma key" if keyed else "RVM, best settings"}
    return out


def portraits(seg, split: D.Split) -> dict:
    """Mean IoU and Boundary IoU over the held-out portraits, and each photo's."""
    each = {}
    for p in split.validation_portraits:
        img = cv2.imread(str(p))
        ref = cv2.imread(str(p.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
        seg.reset()
        each[p.stem] = _score(seg.model_output(img), ref > 127)
    return {"iou": float(np.mean([v[0] for v in each.values()])), "biou": float(np.mean([v[1] for v in each.values()])),
            "photos": len(each), "each": {k: [round(v[0], 4), round(v[1], 4)] for k, v in each.items()}}


def cost(factories: dict[str, Callable], clip: Path, frames: int = COST_FRAMES) -> dict[str, float]:
    """Median ms of ``segment()`` per 1280x720 frame for each model, taking turns frame by frame."""
    images = []
    for f in D.clip_frames(clip):
        images.append(f)
        if len(images) >= frames:
            break
    segs = {k: f() for k, f in factories.items()}
    try:
        times: dict[str, list[float]] = {k: [] for k in segs}
        for img in images[:3]:
            for s in segs.values():
                s.segment(img)
        for img in images:
            for k, s in segs.items():
                t0 = time.perf_counter()
                s.segment(img)
                times[k].append(time.perf_counter() - t0)
    finally:
        for s in segs.values():
            s.close()
    return {k: float(np.median(v) * 1e3) for k, v in times.items()}


def evaluate(split: D.Split, teacher: dict[str, Path], release: Path, decoder: Path, rvm_weights: str | None,
             data: Path, threads: int = 2) -> dict:
    """Every figure of the model card (see the module text)."""
    factories = segmenters(release, decoder, rvm_weights, threads)
    models = {}
    for label, make in factories.items():
        with make() as seg:
            c = clips(seg, split, teacher)
            models[label] = {
                "clips": c,
                "clips_iou": float(np.mean([v["iou"] for v in c.values()])),
                "clips_biou": float(np.mean([v["biou"] for v in c.values()])),
                "portraits": portraits(seg, split) if split.validation_portraits else None,
            }
        log.info("evaluated %s", label)
    office = data / "videos" / "office720p.mp4"
    ms = cost({k: factories[k] for k in ("deeplab v3", "deeplab v3+")}, office) if office.is_file() else {}
    return {"models": models, "cost_ms_720p": ms, "targets": targets(models, ms)}


def targets(models: dict, ms: dict) -> dict:
    """The issue's targets, each with its margin (positive: met)."""
    plus, v3, mp = models["deeplab v3+"], models["deeplab v3"], models["mediapipe raw"]
    out = {}
    for where in ("clips", "portraits"):
        get = (lambda m, k: m[f"clips_{k}"]) if where == "clips" else (lambda m, k: (m["portraits"] or {}).get(k))
        if get(plus, "iou") is None:
            continue
        out[f"{where}: Boundary IoU >= MediaPipe raw's"] = get(plus, "biou") - get(mp, "biou")
        out[f"{where}: IoU >= DeepLab-v3's + 0.03"] = get(plus, "iou") - (get(v3, "iou") + 0.03)
    if ms:
        out["CPU cost <= 1.5x DeepLab-v3's"] = 1.5 - ms["deeplab v3+"] / ms["deeplab v3"]
    return {k: {"margin": float(v), "met": bool(v >= 0)} for k, v in out.items()}
