"""The DeepLab-v3+ decoder livebokeh trains for people, and the v3+ network built with it.

Google's released MobileNetV2 DeepLab has no decoder. livebokeh ships one of its own, trained by
:mod:`livebokeh.segment.deeplab.train` on top of the released backbone and ASPP for two classes,
background and person: ``models/deeplabv3plus_person.npz`` (installed inside the package), about
a hundred kilobytes. The released file stays what it is (downloaded, checksummed); the v3+
network is put together when the segmenter is built:

- for the TFLite runtime, :func:`v3plus_tflite` grafts the decoder onto the released graph
  (:mod:`~livebokeh.segment.deeplab.tflite_graph`, pure Python): one ``.tflite`` in memory that
  LiteRT runs like the original, without TensorFlow;
- for the Keras runtime, :func:`keras_tensors` gives the released tensors with the decoder's added,
  which :func:`~livebokeh.segment.deeplab.weights.load_tflite_weights` loads into
  :func:`~livebokeh.segment.deeplab.model.build_deeplab` with ``decoder=True``.

The file: arrays named as the released file names its tensors (``{scope}/weights``,
``{scope}/Conv2D_bias``, ``{scope}/depthwise_weights``, ``{scope}/depthwise_bias``) in TFLite
layouts (``[out, kh, kw, in]``, ``[1, kh, kw, channels]``), and ``meta``, a JSON text: the
architecture (``decoder_channels``, ``skip_channels``, ``classes``, ``person_class``, ``prior``), the
released file it was trained on (sha256), whether the ASPP was trained too (then its tensors are
in the file and replace the released ones) and how it was trained.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from livebokeh.errors import ModelError, weights_not_there
from livebokeh.segment.deeplab.model import ASPP_SCOPE, BACKBONE_SCOPE, LOW_LEVEL_SCOPE, DeepLabSpec

#: The shipped decoder's file name, beside the manifests (``models/`` in the repository).
DECODER_FILE = "deeplabv3plus_person.npz"
#: Environment variable naming another decoder file.
ENV_VAR = "LIVEBOKEH_DEEPLAB_DECODER"
#: Version of the file's layout.
FORMAT = 1
#: The release's tensors the decoder reads (activations of the TFLite graph).
LOW_LEVEL_TENSOR = LOW_LEVEL_SCOPE + "/Relu6"
ASPP_TENSOR = ASPP_SCOPE + "/Relu"
BACKBONE_TENSOR = BACKBONE_SCOPE + "/BatchNorm/FusedBatchNorm"
#: The ASPP's layers (replaced when the ASPP was trained too).
ASPP_LAYERS = ("image_pooling", "aspp0", ASPP_SCOPE)
#: The prior: a 1x1 convolution of the ASPP output to the logits, added to the decoder's (optional).
PRIOR = "decoder/prior"
#: The decoder's layers, in order: ``(scope, kind)``.
DECODER_LAYERS = (
    ("decoder/feature_projection0", "conv"),
    ("decoder/decoder_conv0_depthwise", "depthwise"),
    ("decoder/decoder_conv0_pointwise", "conv"),
    ("decoder/decoder_conv1_depthwise", "depthwise"),
    ("decoder/decoder_conv1_pointwise", "conv"),
    ("logits/semantic", "conv"),
)


def tensor_names(scope: str, kind: str) -> tuple[str, str]:
    """The ``(weights, bias)`` names of a layer in the file (the released file's convention)."""
    if kind == "depthwise":
        return f"{scope}/depthwise_weights", f"{scope}/depthwise_bias"
    return f"{scope}/weights", f"{scope}/Conv2D_bias"


@dataclass(frozen=True)
class Decoder:
    """A decoder weights file, read and checked."""

    path: Path | None
    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def decoder_channels(self) -> int:
        return int(self.meta["decoder_channels"])

    @property
    def skip_channels(self) -> int:
        return int(self.meta["skip_channels"])

    @property
    def classes(self) -> int:
        return int(self.meta["classes"])

    @property
    def person_class(self) -> int:
        return int(self.meta["person_class"])

    @property
    def trained_aspp(self) -> bool:
        return bool(self.meta.get("trained_aspp", False))

    @property
    def trained_on(self) -> frozenset[str]:
        """Names of the evaluation data's files it was trained on (clips and portraits)."""
        return frozenset(self.meta.get("trained_on", ()))

    @property
    def prior(self) -> bool:
        """Whether it has ``decoder/prior``: the ASPP output's own logits added to the decoder's."""
        return bool(self.meta.get("prior", False))

    def spec(self, width: int, height: int, output_stride: int, width_multiplier: float) -> DeepLabSpec:
        """The v3+ model's spec at ``width`` x ``height``."""
        return DeepLabSpec(height=height, width=width, num_classes=self.classes, output_stride=output_stride,
                           width_multiplier=width_multiplier, decoder=True,
                           decoder_channels=self.decoder_channels, skip_channels=self.skip_channels,
                           decoder_prior=self.prior)


def shipped_path() -> Path:
    """Where the package keeps its decoder (which may be absent in a trimmed install)."""
    from livebokeh.models import manifests_dir

    return manifests_dir() / DECODER_FILE


def find(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The decoder file to use: ``explicit``, else ``$LIVEBOKEH_DEEPLAB_DECODER``, else the shipped
    one; None when there is none.

    Raises:
        ModelError: a file named explicitly or by the variable does not exist (a live run finds
            it before its camera opens: ``missing_files``, exit 3).
    """
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ModelError(f"the deeplab decoder weights {p} (deeplab.decoder_weights) {weights_not_there(p)}; fix the path, "
                             "or leave it out for the package's decoder")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ModelError(f"the deeplab decoder weights {env} ({ENV_VAR}) {weights_not_there(p)}; fix or unset it")
        return p
    p = shipped_path()
    return p if p.is_file() else None


def load(path: str | os.PathLike[str]) -> Decoder:
    """Read and check a decoder file.

    Raises:
        ModelError: not a decoder file, another format, or a layer's weights missing or misshapen.
    """
    import zipfile

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as err:
        # empty (EOFError), a damaged zip (BadZipFile), any other file: not a decoder
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"{path} is not a DeepLab decoder file ({why}); {_fix_for(path)}") from None
    return check(Decoder(path, {k: v.astype(np.float32) for k, v in arrays.items()}, meta))


def _fix_for(path: Path) -> str:
    """What to do about a bad decoder file, by where it was named."""
    if os.environ.get(ENV_VAR) and Path(os.environ[ENV_VAR]) == path:
        return (f"fix or unset {ENV_VAR}, or train one with `python -m livebokeh.segment.deeplab.train`")
    if path == shipped_path():
        return "reinstall livebokeh (its decoder file is damaged)"
    return "check the deeplab decoder_weights setting, or train one with `python -m livebokeh.segment.deeplab.train`"


def check(dec: Decoder) -> Decoder:
    """``dec`` if its layers are all there with consistent shapes; ModelError otherwise."""
    where = dec.path or "the decoder"
    if dec.meta.get("format") != FORMAT:
        raise ModelError(f"{where}: decoder file format {dec.meta.get('format')!r}, this livebokeh reads {FORMAT}")
    try:
        c, s, k = dec.decoder_channels, dec.skip_channels, dec.classes
        if not 0 <= dec.person_class < k:
            raise ValueError("person_class out of range")
    except (KeyError, ValueError, TypeError) as err:
        raise ModelError(f"{where}: its meta data are incomplete ({err})") from None
    t = dec.tensors
    low_c = t.get("decoder/feature_projection0/weights", np.zeros((0, 1, 1, 0))).shape[-1]
    want = {
        "decoder/feature_projection0": ((s, 1, 1, low_c), (s,)),
        "decoder/decoder_conv0_depthwise": ((1, 3, 3, 256 + s), (256 + s,)),
        "decoder/decoder_conv0_pointwise": ((c, 1, 1, 256 + s), (c,)),
        "decoder/decoder_conv1_depthwise": ((1, 3, 3, c), (c,)),
        "decoder/decoder_conv1_pointwise": ((c, 1, 1, c), (c,)),
        "logits/semantic": ((k, 1, 1, c), (k,)),
        PRIOR: ((k, 1, 1, 256), (k,)),
    }
    for scope, kind in DECODER_LAYERS + (((PRIOR, "conv"),) if dec.prior else ()):
        names = tensor_names(scope, kind)
        for name, shape in zip(names, want[scope]):
            if name not in t:
                raise ModelError(f"{where} has no {name}; train it again")
            if t[name].shape != shape:
                raise ModelError(f"{where}: {name} is {t[name].shape}, expected {shape}")
    if dec.trained_aspp:
        for scope in ASPP_LAYERS:
            for name in tensor_names(scope, "conv"):
                if name not in t:
                    raise ModelError(f"{where} says its ASPP was trained but has no {name}")
    return dec


def save(path: str | os.PathLike[str], tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write a decoder file (checked first); returns its path."""
    meta = {"format": FORMAT, **meta}
    dec = check(Decoder(None, {k: np.asarray(v, np.float32) for k, v in tensors.items()}, meta))
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta, sort_keys=True)), **dec.tensors)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def keras_tensors(release: dict[str, np.ndarray], dec: Decoder) -> dict[str, np.ndarray]:
    """The released tensors with the decoder's added (and replacing the ASPP's and the logits')."""
    return {**release, **dec.tensors}


def v3plus_tflite(release: bytes, dec: Decoder) -> bytes:
    """The released DeepLab ``.tflite`` (bytes) with ``dec`` grafted on: the DeepLab-v3+ network,
    input as the release's, output ``(1, H, W, classes)`` logits at the input size."""
    from livebokeh.segment.deeplab.tflite_graph import Graph

    g = Graph.from_tflite(release)
    t = dec.tensors
    if dec.trained_aspp:
        for scope in ASPP_LAYERS:
            for name, release_names in zip(tensor_names(scope, "conv"), _release_names(scope)):
                i = _first(g, release_names)
                if g.tensors[i].shape != t[name].shape:
                    raise ModelError(f"{name}: the decoder's {t[name].shape} does not fit "
                                     f"the release's {g.tensors[i].shape}")
                g.tensors[i].data = t[name]
    low, aspp = g.index(LOW_LEVEL_TENSOR), g.index(ASPP_TENSOR)
    n, lh, lw, lc = g.tensors[low].shape
    if t["decoder/feature_projection0/weights"].shape[-1] != lc:
        raise ModelError(f"the decoder takes {t['decoder/feature_projection0/weights'].shape[-1]} stride-4 channels, "
                         f"the release has {lc}: they do not belong together")
    _n, h, w, _c = g.tensors[g.inputs[0]].shape

    def layer(x, scope, kind, activation="relu"):
        wn, bn = tensor_names(scope, kind)
        fn = g.depthwise if kind == "depthwise" else g.conv
        return fn(x, t[wn], t[bn], scope, activation=activation)

    skip = layer(low, "decoder/feature_projection0", "conv")
    x = g.concat([g.resize(aspp, (lh, lw), "decoder/resize"), skip], "decoder/concat")
    for scope, kind in DECODER_LAYERS[1:-1]:
        x = layer(x, scope, kind)
    logits = layer(x, "logits/semantic", "conv", activation="none")
    if dec.prior:
        prior = g.resize(layer(aspp, PRIOR, "conv", activation="none"), (lh, lw), PRIOR + "/resize")
        logits = g.add("ADD", [logits, prior], PRIOR + "/add", g.tensors[logits].shape, activation=0)
    g.outputs = [g.resize(logits, (h, w), "logits/resize")]
    g.description = "DeepLab-v3+ (livebokeh): the released DeepLab-v3 with livebokeh's person decoder"
    g.prune()
    return g.to_tflite()


def features_tflite(release: bytes, names: tuple[str, ...] = (LOW_LEVEL_TENSOR, ASPP_TENSOR)) -> bytes:
    """The released graph cut to output the tensors ``names`` (the features training caches)."""
    from livebokeh.segment.deeplab.tflite_graph import Graph

    g = Graph.from_tflite(release)
    g.outputs = [g.index(n) for n in names]
    g.prune()
    return g.to_tflite()


def _release_names(scope: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (f"{scope}/weights",), (f"{scope}/Conv2D_bias", f"{scope}/biases", f"{scope}/BiasAdd/bias")


def _first(g, names: tuple[str, ...]) -> int:
    for n in names:
        try:
            return g.index(n)
        except ModelError:
            continue
    raise ModelError(f"the release has none of {', '.join(names)}")
