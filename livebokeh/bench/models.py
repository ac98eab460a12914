"""``livebokeh bench models``: segmenter speed and mask quality, every backend in one run.

Speed: median ms per frame of ``segment()`` (pre-processing and inference, the mask at model
resolution) on 1280x720 frames of a clip, in order. DeepLab appears twice, as Google released it
(v3) and with livebokeh's decoder (v3+, the default). Quality: IoU (probability > 0.5, upsampled to
the photo) against the reference masks of ``stills/``, all of them and the half-body subset, each
photo on its own (a stateful model is reset before each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import (
    half_body_ids,
    machine,
    missing_data,
    read_pairs,
    still_pairs,
    table,
    time_per_item,
    video_frames,
)
from livebokeh.bench.metrics import iou
from livebokeh.config import Config
from livebokeh.errors import LivebokehError
from livebokeh.segment import (
    DeepLabOptions,
    MediaPipeOptions,
    RVMOptions,
    SegmenterOptions,
    create_segmenter,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    label: str
    backend: str
    options: SegmenterOptions


def rows(cfg: Config, threads: int) -> list[Row]:
    """The rows, with the weights files of the settings ``cfg``."""
    base = SegmenterOptions(threads=threads, serial_threads=threads, frame_size=(1280, 720), roi=False)
    rvm = RVMOptions(weights=cfg.rvm.weights)
    v3plus = DeepLabOptions(weights=cfg.deeplab.weights, decoder="on", decoder_weights=cfg.deeplab.decoder_weights)
    v3 = DeepLabOptions(weights=cfg.deeplab.weights, decoder="off")
    return [
        Row("mediapipe general 256x256", "mediapipe", replace(base, own=MediaPipeOptions("general"))),
        Row("mediapipe general + ROI pass", "mediapipe", replace(base, own=MediaPipeOptions("general"), roi=True)),
        Row("mediapipe landscape 256x144", "mediapipe", replace(base, own=MediaPipeOptions("landscape"))),
        Row("deeplab v3 tflite 257x257", "deeplab", replace(base, own=replace(v3, runtime="tflite"))),
        Row("deeplab v3+ tflite 257x257", "deeplab", replace(base, own=replace(v3plus, runtime="tflite"))),
        Row("deeplab v3 TF graph 257x257", "deeplab",
            replace(base, own=replace(v3, runtime="keras", precision="float32"))),
        Row("deeplab v3+ TF graph 257x257", "deeplab",
            replace(base, own=replace(v3plus, runtime="keras", precision="float32"))),
        Row("deeplab v3+ TF graph 457x257 (16:9)", "deeplab",
            replace(base, own=replace(v3plus, runtime="keras", precision="float32", aspect="frame"))),
        Row("rvm live: 640 px, backbone 320", "rvm", replace(base, own=rvm)),
        Row("rvm files: 640 px, backbone 384", "rvm", replace(base, own=rvm, live=False)),
        Row("rvm --quality best: 640 px, backbone 512", "rvm", replace(base, own=replace(rvm, backbone=512), live=False)),
    ]


def run(data: Path, frames: int = 60, threads: int = 2, cfg: Config | None = None,
        stills_step: int = 1) -> dict:
    pairs = still_pairs(data)[::stills_step]
    if not pairs:  # the IoU columns are what this bench is for
        raise missing_data("stills", data / "stills", "stills/hs_*.jpg and their .png masks")
    clip = data / "videos" / "office720p.mp4"
    if clip.is_file():
        images = video_frames(clip, frames)
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8) for _ in range(frames)]
    half = set(half_body_ids(data))
    photos = [(img, ref > 127, int(p.stem.split("_")[1])) for img, ref, p in read_pairs(pairs)]
    if not photos:  # every pair left out (said, one line each)
        raise missing_data("stills", data / "stills", "stills/hs_*.jpg and their .png masks, readable and of one size")
    results = []
    for row in rows(cfg or Config(), threads):
        try:
            seg = create_segmenter(row.backend, row.options)
        except LivebokehError as err:
            log.warning("%s: skipped (%s)", row.label, err)
            results.append({"model": row.label, "error": str(err)})
            continue
        with seg:
            ms = time_per_item(lambda img: seg.segment(img), images)
            scores, half_scores = [], []
            for img, gt, n in photos:
                seg.reset()  # each photo on its own (a stateful model forgets the one before)
                prob = cv2.resize(seg.segment(img).data, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
                s = iou(prob > 0.5, gt)
                scores.append(s)
                if n in half:
                    half_scores.append(s)
        results.append({
            "model": row.label,
            "ms_per_frame": ms,
            "fps": 1000.0 / ms if ms else None,
            "iou_stills": float(np.mean(scores)) if scores else None,
            "iou_half_body": float(np.mean(half_scores)) if half_scores else None,
            "stills": len(scores),
        })
        log.info("%s: %.1f ms", row.label, ms)
    return {"machine": machine(), "frames": len(images), "threads": threads, "rows": results}


COLUMNS = [
    ("model", "model", ""),
    ("ms_per_frame", "ms/frame (1280x720 in)", ".1f"),
    ("fps", "frames/s", ".0f"),
    ("iou_stills", "IoU stills", ".3f"),
    ("iou_half_body", "IoU half-body", ".3f"),
]


def render(report: dict) -> str:
    return f"{table(report['rows'], COLUMNS)}\n\n{report['frames']} frames timed, {report['threads']} threads; {report['machine']}"
