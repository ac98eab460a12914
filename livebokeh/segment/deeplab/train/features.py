"""The feature cache: augmented pictures run once through the released network's frozen part.

Each training picture becomes ``variants`` samples (the first plain, the others composited over
other backgrounds, :func:`~.data.augment`), each pre-processed exactly as the segmenter does
(:func:`~livebokeh.segment.deeplab.segmenter.preprocess`) and run through the released TFLite graph
cut at the decoder's inputs: the stride-4 features, the ASPP output and the backbone's output (for
``--train-aspp``). They are stored as float16 arrays on disk (``numpy.memmap``), beside the targets
(the alpha at the model's input size, uint8) and what each sample was made of.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: The arrays of a cache: name -> (tensor of the released graph or None for the target).
ARRAYS = ("low", "aspp", "backbone", "alpha")


@dataclass
class Cache:
    """Memory-mapped features and targets of ``n`` samples (read-only once written)."""

    folder: Path
    n: int
    shapes: dict[str, tuple[int, ...]]

    def array(self, name: str, mode: str = "r") -> np.memmap:
        dtype = np.uint8 if name == "alpha" else np.float16
        return np.memmap(self.folder / f"{name}.bin", dtype=dtype, mode=mode, shape=(self.n, *self.shapes[name]))

    @property
    def samples(self) -> list[dict]:
        return json.loads((self.folder / "samples.json").read_text())

    @classmethod
    def open(cls, folder: Path) -> Cache | None:
        meta = folder / "cache.json"
        if not meta.is_file():
            return None
        m = json.loads(meta.read_text())
        return cls(folder, m["n"], {k: tuple(v) for k, v in m["shapes"].items()})


def feature_interpreter(release: Path, threads: int, with_backbone: bool):
    """A LiteRT interpreter of the released graph cut at the decoder's inputs."""
    from livebokeh.segment.deeplab.decoder import ASPP_TENSOR, BACKBONE_TENSOR, LOW_LEVEL_TENSOR, features_tflite
    from livebokeh.segment.tflite import make_interpreter

    names = (LOW_LEVEL_TENSOR, ASPP_TENSOR) + ((BACKBONE_TENSOR,) if with_backbone else ())
    return make_interpreter(None, threads, content=features_tflite(release.read_bytes(), names)), names


def build(folder: Path, pictures, count: int, release: Path, threads: int, with_backbone: bool,
          key: dict, size: tuple[int, int] = (257, 257)) -> Cache:
    """Write a cache of ``count`` samples from the iterator ``pictures`` of ``(image, alpha, params)``.

    ``key`` (the settings the samples depend on) is stored; :func:`matches` compares it later.
    """
    import cv2

    from livebokeh.segment.deeplab.decoder import ASPP_TENSOR, BACKBONE_TENSOR, LOW_LEVEL_TENSOR
    from livebokeh.segment.deeplab.segmenter import preprocess

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cache.json").unlink(missing_ok=True)  # incomplete until written again at the end
    interp, names = feature_interpreter(release, threads, with_backbone)
    inp = interp.get_input_details()[0]["index"]
    outs = {d["name"]: d for d in interp.get_output_details()}
    by_array = {"low": LOW_LEVEL_TENSOR, "aspp": ASPP_TENSOR, "backbone": BACKBONE_TENSOR}
    shapes = {k: tuple(int(v) for v in outs[t]["shape"][1:]) for k, t in by_array.items() if t in names}
    shapes["alpha"] = (size[1], size[0])
    cache = Cache(folder, count, shapes)
    arrays = {k: cache.array(k, "w+") for k in shapes}
    samples = []
    for i, (image, alpha, params) in enumerate(pictures):
        if i >= count:
            break
        interp.set_tensor(inp, preprocess(image, size)[None])
        interp.invoke()
        for k, t in by_array.items():
            if k in arrays:
                arrays[k][i] = interp.get_tensor(outs[t]["index"])[0].astype(np.float16)
        a = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA if alpha.shape[1] > size[0] else cv2.INTER_LINEAR)
        arrays["alpha"][i] = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
        samples.append(params)
        if (i + 1) % 200 == 0:
            log.info("features: %d of %d", i + 1, count)
    if len(samples) != count:
        raise RuntimeError(f"features: {len(samples)} pictures made, {count} expected")
    for a in arrays.values():
        a.flush()
    (folder / "samples.json").write_text(json.dumps(samples))
    (folder / "cache.json").write_text(json.dumps({"n": count, "shapes": shapes, "key": key}, sort_keys=True))
    return cache


def matches(folder: Path, key: dict) -> Cache | None:
    """The cache in ``folder`` if it was made with the settings ``key``."""
    cache = Cache.open(folder)
    if cache is None:
        return None
    stored = json.loads((folder / "cache.json").read_text()).get("key")
    return cache if stored == json.loads(json.dumps(key, sort_keys=True)) else None
