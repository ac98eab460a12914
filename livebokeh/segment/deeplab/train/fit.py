"""The decoder trained on cached features, in JAX (Keras's runtime here; no TensorFlow).

The decoder is written out as functions (:func:`head`): Keras's depthwise convolution is a
grouped convolution, which XLA runs about ten times slower on a CPU than the nine shifted
multiply-adds used here. The weights are those of
:func:`~livebokeh.segment.deeplab.model.build_deeplab`'s decoder, and the tests check that the
Keras model and the grafted TFLite graph give what :func:`head` gives.

Training runs on crops of the feature maps (``crop`` x ``crop`` stride-4 pixels, mostly around the
person's edge, where the decoder has work to do): the decoder is convolutional and the ASPP
output is upsampled with ``align_corners`` by exactly 2, so a crop starting at an even stride-4
pixel gives exactly the full map's values there, except within reach of the crop's cut sides,
which the loss leaves out (:data:`MARGIN`). The image pooling of a trained ASPP takes the whole
map's mean, computed before cropping. Loss: binary cross-entropy of the person-minus-background
logit against the soft target alpha at the model's input resolution, with the pixels near the
person's edge weighted ``1 + edge_weight``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from livebokeh.segment.deeplab.decoder import ASPP_LAYERS, DECODER_LAYERS, PRIOR, tensor_names
from livebokeh.segment.deeplab.model import resize_matrix

log = logging.getLogger(__name__)

#: Output pixels (at the model's input resolution) next to a crop's cut side left out of the loss:
#: two 3x3 layers at stride 4 reach 8 pixels, and the upsampling blends the next stride-4 pixel.
MARGIN = 12
#: Share of the crops centred on a pixel of the person's edge (the rest anywhere: the background
#: far from the person must be seen too, or textures there come out as person).
EDGE_CROPS = 0.5
PERSON = 1  # class index of the person in the logits (0 is the background)
#: The released classifier's classes the prior starts from: PASCAL VOC background and person.
RELEASE_CLASSES = (0, 15)


@dataclass(frozen=True)
class Shapes:
    low_channels: int
    aspp_channels: int = 256
    backbone_channels: int = 160
    decoder_channels: int = 64
    skip_channels: int = 48


def init_params(shapes: Shapes, rng: np.random.Generator, release: dict[str, np.ndarray] | None = None,
                train_aspp: bool = False, prior: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """He-initialised decoder weights (and the released ASPP's, to be trained with ``train_aspp``;
    with ``prior`` the prior, started from the released classifier's background and person rows).

    Layouts: 1x1 convolutions ``(in, out)``, depthwise ``(3, 3, channels)``."""
    c, s = shapes.decoder_channels, shapes.skip_channels
    cin = shapes.aspp_channels + s

    def he(fan_in, shape):
        return (rng.normal(0, math.sqrt(2.0 / fan_in), shape)).astype(np.float32)

    p = {
        "decoder/feature_projection0": {"w": he(shapes.low_channels, (shapes.low_channels, s)),
                                        "b": np.zeros(s, np.float32)},
        "decoder/decoder_conv0_depthwise": {"w": he(9, (3, 3, cin)), "b": np.zeros(cin, np.float32)},
        "decoder/decoder_conv0_pointwise": {"w": he(cin, (cin, c)), "b": np.zeros(c, np.float32)},
        "decoder/decoder_conv1_depthwise": {"w": he(9, (3, 3, c)), "b": np.zeros(c, np.float32)},
        "decoder/decoder_conv1_pointwise": {"w": he(c, (c, c)), "b": np.zeros(c, np.float32)},
        "logits/semantic": {"w": (rng.normal(0, 0.01, (c, 2))).astype(np.float32), "b": np.zeros(2, np.float32)},
    }
    if (train_aspp or prior) and release is None:
        raise ValueError("the ASPP and the prior start from the released weights: pass them")
    if prior:
        w, b = release["logits/semantic/weights"], release["logits/semantic/Conv2D_bias"]
        rows = list(RELEASE_CLASSES)
        p[PRIOR] = {"w": np.ascontiguousarray(w[rows, 0, 0, :].T), "b": b[rows].astype(np.float32)}
    if train_aspp:
        for scope in ASPP_LAYERS:
            w = release[f"{scope}/weights"]  # [out, 1, 1, in]
            b = release.get(f"{scope}/Conv2D_bias", release.get(f"{scope}/biases"))
            p[scope] = {"w": np.ascontiguousarray(w[:, 0, 0, :].T), "b": b.astype(np.float32)}
    return p


def to_tensors(params: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Parameters -> the decoder file's tensors (TFLite layouts, the release's names)."""
    out = {}
    kinds = dict(DECODER_LAYERS) | {scope: "conv" for scope in (*ASPP_LAYERS, PRIOR)}
    for scope, wb in params.items():
        kind = kinds[scope]
        wn, bn = tensor_names(scope, kind)
        w = np.asarray(wb["w"], np.float32)
        out[wn] = w[None] if kind == "depthwise" else np.ascontiguousarray(w.T[:, None, None, :])
        out[bn] = np.asarray(wb["b"], np.float32)
    return out


def from_tensors(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The inverse of :func:`to_tensors` (for the layers present)."""
    p = {}
    for scope, kind in list(DECODER_LAYERS) + [(s, "conv") for s in (*ASPP_LAYERS, PRIOR)]:
        wn, bn = tensor_names(scope, kind)
        if wn not in tensors:
            continue
        w = tensors[wn]
        p[scope] = {"w": w[0] if kind == "depthwise" else np.ascontiguousarray(w[:, 0, 0, :].T), "b": tensors[bn]}
    return p


# -- the network in JAX ----------------------------------------------------------------------------


def _jnp():
    import jax.numpy as jnp

    return jnp


def depthwise3x3(x, w):
    """``(B, H, W, C)`` 3x3 depthwise convolution, stride 1, zero padding ('SAME'); ``w`` ``(3, 3, C)``."""
    jnp = _jnp()
    H, W = x.shape[1], x.shape[2]
    p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = p[:, 0:H, 0:W, :] * w[0, 0]
    for i in range(3):
        for j in range(3):
            if i or j:
                out = out + p[:, i : i + H, j : j + W, :] * w[i, j]
    return out


def resize_ac(x, out_hw: tuple[int, int]):
    """Bilinear ``align_corners`` resize of ``(B, H, W, ...)`` (the Keras model's and TFLite's)."""
    jnp = _jnp()
    ry = jnp.asarray(resize_matrix(x.shape[1], out_hw[0]))
    rx = jnp.asarray(resize_matrix(x.shape[2], out_hw[1]))
    return jnp.einsum("xw,bywc->byxc", rx, jnp.einsum("yh,bhwc->bywc", ry, x))


def head(params, low, feats, pooled=None, out_hw: tuple[int, int] | None = None):
    """The decoder (and, given ``pooled``, the ASPP before it; and the prior when ``params`` has it)
    on feature maps.

    Args:
        low: ``(B, h, w, c)`` stride-4 features; feats: ``(B, (h+1)/2, (w+1)/2, 256)`` ASPP
            output, or the backbone's output when ``params`` holds the ASPP; pooled: ``(B, 160)``
            the whole backbone map's mean (the image pooling's input) when it does.
        out_hw: output size (default: the stride-4 size x 4 - 3, the model's input for 257).

    Returns:
        ``(B, H, W)`` person-minus-background logit.
    """
    import jax

    jnp = _jnp()
    relu = jax.nn.relu

    def conv(x, scope):
        return x @ params[scope]["w"] + params[scope]["b"]

    if "aspp0" in params:
        pool = relu(conv(pooled, "image_pooling"))[:, None, None, :]
        a0 = relu(conv(feats, "aspp0"))
        pool = jnp.broadcast_to(pool, a0.shape[:3] + (pool.shape[-1],))
        feats = relu(conv(jnp.concatenate([pool, a0], -1), "concat_projection"))
    h, w = low.shape[1], low.shape[2]
    skip = relu(conv(low, "decoder/feature_projection0"))
    x = jnp.concatenate([resize_ac(feats, (h, w)), skip], -1)
    for n in (0, 1):
        dw = params[f"decoder/decoder_conv{n}_depthwise"]
        x = relu(depthwise3x3(x, dw["w"]) + dw["b"])
        x = relu(conv(x, f"decoder/decoder_conv{n}_pointwise"))
    logits = conv(x, "logits/semantic")
    if PRIOR in params:
        logits = logits + resize_ac(conv(feats, PRIOR), (h, w))
    z = logits[..., PERSON] - logits[..., 1 - PERSON]
    out_hw = out_hw or (4 * (h - 1) + 1, 4 * (w - 1) + 1)
    return resize_ac(z[..., None], out_hw)[..., 0]


def loss_fn(params, batch):
    """Weighted binary cross-entropy (see the module text)."""
    import jax

    jnp = _jnp()
    z = head(params, batch["low"], batch["feats"], batch.get("pooled"))
    t, w = batch["target"], batch["weight"]
    bce = jax.nn.relu(z) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z)))
    return jnp.sum(bce * w) / jnp.maximum(jnp.sum(w), 1.0)


# -- batches -------------------------------------------------------------------------------------


class Batches:
    """Random crops of the cached features (see the module text), from a seeded generator.

    Args:
        arrays: ``low`` ``(N, h, w, c)``, ``aspp`` (or ``backbone``) ``(N, (h+1)/2, (w+1)/2, c)``
            and ``alpha`` ``(N, 4h-3, 4w-3)`` uint8; any array-like (memory maps).
        crop: crop side in stride-4 pixels (odd).
    """

    def __init__(self, arrays: dict, crop: int, batch: int, rng: np.random.Generator, edge_weight: float,
                 backbone: bool = False) -> None:
        self.low, self.alpha = arrays["low"], arrays["alpha"]
        self.feats = arrays["backbone" if backbone else "aspp"]
        self.backbone = backbone
        self.n, self.h, self.w = self.low.shape[0], self.low.shape[1], self.low.shape[2]
        if crop % 2 == 0 or crop > min(self.h, self.w):
            raise ValueError(f"crop must be odd and at most {min(self.h, self.w)}, got {crop}")
        if self.feats.shape[1] != (self.h + 1) // 2 or self.alpha.shape[1] != 4 * (self.h - 1) + 1:
            raise ValueError("the features' and targets' sizes do not fit together (stride 8, 4 and 1)")
        self.crop, self.batch, self.rng, self.edge_weight = crop, batch, rng, edge_weight
        self._pooled = None

    def _edge(self, alpha: np.ndarray) -> np.ndarray:
        """Pixels near the person's edge: a band around the 0.5 contour and the soft alpha."""
        hard = (alpha > 127).astype(np.uint8)
        band = cv2.morphologyEx(hard, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        band = cv2.dilate(band, np.ones((5, 5), np.uint8))
        return (band > 0) | ((alpha > 12) & (alpha < 243))

    def pooled(self, i: int) -> np.ndarray:
        return np.asarray(self.feats[i], np.float32).mean(axis=(0, 1))

    def __call__(self) -> dict[str, np.ndarray]:
        S = self.crop
        A, O = (S + 1) // 2, 4 * (S - 1) + 1
        amax_y, amax_x = (self.h - S) // 2, (self.w - S) // 2
        idx = self.rng.integers(0, self.n, self.batch)
        low, feats, target, weight, pooled = [], [], [], [], []
        for i in idx:
            alpha = np.asarray(self.alpha[i])
            edge = self._edge(alpha)
            ys, xs = np.nonzero(edge)
            if len(ys) and self.rng.random() < EDGE_CROPS:
                k = int(self.rng.integers(len(ys)))
                ay = int(np.clip(round((ys[k] / 4 - S / 2) / 2), 0, amax_y))
                ax = int(np.clip(round((xs[k] / 4 - S / 2) / 2), 0, amax_x))
            else:
                ay, ax = int(self.rng.integers(0, amax_y + 1)), int(self.rng.integers(0, amax_x + 1))
            low.append(self.low[i, 2 * ay : 2 * ay + S, 2 * ax : 2 * ax + S])
            feats.append(self.feats[i, ay : ay + A, ax : ax + A])
            if self.backbone:
                pooled.append(self.pooled(i))
            t = alpha[8 * ay : 8 * ay + O, 8 * ax : 8 * ax + O]
            w = 1.0 + self.edge_weight * edge[8 * ay : 8 * ay + O, 8 * ax : 8 * ax + O].astype(np.float32)
            # leave out what the crop's cut sides disturb (not the picture's own sides)
            if ay > 0:
                w[:MARGIN] = 0
            if ay < amax_y:
                w[-MARGIN:] = 0
            if ax > 0:
                w[:, :MARGIN] = 0
            if ax < amax_x:
                w[:, -MARGIN:] = 0
            target.append(t.astype(np.float32) / 255)
            weight.append(w)
        out = {"low": np.stack(low).astype(np.float32), "feats": np.stack(feats).astype(np.float32),
               "target": np.stack(target), "weight": np.stack(weight)}
        if self.backbone:
            out["pooled"] = np.stack(pooled)
        return out


# -- the loop -------------------------------------------------------------------------------------


def adamw(lr: float, weight_decay: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """AdamW as ``(init, update)`` pure functions; weight decay on weights, not biases."""
    import jax

    jnp = _jnp()

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return {"m": zeros, "v": zeros, "t": jnp.zeros((), jnp.int32)}

    def update(params, grads, state, scale):
        t = state["t"] + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
        c1, c2 = 1 - b1 ** t.astype(jnp.float32), 1 - b2 ** t.astype(jnp.float32)

        def step(path, p, m, v):
            decay = weight_decay if path[-1].key == "w" else 0.0
            return p - lr * scale * ((m / c1) / (jnp.sqrt(v / c2) + eps) + decay * p)

        new = jax.tree_util.tree_map_with_path(step, params, m, v)
        return new, {"m": m, "v": v, "t": t}

    return init, update


def schedule(step: int, steps: int) -> float:
    """Learning-rate scale: linear warm-up (50 steps, fewer in a short run), then cosine down to 5%."""
    warmup = min(50, max(1, steps // 10))
    if step < warmup:
        return (step + 1) / warmup
    f = (step - warmup) / max(1, steps - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * f))


def train(arrays: dict, shapes: Shapes, steps: int, batch: int, crop: int, lr: float, weight_decay: float,
          edge_weight: float, seed: int, release: dict[str, np.ndarray] | None = None, train_aspp: bool = False,
          prior: bool = False, log_every: int = 50,
          progress: Callable[[int, float], None] | None = None) -> tuple[dict, list]:
    """Train the decoder; returns ``(params, curve)`` with ``curve`` the mean loss of every
    ``log_every`` steps as ``[step, loss]``."""
    import jax

    rng = np.random.default_rng([seed, 2])
    params = jax.tree_util.tree_map(np.asarray, init_params(shapes, rng, release, train_aspp, prior))
    batches = Batches(arrays, crop, batch, np.random.default_rng([seed, 3]), edge_weight, backbone=train_aspp)
    init, update = adamw(lr, weight_decay)
    state = init(params)

    @jax.jit
    def step_fn(params, state, b, scale):
        loss, grads = jax.value_and_grad(loss_fn)(params, b)
        params, state = update(params, grads, state, scale)
        return params, state, loss

    curve, window, t0 = [], [], time.perf_counter()
    for step in range(steps):
        params, state, loss = step_fn(params, state, batches(), schedule(step, steps))
        window.append(float(loss))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            mean = float(np.mean(window))
            curve.append([step + 1, mean])
            window = []
            log.info("step %d/%d: loss %.4f (%.0f ms a step)", step + 1, steps, mean,
                     (time.perf_counter() - t0) / (step + 1) * 1e3)
            if progress:
                progress(step + 1, mean)
    return jax.tree_util.tree_map(np.asarray, params), curve
