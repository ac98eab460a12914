"""Training data for the v3+ decoder: which files, the teacher's mattes, backgrounds, augmentation.

Only material this project may ship a model of: the MIT-licensed talking-head clips (``videos/``)
and portraits (``portraits/``) of the evaluation data. Never ``stills/`` (its masks come from a
commercial service). Whole clips are kept out for validation (:data:`VALIDATION_CLIPS`).

Targets: Robust Video Matting at its best settings (the clip at its own resolution, the backbone
at 512 px, every sampled frame after its memory has settled on the clip), i.e. distillation; the
portraits bring their own alpha mattes. Pure functions of their inputs and a seeded
``numpy.random.Generator``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

#: Clips never trained on. ``d0_greenscreen`` has an exact reference (its chroma key); ``d12`` is
#: an office, ``d20`` foliage behind the person; ``office720p`` is ``d12`` cropped and scaled, so it
#: goes with it.
VALIDATION_CLIPS: tuple[str, ...] = ("d0_greenscreen", "d12", "d20")
#: Clips used for neither (the same footage as a validation clip).
EXCLUDED_CLIPS: tuple[str, ...] = ("office720p",)
#: Portraits trained on with ``--portraits half`` (the others are validation); by default none are.
PORTRAIT_TRAIN_SHARE = 0.5

#: The teacher: RVM's input long side (large enough that the clips run at their own size) and
#: its backbone's (``--quality best``).
TEACHER_SIZE = 1024
TEACHER_BACKBONE = 512
#: RVM runs at most this many times a clip (on every n-th frame); its memory settles over the
#: first :data:`TEACHER_SETTLE` runs, which give no sample.
TEACHER_MAX_RUNS = 240
TEACHER_SETTLE = 8


@dataclass(frozen=True)
class Split:
    """The files of one training run: what is trained on and what is held out."""

    train_clips: tuple[Path, ...]
    validation_clips: tuple[Path, ...]
    train_portraits: tuple[Path, ...]
    validation_portraits: tuple[Path, ...]

    def describe(self) -> dict:
        names = lambda ps: [p.name for p in ps]  # noqa: E731
        return {k: names(v) for k, v in dataclasses.asdict(self).items()}


def split(data: Path, portraits: str = "none") -> Split:
    """The split of ``data`` (a folder with ``videos/`` and ``portraits/``).

    Args:
        portraits: ``none`` (all portraits held out) or ``half`` (every other one, in name order,
            trained on).
    """
    clips = sorted((data / "videos").glob("*.mp4"))
    val = tuple(c for c in clips if c.stem in VALIDATION_CLIPS)
    train = tuple(c for c in clips if c.stem not in VALIDATION_CLIPS + EXCLUDED_CLIPS)
    photos = sorted(p for p in (data / "portraits").glob("*.jpg") if p.with_suffix(".png").is_file())
    if portraits == "half":
        tp, vp = tuple(photos[::2]), tuple(photos[1::2])
    elif portraits == "none":
        tp, vp = (), tuple(photos)
    else:
        raise ValueError(f"portraits must be none or half, got {portraits!r}")
    return Split(train, val, tp, vp)


# -- the teacher -----------------------------------------------------------------------------------


def clip_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a clip, in order, ``(H, W, 3)`` uint8 BGR."""
    import av

    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="bgr24")


def frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        n = c.streams.video[0].frames
    return n or sum(1 for _ in clip_frames(path))


def teacher(rvm_weights: str | None, threads: int = 2):
    """RVM at its best settings, reading files (see the module text)."""
    from livebokeh.segment import RVMOptions, SegmenterOptions, create_segmenter

    return create_segmenter("rvm", SegmenterOptions(
        threads=threads, serial_threads=threads, live=False, roi=False,
        own=RVMOptions(weights=rvm_weights or "", backbone=TEACHER_BACKBONE, size=TEACHER_SIZE)))


def distil_clip(path: Path, seg, keep_every: int, max_runs: int = TEACHER_MAX_RUNS,
                settle: int = TEACHER_SETTLE) -> dict[str, np.ndarray]:
    """Frames of a clip with the teacher's alpha.

    The teacher runs on every ``stride``-th frame (``stride`` such that it runs at most
    ``max_runs`` times, so its memory spans the whole clip); after ``settle`` runs every
    ``keep_every``-th run is kept.

    Returns:
        ``frames`` ``(N, H, W, 3)`` uint8, ``alphas`` ``(N, H, W)`` uint8 (alpha x 255) and
        ``index`` ``(N,)`` (frame numbers).
    """
    n = frame_count(path)
    stride = max(1, math.ceil(n / max_runs))
    seg.reset()
    frames, alphas, index = [], [], []
    run = 0
    for t, frame in enumerate(clip_frames(path)):
        if t % stride:
            continue
        alpha = seg.segment(frame).data
        if alpha.shape != frame.shape[:2]:
            alpha = cv2.resize(alpha, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
        if run >= settle and (run - settle) % keep_every == 0:
            frames.append(frame)
            alphas.append(np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8))
            index.append(t)
        run += 1
    log.info("%s: teacher ran on %d of %d frames (every %d), %d kept", path.name, run, n, stride, len(frames))
    return {"frames": np.stack(frames), "alphas": np.stack(alphas), "index": np.array(index)}


def read_portrait(path: Path, long_side: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """A portrait and its alpha (uint8), the long side brought down to ``long_side``."""
    img = cv2.imread(str(path))
    alpha = cv2.imread(str(path.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
    if img is None or alpha is None or alpha.shape != img.shape[:2]:
        raise ValueError(f"{path}: unreadable, or its alpha has another size")
    s = long_side / max(img.shape[:2])
    if s < 1:
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return img, alpha


# -- backgrounds -----------------------------------------------------------------------------------


def empty_background(image: np.ndarray, alpha: np.ndarray, size: int = 256) -> np.ndarray:
    """The picture with the person taken out: the background around them filled in (push-pull,
    :func:`livebokeh.render.unmix.background_estimate`), ``(h, w, 3)`` uint8 with the long side
    ``size``."""
    from livebokeh.render.unmix import background_estimate

    h, w = alpha.shape
    s = size / max(h, w)
    small = (max(8, round(w * s)), max(8, round(h * s)))
    a = cv2.resize(alpha.astype(np.float32) / 255, small, interpolation=cv2.INTER_AREA)
    a = cv2.dilate(a, np.ones((5, 5), np.uint8))  # no hair left behind
    return np.clip(background_estimate(image, a) + 0.5, 0, 255).astype(np.uint8)


def synthetic_background(rng: np.random.Generator, size: tuple[int, int] = (384, 256)) -> np.ndarray:
    """A made-up background with no person, ``(h, w, 3)`` uint8, of one of four kinds: a room
    (muted gradient, rectangles and lines: shelves, doors, windows, screens), foliage (hundreds of
    leaf-like blobs and branches, sky between), clutter (shelves of small boxes, like books) or a
    regular pattern (blinds, tiles); then sometimes out of focus, and a little sensor noise.

    The clips' own backgrounds are plain walls: without textured backgrounds the decoder learns
    that texture means person."""
    w, h = size
    kind = rng.choice(["room", "foliage", "clutter", "pattern"], p=[0.3, 0.3, 0.2, 0.2])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def colour(lo: float = 30, hi: float = 230, spread: float = 45) -> tuple[float, float, float]:
        grey = rng.uniform(lo, hi)
        return tuple(float(v) for v in np.clip(grey + rng.normal(0, rng.uniform(5, spread), 3), 0, 255))

    c0, c1 = np.array(colour()), np.array(colour())
    ang = rng.uniform(0, 2 * np.pi)
    g = ((xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang) + 0.5).clip(0, 1)[:, :, None]
    img = (c0 * (1 - g) + c1 * g).astype(np.float32)
    if kind == "room":
        blotch = rng.normal(0, rng.uniform(3, 15), (max(2, h // 48), max(2, w // 48), 1)).astype(np.float32)
        img += cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC)[:, :, None]
        for _ in range(int(rng.integers(2, 14))):
            x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
            x1, y1 = x0 + int(rng.integers(6, w // 2)), y0 + int(rng.integers(6, h // 2))
            if rng.random() < 0.75:
                cv2.rectangle(img, (x0, y0), (x1, y1), colour(), -1)
            else:
                cv2.line(img, (x0, y0), (x1, y1), colour(), int(rng.integers(1, 6)))
    elif kind == "foliage":
        hue = rng.uniform(0.3, 1.0)  # from autumn brown to green
        for _ in range(int(rng.integers(150, 700))):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(2, 18)), int(rng.integers(1, 9)))
            level = rng.uniform(0.15, 1.0)
            leaf = (level * rng.uniform(20, 90), level * (90 + 130 * hue) * rng.uniform(0.6, 1.0),
                    level * rng.uniform(40, 140) * (1.2 - hue))
            cv2.ellipse(img, centre, axes, rng.uniform(0, 180), 0, 360, leaf, -1)
        for _ in range(int(rng.integers(0, 12))):
            pts = np.cumsum(rng.normal(0, 12, (8, 2)), axis=0) + rng.uniform(0, [w, h])
            cv2.polylines(img, [pts.astype(np.int32)], False, colour(20, 90, 15), int(rng.integers(1, 5)))
    elif kind == "clutter":
        y = int(rng.integers(0, 20))
        while y < h:
            row = int(rng.integers(18, 60))
            x = int(rng.integers(-10, 10))
            while x < w:
                bw = int(rng.integers(3, 20))
                cv2.rectangle(img, (x, y + int(rng.integers(0, row // 3))), (x + bw, y + row), colour(10, 240, 70), -1)
                x += bw + int(rng.integers(0, 4))
            cv2.rectangle(img, (0, y + row), (w, y + row + int(rng.integers(2, 8))), colour(), -1)
            y += row + int(rng.integers(6, 14))
    else:
        period = rng.uniform(4, 40)
        theta = rng.uniform(0, np.pi)
        phase = (xx * np.cos(theta) + yy * np.sin(theta)) / period
        wave = (np.sin(2 * np.pi * phase) > rng.uniform(-0.5, 0.5)).astype(np.float32)[:, :, None]
        img = img * (1 - wave) + np.array(colour()) * wave
    if rng.random() < 0.35:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.5, 8))
    img += rng.normal(0, rng.uniform(0.5, 4), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


# -- augmentation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A picture to make training samples of: the image, its alpha (uint8) and the image's
    foreground colours (the old background taken out of the edge)."""

    name: str
    image: np.ndarray
    alpha: np.ndarray
    foreground: np.ndarray


def source(name: str, image: np.ndarray, alpha: np.ndarray) -> Source:
    from livebokeh.render.unmix import unmix_foreground

    return Source(name, image, alpha, unmix_foreground(image, alpha.astype(np.float32) / 255))


#: Shapes of the frames a webcam gives (width / height): the model sees every frame squeezed to a
#: square, so the person must be seen squeezed as they will be.
ASPECTS = (1.0, 4 / 3, 16 / 9)
ASPECT_P = (0.3, 0.3, 0.4)


def augment(src: Source, backgrounds: list[np.ndarray], rng: np.random.Generator,
            plain: bool, canvas_height: int = 320) -> tuple[np.ndarray, np.ndarray, dict]:
    """One training picture made from ``src``.

    ``plain``: the picture itself, cropped (zoom 1 to 1.3) and flipped at random. Otherwise the
    person (its foreground colours and alpha) composited over a random background in a frame of
    a random webcam shape, at a random scale and place, standing on the bottom edge. Then colour
    (brightness, contrast, gamma, saturation, hue), noise, blur and JPEG at random.

    Returns:
        ``(image, alpha, params)``: ``(H, W, 3)`` uint8 BGR, ``(H, W)`` float32 in ``[0, 1]``, and
        what was drawn (for the log).
    """
    p: dict = {"source": src.name, "plain": plain}
    if plain:
        h, w = src.alpha.shape
        zoom = rng.uniform(1.0, 1.3)
        ch, cw = round(h / zoom), round(w / zoom)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = src.image[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32)
        alpha = src.alpha[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32) / 255
        p.update(zoom=round(zoom, 3))
    else:
        aspect = float(rng.choice(ASPECTS, p=ASPECT_P))
        H, W = canvas_height, round(canvas_height * aspect)
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        bg = _cover(bg, (W, H), rng)
        # the person's height in the frame: from a small figure to a close-up that overflows the top
        scale = rng.uniform(0.45, 1.25)
        h = round(H * scale)
        w = round(src.alpha.shape[1] * h / src.alpha.shape[0])
        fg = cv2.resize(src.foreground, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        a = cv2.resize(src.alpha, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        if rng.random() < 0.3:  # lit differently from the room
            fg = fg * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20)
        x0 = int(rng.integers(-w // 3, W - 2 * w // 3 + 1))
        img, alpha = bg.astype(np.float32), np.zeros((H, W), np.float32)
        _paste(img, alpha, fg, a, x0, H - h)
        p.update(aspect=round(aspect, 3), scale=round(scale, 3), x0=x0)
    if rng.random() < 0.5:
        img, alpha = img[:, ::-1], alpha[:, ::-1]
        p["flip"] = True
    img = _photometric(img, rng, p)
    return img, np.ascontiguousarray(alpha), p


def _cover(bg: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``bg`` scaled to cover ``size = (w, h)``, flipped at random."""
    W, H = size
    h, w = bg.shape[:2]
    s = max(W / w, H / h) * rng.uniform(1.0, 1.6)
    big = cv2.resize(bg, (max(W, math.ceil(w * s)), max(H, math.ceil(h * s))), interpolation=cv2.INTER_LINEAR)
    y0, x0 = int(rng.integers(0, big.shape[0] - H + 1)), int(rng.integers(0, big.shape[1] - W + 1))
    out = big[y0 : y0 + H, x0 : x0 + W]
    return out[:, ::-1] if rng.random() < 0.5 else out


def _paste(img: np.ndarray, alpha: np.ndarray, fg: np.ndarray, a: np.ndarray, x0: int, y0: int) -> None:
    """Composite ``fg`` with alpha ``a`` into ``img`` at ``(x0, y0)`` (clipped to the frame), in place."""
    H, W = alpha.shape
    h, w = a.shape
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(H, y0 + h), min(W, x0 + w)
    if ye <= ys or xe <= xs:
        return
    sub_a = a[ys - y0 : ye - y0, xs - x0 : xe - x0][:, :, None]
    sub_f = fg[ys - y0 : ye - y0, xs - x0 : xe - x0]
    img[ys:ye, xs:xe] = sub_f * sub_a + img[ys:ye, xs:xe] * (1 - sub_a)
    alpha[ys:ye, xs:xe] = np.maximum(alpha[ys:ye, xs:xe], sub_a[:, :, 0])


def _photometric(img: np.ndarray, rng: np.random.Generator, p: dict) -> np.ndarray:
    """Colour, noise, blur and compression at random; float32 in, uint8 out."""
    x = img.astype(np.float32) / 255
    gain, bias, gamma = rng.uniform(0.7, 1.3), rng.uniform(-0.08, 0.08), rng.uniform(0.75, 1.35)
    x = np.clip(x * gain + bias, 0, 1) ** gamma
    u8 = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(u8, cv2.COLOR_BGR2HSV).astype(np.float32)
    hue, sat = rng.uniform(-8, 8), rng.uniform(0.6, 1.35)
    hsv[:, :, 0] = (hsv[:, :, 0] + hue) % 180
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * sat, 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    noise = rng.uniform(0, 6)
    if noise > 1:
        out += rng.normal(0, noise, out.shape).astype(np.float32)
    blur = rng.random() < 0.2
    if blur:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    quality = int(rng.integers(40, 95)) if rng.random() < 0.5 else 0
    if quality:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    p.update(gain=round(gain, 3), bias=round(bias, 3), gamma=round(gamma, 3), hue=round(hue, 2), sat=round(sat, 3),
             noise=round(noise, 2), blur=blur, jpeg=quality)
    return out
