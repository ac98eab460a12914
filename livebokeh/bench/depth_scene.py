"""A generated room with known depth, for ``livebokeh bench depth`` and the README's pictures.

A pinhole camera :data:`CAMERA_HEIGHT` above a plank floor, tilted down a little, looks at a
brick wall :data:`WALL` metres away; each pixel's distance (along the view axis) is known.
A person cut out with their alpha stands on the floor at a given distance: scaled for it, their
lowest point on the floor's row at that distance. The textures are procedural (planks with
grain and joints, bricks with mortar), so detail is everywhere and at every depth; the picture is
rendered at twice the size and area-reduced (no aliasing in the distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Metres from the floor to the camera.
CAMERA_HEIGHT = 1.2
#: Degrees the camera looks down.
TILT = 8.0
#: Vertical field of view, degrees.
FOV = 50.0
#: Metres from the camera to the back wall.
WALL = 7.0


@dataclass(frozen=True)
class Scene:
    """A generated picture and what is known of it.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR.
        depth: ``(H, W)`` float32 metres along the view axis (the person's pixels: theirs).
        alpha: ``(H, W)`` float32 the person's alpha (zeros without a person).
        person_distance: metres to the person (0 without one).
        focal: the focal length in pixels.
    """

    image: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    person_distance: float
    focal: float


def _hash(*xs: np.ndarray) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell."""
    v = np.zeros_like(xs[0], dtype=np.float64)
    for i, x in enumerate(xs):
        v = v + x * (12.9898 + 65.233 * i)
    return (np.sin(v) * 43758.5453) % 1.0


def room(size: tuple[int, int] = (1280, 720), supersample: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """The empty room: ``(image (H, W, 3) uint8, depth (H, W) float32 metres, focal length px)``."""
    W, H = size
    w, h = W * supersample, H * supersample
    f = (h / 2) / np.tan(np.radians(FOV / 2))
    v, u = np.mgrid[:h, :w].astype(np.float64)
    x, y = (u + 0.5 - w / 2) / f, (v + 0.5 - h / 2) / f
    t = np.radians(TILT)
    down, ahead = y * np.cos(t) + np.sin(t), np.cos(t) - y * np.sin(t)  # ray direction, world (Y down)
    z_floor = np.where(down > 1e-9, CAMERA_HEIGHT * ahead / np.maximum(down, 1e-9), np.inf)
    floor = z_floor < WALL
    z = np.where(floor, z_floor, WALL)  # world distance ahead
    s = z / ahead
    wx, wy = x * s, CAMERA_HEIGHT - down * s  # across, and height above the floor
    # floor: planks 0.2 m wide, of staggered lengths, with grain and dark joints
    plank = np.floor(wx / 0.2)
    along = z + _hash(plank) * 3.0
    joint = (np.abs((wx / 0.2) % 1.0 - 0.5) > 0.46) | (np.abs((along % 1.5) / 1.5 - 0.5) > 0.49)
    grain = 0.5 * np.sin(wx * 60.0 + np.sin(along * 7.0) * 2.0)
    tone = 0.55 + 0.25 * _hash(plank, np.floor(along / 1.5))
    floor_rgb = (tone + 0.12 * grain)[..., None] * np.array([0.35, 0.55, 0.8])
    floor_rgb[joint] *= 0.35
    # wall: bricks 0.25 x 0.08 m in a running bond, with mortar
    row = np.floor(wy / 0.08)
    shifted = wx + (row % 2) * 0.125
    mortar = ((wy / 0.08) % 1.0 < 0.12) | ((shifted / 0.25) % 1.0 < 0.05)
    brick = 0.5 + 0.3 * _hash(row, np.floor(shifted / 0.25))
    wall_rgb = brick[..., None] * np.array([0.3, 0.4, 0.75])
    wall_rgb[mortar] = (0.7, 0.72, 0.75)
    rgb = np.where(floor[..., None], floor_rgb, wall_rgb)
    image = np.clip(rgb * 255.0, 0, 255).astype(np.uint8)
    image = cv2.resize(image, (W, H), interpolation=cv2.INTER_AREA)
    depth = cv2.resize(z.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)
    return image, depth, float(f / supersample)


def scene(person: np.ndarray | None = None, alpha: np.ndarray | None = None, distance: float = 2.5,
          height: float = 1.6, size: tuple[int, int] = (1280, 720), x: float = 0.5) -> Scene:
    """The room with ``person`` (``(h, w, 3)`` uint8 BGR, ``alpha`` ``(h, w)`` float32) standing on
    the floor ``distance`` metres away, ``height`` metres tall, centred at ``x`` of the width.

    Their lowest alpha row touches the floor's row at ``distance`` (taken in the middle column)."""
    image, depth, f = room(size)
    W, H = size
    out_alpha = np.zeros((H, W), np.float32)
    if person is None or alpha is None:
        return Scene(image, depth, out_alpha, 0.0, f)
    rows = np.flatnonzero((alpha > 0.5).any(axis=1))
    person, alpha = person[: rows[-1] + 1], alpha[: rows[-1] + 1]
    column = depth[:, W // 2]
    floor_rows = np.flatnonzero(column < WALL - 1e-3)
    bottom = int(floor_rows[np.argmin(np.abs(column[floor_rows] - distance))])
    ph = max(8, round(height * f / distance))
    pw = max(4, round(person.shape[1] * ph / person.shape[0]))
    p = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (pw, ph), interpolation=cv2.INTER_AREA)
    y0, x0 = bottom + 1 - ph, round(x * W - pw / 2)
    ys, xs = slice(max(0, y0), bottom + 1), slice(max(0, x0), min(W, x0 + pw))
    cut_p = p[ys.start - y0 :, xs.start - x0 : xs.stop - x0]
    cut_a = a[ys.start - y0 :, xs.start - x0 : xs.stop - x0]
    region = image[ys, xs].astype(np.float32)
    image[ys, xs] = np.clip(cut_a[..., None] * cut_p + (1 - cut_a[..., None]) * region + 0.5, 0, 255).astype(np.uint8)
    out_alpha[ys, xs] = cut_a
    depth = depth.copy()
    depth[out_alpha > 0.5] = distance
    return Scene(image, depth, out_alpha, distance, f)
