"""``livebokeh bench render``: halo, bokeh shape and speed of the renderer against the naive method.

- Halo: a person cut out with its soft alpha from ``portraits/`` is composited over a background
  photo; in a band 24 px wide outside the person, the mean absolute difference between the output
  and the background plate blurred alone (no person). The naive method (Gaussian-blur the whole
  frame, blend with the alpha) is measured the same way at the same blur size (sigma = radius / 2,
  the Gaussian with the disc's second moment).
- Bokeh: the share of a small bright light's energy (linear light) inside the configured radius,
  and the flatness of the disc's core.
- Replacement colours: the colour error at the person's edge when the background is replaced,
  against the exact composite (:func:`replacement`).
- Speed: median ms to render a 1280x720 and a 1920x1080 frame, beside
  ``cv2.GaussianBlur(frame, (0, 0), 15)`` plus alpha blending on the same frame.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, read_pair, read_still, table, time_per_item
from livebokeh.config import Config, RenderConfig, with_backend
from livebokeh.errors import printable
from livebokeh.render import blur_background, blur_radius, composite, cover, render_bokeh, to_linear

log = logging.getLogger(__name__)

BAND = 24


def scene_photo(data: Path | None) -> tuple[np.ndarray | None, list[str]]:
    """A real scene without people, at its own size: the still with the least person in it
    (``stills/hs_*.png`` of 300 px or more each way, with its photo), the person inpainted; None
    when no still can be used. And a line for each still left out on the way (its photo missing,
    damaged or a pipe, its mask unreadable or of another size:
    :func:`~livebokeh.bench.common.read_pair`), and one saying so when none could be used."""
    if data is None or not (data / "stills").is_dir():
        return None, []
    masks = sorted((data / "stills").glob("hs_*.png"))
    shares, left = [], []
    for mask_path in masks:
        m = read_still(mask_path, gray=True)
        if isinstance(m, str):
            left.append(f"still {mask_path.with_suffix('.jpg').name} for the background scene: its mask "
                        f"{mask_path.name} {m}")
            continue
        if min(m.shape) >= 300:
            shares.append((float((m > 127).mean()), mask_path))
    for _share, mask_path in sorted(shares):
        pair = read_pair(mask_path.with_suffix(".jpg"), mask_path)
        if isinstance(pair, str):
            left.append(f"still {mask_path.with_suffix('.jpg').name} for the background scene: {pair}")
            continue
        photo, mask = pair
        person = cv2.dilate((mask > 127).astype(np.uint8), np.ones((15, 15)))
        return (cv2.inpaint(photo, person * 255, 7, cv2.INPAINT_TELEA) if person.any() else photo), left
    if masks:  # (none at all: said by missing_data)
        left.append(f"the background scene: no still of {data} could be used, so the halo and replacement are "
                    "measured over a noise texture instead of a real room")
    return None, left


def background_photo(data: Path | None, size: tuple[int, int], scene: np.ndarray | None = None) -> np.ndarray:
    """:func:`scene_photo` covering ``size``, or a noise texture without one. ``scene``: the
    scene already read (its lines said); without it, read here, its lines logged."""
    if scene is None:
        scene, left = scene_photo(data)
        for line in left:
            log.warning("left out: %s", printable(line, newlines=False))
    if scene is None:
        rng = np.random.default_rng(0)
        return cv2.GaussianBlur(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 2)
    return cover(scene, size)


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


#: Portraits each measurement takes (the first, by name).
PORTRAITS = 15


def load_portraits(data: Path, limit: int = PORTRAITS) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """The first ``limit`` portraits of ``data/portraits`` (``p_*.jpg`` with its matte ``p_*.png``)
    as ``(photo, alpha)`` (uint8 BGR, float32 in ``[0, 1]``), and a line for each one left out
    (:func:`~livebokeh.bench.common.read_pair`: a photo cut short, damaged, unreadable or a pipe, a
    matte missing, unreadable or of another size)."""
    kept, left = [], []
    for photo_path in sorted((data / "portraits").glob("p_*.jpg"))[:limit]:
        pair = read_pair(photo_path, photo_path.with_suffix(".png"), "matte")
        if isinstance(pair, str):
            left.append(f"portrait {photo_path.name}: {pair}; measured without it")
            continue
        kept.append((pair[0], pair[1].astype(np.float32) / 255))
    return kept, left


def halo(data: Path, cfg: RenderConfig, size: tuple[int, int] = (1280, 720), limit: int = PORTRAITS,
         portraits: list[tuple[np.ndarray, np.ndarray]] | None = None, scene: np.ndarray | None = None) -> dict:
    """The halo measurement (module text) on ``portraits`` (default: :func:`load_portraits`), over
    ``scene`` (default: :func:`scene_photo`)."""
    bg = background_photo(data, size, scene)
    radius = blur_radius(cfg, size[1])
    plate_ours = blur_background(bg, np.zeros(bg.shape[:2], np.float32), radius, cfg)
    plate_naive = cv2.GaussianBlur(bg, (0, 0), radius / 2)
    ours, naive = [], []
    for photo, alpha in portraits if portraits is not None else load_portraits(data, limit)[0]:
        person, a = place_person(photo, alpha, size)
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


#: Width, in pixels of a 1280x720 frame, of the band around the person's partly transparent
#: edge where the replacement's colour error is measured.
EDGE_BAND = 2


def _new_background(size: tuple[int, int]) -> np.ndarray:
    """The replacement: a blue-to-orange gradient with a fine texture (like neither old background)."""
    w, h = size
    t = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    blue, orange = np.array([200, 90, 30], np.float32), np.array([40, 140, 240], np.float32)
    grad = np.broadcast_to(blue + (orange - blue) * t, (h, w, 3))
    noise = cv2.GaussianBlur(np.random.default_rng(3).normal(0, 12, (h, w, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(grad + noise, 0, 255).astype(np.uint8)


def _alphas(portraits: list[tuple[np.ndarray, np.ndarray]], settings: Config, backends: Sequence[str],
            frames: list[np.ndarray]) -> dict[str, list[np.ndarray] | str]:
    """Each backend's alpha for each frame (as a still: a fresh memory, the mirror pass), at the
    refinement's working size with its default mask settings; an error text when it cannot run."""
    from livebokeh.config import MaskConfig
    from livebokeh.errors import LivebokehError
    from livebokeh.mask import refine_alpha, resolve_auto
    from livebokeh.segment import SegmenterOptions, create_segmenter

    out: dict[str, list[np.ndarray] | str] = {}
    for backend in backends:
        opts = SegmenterOptions.from_config(with_backend(settings, backend), (1280, 720), still=True, live=False)
        try:
            seg = create_segmenter(backend, opts)
        except LivebokehError as err:
            out[backend] = str(err)
            continue
        with seg:
            mask_cfg = resolve_auto(MaskConfig(), seg.traits)
            alphas = []
            for frame in frames:
                seg.reset()
                alphas.append(refine_alpha(seg.segment(frame).data, frame, mask_cfg, full_size=False))
        out[backend] = alphas
    return out


def replacement(data: Path, cfg: RenderConfig, settings: Config | None = None,
                backends: Sequence[str] = ("mediapipe", "rvm"), size: tuple[int, int] = (1280, 720),
                limit: int = PORTRAITS, portraits: list[tuple[np.ndarray, np.ndarray]] | None = None,
                scene: np.ndarray | None = None) -> dict:
    """Background replacement's colour error at the person's edge, against the exact composite.

    Each portrait is put, with its alpha matte, over an old background (a keying green, and a real
    scene), and livebokeh replaces that background with another (:func:`_new_background`). The
    reference is the portrait put over the new one with its own matte. The error is the mean
    absolute difference (8-bit levels, all channels) in the band around the matte's partly
    transparent pixels (:data:`EDGE_BAND` px wide on each side): where hair carries the old
    background. Rows: with the reference alpha (colours alone) and with each backend's alpha (what a
    user gets), each with the colours as captured (``render.unmix = false``, livebokeh before it
    unmixed) and unmixed. Light wrap off (it changes the edge on purpose).
    """
    cfg = dataclasses.replace(cfg, effect="replace", light_wrap=0.0)
    olds = {"green": np.broadcast_to(np.array([64, 177, 0], np.uint8), (size[1], size[0], 3)),
            "scene": background_photo(data, size, scene)}
    new = _new_background(size)
    cases = []  # (old background name, frame, reference alpha, band, reference composite)
    placed = [place_person(photo, alpha, size)
              for photo, alpha in (portraits if portraits is not None else load_portraits(data, limit)[0])]
    for name, old in olds.items():
        for person, a in placed:
            edge = ((a > 1 / 255) & (a < 254 / 255)).astype(np.uint8)
            band = cv2.dilate(edge, np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)) > 0
            cases.append((name, composite(person, old, a), a, band, composite(person, new, a)))
    alphas: dict[str, list[np.ndarray] | str] = {"reference alpha": [c[2] for c in cases]}
    alphas.update(_alphas(placed, settings or Config(), backends, [c[1] for c in cases]))
    rows = []
    for source, per_case in alphas.items():
        if isinstance(per_case, str):
            rows.append({"alpha": source, "error": per_case})
            continue
        for unmixed in (False, True):
            row: dict = {"alpha": source, "colours": "unmixed" if unmixed else "as captured"}
            for name in olds:
                errs = [float(np.abs(render_bokeh(frame, alpha, dataclasses.replace(cfg, unmix=unmixed), new)
                                     .astype(np.int16) - ref)[band].mean())
                        for (n, frame, _, band, ref), alpha in zip(cases, per_case) if n == name]
                row[f"error_{name}"] = float(np.mean(errs))
            rows.append(row)
    base = next((r for r in rows if r["alpha"] == "mediapipe" and r.get("colours") == "as captured"), None)
    for r in rows:
        if base is not None and "error_green" in r:
            r["vs_before"] = {k: r[f"error_{k}"] / base[f"error_{k}"] for k in olds}
    return {"portraits": len(placed), "band_px": EDGE_BAND, "rows": rows}


def _portraits(data: Path) -> list[Path]:
    """The portraits with their mattes (``portraits/p_*.jpg`` beside ``p_*.png``)."""
    return [p for p in sorted((data / "portraits").glob("p_*.jpg")) if p.with_suffix(".png").is_file()]


def missing_data(data: Path | None) -> list[str]:
    """What the halo and replacement measurements cannot have from ``data``, each a line saying
    why and what to do (empty: they run as designed)."""
    if data is None:
        return ["halo and replacement colours: no evaluation data (pass --data DIR, or set LIVEBOKEH_DATA or "
                "LIVEBOKEH_SHARED; the default is ../shared/data)"]
    if not data.is_dir():
        return [f"halo and replacement colours: {data} is no folder; pass --data DIR with portraits/ and stills/"]
    if not _portraits(data):
        return [f"halo and replacement colours: {data} has no portraits/p_*.jpg with their .png mattes"]
    if not any((data / "stills").glob("hs_*.png")):
        return [f"the background scene: {data} has no stills/hs_*.png, so the halo and replacement are measured "
                "over a noise texture instead of a real room"]
    return []


def run(data: Path | None, cfg: RenderConfig | None = None, settings: Config | None = None,
        backends: Sequence[str] = ("mediapipe", "rvm")) -> dict:
    cfg = cfg or RenderConfig()
    report: dict = {"machine": machine(), "config": dataclasses.asdict(cfg), "skipped": missing_data(data)}
    if data is not None and data.is_dir() and _portraits(data):
        portraits, left = load_portraits(data)
        report["skipped"] += left
        if portraits:
            scene, left = scene_photo(data)  # read once: its lines said once
            report["skipped"] += left
            if scene is None:  # the noise texture, at each size (not scene_photo's again)
                scene = background_photo(None, (1280, 720))
            report["halo"] = halo(data, cfg, portraits=portraits, scene=scene)
            report["replacement"] = replacement(data, cfg, settings, backends, portraits=portraits, scene=scene)
            report["skipped"] += [f"replacement colours with {r['alpha']}'s alpha: {r['error']}"
                                  for r in report["replacement"]["rows"] if "error" in r]
        else:
            report["skipped"].append(f"halo and replacement colours: no portrait of {data} could be used")
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
    if "replacement" in report:
        rep = report["replacement"]
        rows = [{**r, "vs_green": r.get("vs_before", {}).get("green"), "vs_scene": r.get("vs_before", {}).get("scene")}
                for r in rep["rows"]]
        parts.append(
            f"replacement colour error at the edge ({rep['portraits']} portraits over green and over a scene, "
            f"replaced; mean abs. error in 8-bit levels within {rep['band_px']} px of the partly transparent "
            f"pixels; 'x before': against MediaPipe's alpha with the colours as captured):\n"
            + table(rows, [("alpha", "alpha", ""), ("colours", "colours", ""), ("error_green", "over green", ".2f"),
                           ("vs_green", "x before", ".2f"), ("error_scene", "over a scene", ".2f"),
                           ("vs_scene", "x before", ".2f")])
        )
    parts.append(table(report["speed"], [("size", "frame", ""), ("ms_ours", "livebokeh ms", ".2f"),
                                          ("ms_naive", "GaussianBlur(15)+blend ms", ".2f"), ("ratio", "ratio", ".2f")]))
    parts += [f"left out: {line}" for line in report.get("skipped", [])]
    parts.append(report["machine"])
    return "\n\n".join(parts)
