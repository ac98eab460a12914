"""``livebokeh bench render``: halo, bokeh shape and speed of the renderer against the naive method.

- Halo: a person cut out with its soft alpha from ``portraits/`` is composited over a background
  photo; in a band 24 px wide outside the person, the mean absolute difference between the output
  and the background plate blurred alone (no person). The naive method (Gaussian-blur the whole
  frame, blend with the alpha) is measured the same way at the same blur size (sigma = radius / 2,
  the Gaussian with the disc's second moment).
- Bokeh: the share of a small bright light's energy (linear light) inside the configured radius,
  and the flatness of the disc's core.
- Speed: median ms to render a 1280x720 and a 1920x1080 frame, beside
  ``cv2.GaussianBlur(frame, (0, 0), 15)`` plus alpha blending on the same frame.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, table, time_per_item
from livebokeh.config import RenderConfig
from livebokeh.render import blur_background, blur_radius, composite, cover, render_bokeh, to_linear

BAND = 24


def background_photo(data: Path, size: tuple[int, int]) -> np.ndarray:
    """A real scene without people: the still with the least person in it, the person inpainted."""
    best = None
    for mask_path in sorted((data / "stills").glob("hs_*.png")):
        m = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if m is None or min(m.shape) < 300:
            continue
        share = float((m > 127).mean())
        if best is None or share < best[0]:
            best = (share, mask_path)
    if best is None:
        rng = np.random.default_rng(0)
        return cv2.GaussianBlur(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 2)
    photo = cv2.imread(str(best[1].with_suffix(".jpg")))
    person = cv2.dilate((cv2.imread(str(best[1]), cv2.IMREAD_GRAYSCALE) > 127).astype(np.uint8), np.ones((15, 15)))
    clean = cv2.inpaint(photo, person * 255, 7, cv2.INPAINT_TELEA) if person.any() else photo
    return cover(clean, size)


def place_person(photo: np.ndarray, alpha: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The portrait scaled to 90% of the frame height, bottom centre; returns (image, alpha) of ``size``."""
    w, h = size
    s = 0.9 * h / photo.shape[0]
    pw, ph = min(w, round(photo.shape[1] * s)), round(photo.shape[0] * s)
    p = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (pw, ph), interpolation=cv2.INTER_AREA)
    img = np.zeros((h, w, 3), np.uint8)
    al = np.zeros((h, w), np.float32)
    x0, y0 = (w - pw) // 2, h - ph
    img[y0:, x0 : x0 + pw] = p
    al[y0:, x0 : x0 + pw] = a
    return img, al


def halo(data: Path, cfg: RenderConfig, size: tuple[int, int] = (1280, 720), limit: int = 15) -> dict:
    bg = background_photo(data, size)
    radius = blur_radius(cfg, size[1])
    plate_ours = blur_background(bg, np.zeros(bg.shape[:2], np.float32), radius, cfg)
    plate_naive = cv2.GaussianBlur(bg, (0, 0), radius / 2)
    ours, naive = [], []
    for photo_path in sorted((data / "portraits").glob("p_*.jpg"))[:limit]:
        photo = cv2.imread(str(photo_path))
        alpha = cv2.imread(str(photo_path.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
        if photo is None or alpha is None:
            continue
        person, a = place_person(photo, alpha.astype(np.float32) / 255, size)
        frame = composite(person, bg, a)
        dist = cv2.distanceTransform((a <= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
        band = (dist > 0) & (dist <= BAND)
        out = render_bokeh(frame, a, cfg)
        ref = composite(frame, cv2.GaussianBlur(frame, (0, 0), radius / 2), a)
        ours.append(float(np.abs(out.astype(np.int16) - plate_ours)[band].mean()))
        naive.append(float(np.abs(ref.astype(np.int16) - plate_naive)[band].mean()))
    return {"portraits": len(ours), "mae_ours": float(np.mean(ours)), "mae_naive": float(np.mean(naive)),
            "ratio": float(np.mean(ours) / np.mean(naive))}


def bokeh(cfg: RenderConfig, size: tuple[int, int] = (1280, 720)) -> dict:
    """A 3x3 white light on black, blurred: how much of its energy stays inside the aperture's
    radius, how flat the disc is, and how bright (the 8-bit level of its core), beside the same
    light blurred on the encoded pixels (``linear = false``), where it fades to a grey smudge."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    y, x = h // 3, w // 3
    img[y - 1 : y + 2, x - 1 : x + 2] = 255
    no_person = np.zeros((h, w), np.float32)
    out = render_bokeh(img, no_person, dataclasses.replace(cfg, light_wrap=0.0))
    flat = render_bokeh(img, no_person, dataclasses.replace(cfg, light_wrap=0.0, linear=False))
    energy = to_linear(out).sum(axis=2)
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot(yy - y, xx - x)
    radius = blur_radius(cfg, h)
    inner = d <= 0.6 * radius
    core = energy[inner]
    return {"radius_px": radius, "energy_inside": float(energy[d <= radius].sum() / energy.sum()),
            "core_variation": float(core.std() / core.mean()), "core_level": float(out[inner].mean()),
            "core_level_encoded": float(flat[inner].mean())}


def speed(cfg: RenderConfig, size: tuple[int, int], runs: int = 40) -> dict:
    w, h = size
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    yy, xx = np.mgrid[:h, :w]
    alpha = np.clip(1.0 - np.hypot((yy - h) / (0.6 * h), (xx - w / 2) / (0.25 * w)), 0, 1).astype(np.float32)
    alpha = np.clip(alpha * 20, 0, 1)
    items = [frame] * runs
    ours = time_per_item(lambda f: render_bokeh(f, alpha, cfg), items)
    inv = np.float32(1.0) - alpha
    naive = time_per_item(lambda f: cv2.blendLinear(f, cv2.GaussianBlur(f, (0, 0), 15), alpha, inv), items)
    return {"size": f"{w}x{h}", "ms_ours": ours, "ms_naive": naive, "ratio": ours / naive}


def run(data: Path | None, cfg: RenderConfig | None = None) -> dict:
    cfg = cfg or RenderConfig()
    report = {"machine": machine(), "config": dataclasses.asdict(cfg)}
    if data is not None and (data / "portraits").is_dir():
        report["halo"] = halo(data, cfg)
    report["bokeh"] = bokeh(cfg)
    report["speed"] = [speed(cfg, (1280, 720)), speed(cfg, (1920, 1080))]
    return report


def render(report: dict) -> str:
    parts = []
    if "halo" in report:
        h = report["halo"]
        parts.append(
            f"halo, {BAND}-px band outside the person, {h['portraits']} portraits: MAE {h['mae_ours']:.2f} "
            f"vs naive {h['mae_naive']:.2f} (ratio {h['ratio']:.3f}; target <= 0.333)"
        )
    b = report["bokeh"]
    parts.append(
        f"bokeh: {100 * b['energy_inside']:.1f}% of a point's energy inside the {b['radius_px']:.1f}-px radius "
        f"(target >= 80%), core variation {b['core_variation']:.3f}, core level {b['core_level']:.0f} of 255 "
        f"(blurred on the encoded pixels: {b['core_level_encoded']:.0f})"
    )
    parts.append(table(report["speed"], [("size", "frame", ""), ("ms_ours", "livebokeh ms", ".2f"),
                                          ("ms_naive", "GaussianBlur(15)+blend ms", ".2f"), ("ratio", "ratio", ".2f")]))
    parts.append(report["machine"])
    return "\n\n".join(parts)
