"""A generated room with known depth, for ``livebokeh bench depth`` and the README's pictures.

A pinhole camera :data:`CAMERA_HEIGHT` above a plank floor, tilted down a little, looks at a
brick wall :data:`WALL` metres away in the middle of the picture, facing the camera or turned
(:data:`TURNED`: its distance then changes across the picture); each pixel's distance (along the
view axis) is known.
A person cut out with their alpha stands on the floor at a given distance: scaled for it, their
lowest point on the floor's row at that distance. The textures are procedural (planks with
grain and joints, bricks with mortar), so detail is everywhere and at every depth; the picture is
rendered at three times the size and area-reduced (little aliasing in the distance).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

#: Metres from the floor to the camera.
CAMERA_HEIGHT = 1.2
#: Degrees the camera looks down.
TILT = 8.0
#: Vertical field of view, degrees.
FOV = 50.0
#: Metres from the camera to the back wall, along the view axis in the middle of the picture.
WALL = 7.0
#: Degrees a turned back wall is turned from facing the camera (its right side farther), so that
#: its distance changes across the picture: about 4.9 m at the left edge, 10.5 m at the right.
TURNED = 25.0


@dataclass(frozen=True)
class Scene:
    """A generated picture and what is known of it.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR.
        depth: ``(H, W)`` float32 metres along the view axis (the person's pixels: theirs).
        alpha: ``(H, W)`` float32 the person's alpha (zeros without a person).
        floor: ``(H, W)`` bool, the floor (else the wall, or the person).
        person_distance: metres to the person (0 without one).
        focal: the focal length in pixels.
    """

    image: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    floor: np.ndarray
    person_distance: float
    focal: float


def _hash(*xs: np.ndarray) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell."""
    v = np.zeros_like(xs[0], dtype=np.float64)
    for i, x in enumerate(xs):
        v = v + x * (12.9898 + 65.233 * i)
    return (np.sin(v) * 43758.5453) % 1.0


@functools.lru_cache(maxsize=2)
def room(size: tuple[int, int] = (1280, 720), wall_angle: float = 0.0,
         supersample: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The empty room, its back wall turned ``wall_angle`` degrees: ``(image (H, W, 3) uint8,
    depth (H, W) float32 metres along the view axis, floor (H, W) bool, focal length px)``;
    read-only arrays (kept for the next call)."""
    W, H = size
    f = (H * supersample / 2) / np.tan(np.radians(FOV / 2))
    image = np.empty((H, W, 3), np.uint8)
    depth = np.empty((H, W), np.float32)
    floor = np.empty((H, W), bool)
    rows = 64  # output rows rendered at a time (memory stays small)
    for r0 in range(0, H, rows):
        r1 = min(H, r0 + rows)
        strip, s, on_floor = _strip(W * supersample, H * supersample, r0 * supersample, r1 * supersample, f,
                                    wall_angle)
        image[r0:r1] = cv2.resize(strip, (W, r1 - r0), interpolation=cv2.INTER_AREA)
        depth[r0:r1] = cv2.resize(s, (W, r1 - r0), interpolation=cv2.INTER_AREA)
        floor[r0:r1] = cv2.resize(on_floor.astype(np.float32), (W, r1 - r0), interpolation=cv2.INTER_AREA) > 0.5
    image.flags.writeable = depth.flags.writeable = floor.flags.writeable = False
    return image, depth, floor, float(f / supersample)


def _strip(w: int, h: int, v0: int, v1: int, f: float,
           wall_angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``v0:v1`` of the room rendered ``w`` x ``h``: (uint8 BGR, float32 depth, bool floor)."""
    v, u = np.mgrid[v0:v1, :w].astype(np.float32)
    x, y = (u + 0.5 - w / 2) / f, (v + 0.5 - h / 2) / f
    t = np.radians(TILT)
    # the ray through each pixel, (x, y, 1) in the camera, in the world: across, down, ahead;
    # a point at ``s`` times it is ``s`` metres from the camera along its view axis
    down, ahead = y * np.cos(t) + np.sin(t), np.cos(t) - y * np.sin(t)
    s_floor = np.where(down > 1e-6, CAMERA_HEIGHT / np.maximum(down, 1e-6), np.inf)
    slant = np.tan(np.radians(wall_angle))  # the wall: ahead - across * slant = WALL
    s_wall = np.where(ahead - x * slant > 1e-6, WALL / np.maximum(ahead - x * slant, 1e-6), np.inf)
    floor = s_floor < s_wall
    s = np.minimum(s_floor, s_wall).astype(np.float32)
    wx, wy, wz = x * s, CAMERA_HEIGHT - down * s, ahead * s  # across, height above the floor, ahead
    # floor: planks 0.2 m wide, of staggered lengths, with grain and dark joints
    plank = np.floor(wx / 0.2)
    along = wz + _hash(plank) * 3.0
    joint = (np.abs((wx / 0.2) % 1.0 - 0.5) > 0.46) | (np.abs((along % 1.5) / 1.5 - 0.5) > 0.49)
    grain = 0.5 * np.sin(wx * 60.0 + np.sin(along * 7.0) * 2.0)
    tone = 0.55 + 0.25 * _hash(plank, np.floor(along / 1.5))
    floor_rgb = (tone + 0.12 * grain)[..., None] * np.array([0.35, 0.55, 0.8], np.float32)
    floor_rgb[joint] *= 0.35
    # wall: bricks 0.3 x 0.1 m in a running bond, with mortar, laid along the slanted wall
    row = np.floor(wy / 0.1)
    shifted = wx / np.cos(np.radians(wall_angle)) + (row % 2) * 0.15
    mortar = ((wy / 0.1) % 1.0 < 0.14) | ((shifted / 0.3) % 1.0 < 0.06)
    brick = 0.5 + 0.3 * _hash(row, np.floor(shifted / 0.3))
    wall_rgb = brick[..., None] * np.array([0.3, 0.4, 0.75], np.float32)
    wall_rgb[mortar] = (0.7, 0.72, 0.75)
    rgb = np.where(floor[..., None], floor_rgb, wall_rgb)
    return np.clip(rgb * 255.0, 0, 255).astype(np.uint8), s, floor


def scene(person: np.ndarray | None = None, alpha: np.ndarray | None = None, distance: float = 2.5,
          height: float = 1.6, size: tuple[int, int] = (1280, 720), x: float = 0.5,
          wall_angle: float = 0.0) -> Scene:
    """The room (its wall turned ``wall_angle`` degrees) with ``person`` (``(h, w, 3)`` uint8 BGR,
    ``alpha`` ``(h, w)`` float32) standing on the floor ``distance`` metres away, ``height`` metres
    tall, centred at ``x`` of the width.

    Their lowest alpha row touches the floor's row at ``distance`` (taken in the middle column)."""
    image, depth, floor, f = room(size, wall_angle)
    image, depth = image.copy(), depth.copy()
    W, H = size
    out_alpha = np.zeros((H, W), np.float32)
    if person is None or alpha is None:
        return Scene(image, depth, out_alpha, floor, 0.0, f)
    rows = np.flatnonzero((alpha > 0.5).any(axis=1))
    person, alpha = person[: rows[-1] + 1], alpha[: rows[-1] + 1]
    column = depth[:, round(x * W)]
    bottom = int(np.argmin(np.abs(column - distance)))
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
    depth[out_alpha > 0.5] = distance
    return Scene(image, depth, out_alpha, floor & (out_alpha <= 0.5), distance, f)
