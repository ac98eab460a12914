"""The training run's stages, each cached in the work folder (see the package text)."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from livebokeh.segment.deeplab.train import data as D

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Everything a training run depends on (logged in the report)."""

    seed: int = 0
    #: Pictures per training frame or portrait: one plain, the others composited (8 measured better
    #: than 4 on every validation figure).
    variants: int = 8
    #: Of the teacher's runs on a training clip, every n-th becomes a training frame.
    keep_every: int = 3
    #: Of the teacher's runs on a validation clip, every n-th is scored.
    eval_every: int = 2
    #: Each portrait trained on is used this many times more than a clip frame (they are few).
    portrait_repeat: int = 16
    #: ``half``: every other portrait trained on, the others held out (their real scenes and
    #: people measured better on the held-out ones than none); ``none``: all held out.
    portraits: str = "half"
    train_aspp: bool = False
    prior: bool = True
    decoder_channels: int = 64
    skip_channels: int = 48
    steps: int = 800
    batch: int = 16
    crop: int = 33
    lr: float = 2e-3
    weight_decay: float = 1e-4
    edge_weight: float = 2.0
    threads: int = 2


def clip_key(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}"


def teacher_stage(split: D.Split, work: Path, s: Settings, rvm_weights: str | None) -> dict[str, Path]:
    """The teacher's frames and mattes for every clip of ``split``; returns clip stem -> npz."""
    out: dict[str, Path] = {}
    seg = None
    try:
        for clip in split.train_clips + split.validation_clips:
            keep = s.keep_every if clip in split.train_clips else s.eval_every
            key = {"clip": clip_key(clip), "size": D.TEACHER_SIZE, "backbone": D.TEACHER_BACKBONE, "keep": keep,
                   "max_runs": D.TEACHER_MAX_RUNS, "settle": D.TEACHER_SETTLE}
            path = work / "teacher" / f"{clip.stem}.npz"
            if path.is_file():
                with np.load(path) as z:
                    if json.loads(str(z["key"])) == key:
                        out[clip.stem] = path
                        continue
            if seg is None:
                seg = D.teacher(rvm_weights, s.threads)
            got = D.distil_clip(clip, seg, keep)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".part.npz")
            np.savez(tmp, key=np.array(json.dumps(key)), **got)
            tmp.replace(path)
            out[clip.stem] = path
    finally:
        if seg is not None:
            seg.close()
    return out


def training_sources(split: D.Split, teacher: dict[str, Path], s: Settings) -> list[D.Source]:
    """Every training picture with its target alpha (and foreground colours)."""
    out = []
    for clip in split.train_clips:
        with np.load(teacher[clip.stem]) as z:
            for f, a, t in zip(z["frames"], z["alphas"], z["index"]):
                out.append(D.source(f"{clip.stem}#{int(t)}", f, a))
    for p in split.train_portraits:
        img, alpha = D.read_portrait(p)
        src = D.source(p.stem, img, alpha)
        out.extend([src] * s.portrait_repeat)
    return out


def pictures(sources: list[D.Source], s: Settings) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """The augmented pictures, in a fixed order from ``s.seed``: per source one plain and
    ``variants - 1`` composites over backgrounds (the training pictures with the person taken
    out: about 120 clip frames and every portrait, whose scenes are the only real clutter here;
    and twice as many made-up ones)."""
    rng = np.random.default_rng([s.seed, 1])
    distinct = list({id(x): x for x in sources}.values())
    frames = [x for x in distinct if "#" in x.name]  # clip frames are named clip#frame
    photos = [x for x in distinct if "#" not in x.name]
    chosen = frames[:: max(1, len(frames) // 120)] + photos
    backgrounds = [D.empty_background(x.image, x.alpha) for x in chosen]
    backgrounds += [D.synthetic_background(rng) for _ in range(2 * len(backgrounds))]
    for src in sources:
        for v in range(s.variants):
            yield D.augment(src, backgrounds, rng, plain=v == 0)


def features_stage(split: D.Split, teacher: dict[str, Path], work: Path, s: Settings, release: Path):
    """The feature cache of the training pictures (made again when its inputs changed)."""
    from livebokeh.segment.deeplab.train import features as F

    key = {"split": split.describe(), "teacher": {k: digest(v) for k, v in sorted(teacher.items())
                                                  if k in {c.stem for c in split.train_clips}},
           "release": digest(release), "seed": s.seed, "variants": s.variants,
           "portrait_repeat": s.portrait_repeat,
           "augment": _digest_source(D) + _digest_source(sys.modules[__name__])}
    folder = work / "features"
    cache = F.matches(folder, key)
    if cache is not None:
        log.info("features: %d samples cached in %s", cache.n, folder)
        return cache
    sources = training_sources(split, teacher, s)
    count = len(sources) * s.variants
    log.info("features: %d pictures from %d training frames and portraits", count, len(sources))
    # the backbone's output too, always: a run with --train-aspp shares the cache
    return F.build(folder, pictures(sources, s), count, release, s.threads, True, key)


def digest(path: Path) -> str:
    """The first 16 hex digits of a file's sha256."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def _digest_source(module) -> str:
    """The augmentation code's hash: a cache made by other code is made again."""
    return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]


@dataclass
class Report:
    settings: dict
    split: dict
    files: dict = field(default_factory=dict)
    fit: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
