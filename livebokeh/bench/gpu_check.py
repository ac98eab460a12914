"""GPU check for the Keras DeepLab: any Keras backend (TensorFlow, JAX or PyTorch).

Builds the model of :mod:`livebokeh.segment.deeplab.model`, loads Google's released weights with
the pure-Python TFLite reader (no TensorFlow needed), checks its logits on the accelerator
against a CPU run (and, with ``--reference``, against TFLite logits saved on another machine),
and times frames at 513x513 in float32 and in mixed precision.

Usage::

    # where TFLite runs (any CPU machine): save reference inputs and logits
    python -m livebokeh.bench.gpu_check --weights deeplabv3_257_mv_gpu.tflite --make-reference ref.npz --images a.jpg b.jpg
    # on the GPU machine (KERAS_BACKEND=jax, torch or tensorflow)
    python -m livebokeh.bench.gpu_check --weights deeplabv3_257_mv_gpu.tflite --reference ref.npz --frames 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from livebokeh.segment.deeplab.model import DeepLabSpec, build_deeplab
from livebokeh.segment.deeplab.weights import load_tflite_weights, read_tflite_tensors

PERSON = 15


def make_reference(weights: Path, images: list[Path], out: Path) -> None:
    """TFLite logits for the given photos (or random inputs), saved with the inputs."""
    import cv2

    from livebokeh.segment.deeplab.segmenter import preprocess
    from livebokeh.segment.tflite import make_interpreter

    it = make_interpreter(weights, 2)
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    xs = [preprocess(cv2.imread(str(p)), (257, 257)) for p in images] or [
        np.random.default_rng(k).uniform(-1, 1, (257, 257, 3)).astype(np.float32) for k in range(4)
    ]
    logits = []
    for x in xs:
        it.set_tensor(i, x[None])
        it.invoke()
        logits.append(it.get_tensor(o)[0].copy())
    np.savez_compressed(out, inputs=np.stack(xs), logits=np.stack(logits))
    print(f"saved {len(xs)} reference inputs and TFLite logits to {out}")


def _person_mask(logits: np.ndarray) -> np.ndarray:
    return logits.argmax(axis=-1) == PERSON


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


def check(weights: Path, reference: Path | None, frames: int, size: int) -> dict:
    import keras

    backend = keras.backend.backend()
    tensors = read_tflite_tensors(weights)
    result: dict = {"keras": keras.__version__, "backend": backend, "devices": _devices(backend)}

    def model_at(h: int, w: int, dtype: str | None = None):
        m = build_deeplab(DeepLabSpec(height=h, width=w), dtype=dtype)
        load_tflite_weights(m, tensors)
        return m

    # 1. logits on the accelerator vs the CPU (same backend), and vs TFLite when given
    if reference is not None:
        ref = np.load(reference)
        xs, ref_logits = ref["inputs"].astype(np.float32), ref["logits"]
    else:
        xs = np.random.default_rng(0).uniform(-1, 1, (4, 257, 257, 3)).astype(np.float32)
        ref_logits = None
    def logits(model):
        return np.stack([np.asarray(model.predict_on_batch(x[None]))[0] for x in xs])

    with keras.device("cpu:0"):
        cpu = logits(model_at(257, 257))
    # Hopper and Ampere GPUs run float32 convolutions in TF32 by default (JAX and PyTorch):
    # the equivalence is checked in full float32, the TF32 difference is reported beside it.
    fast = logits(model_at(257, 257))
    set_full_float32(backend, True)
    acc = logits(model_at(257, 257))
    set_full_float32(backend, False)
    result["max_abs_logit_diff_accelerator_vs_cpu"] = float(np.abs(acc - cpu).max())
    result["max_abs_logit_diff_accelerator_tf32_vs_cpu"] = float(np.abs(fast - cpu).max())
    result["person_iou_tf32_vs_cpu"] = _iou(_person_mask(fast), _person_mask(cpu))
    if ref_logits is not None:
        result["max_abs_logit_diff_accelerator_vs_tflite"] = float(np.abs(acc - ref_logits).max())
        result["max_abs_logit_diff_cpu_vs_tflite"] = float(np.abs(cpu - ref_logits).max())
    result["logit_scale"] = float(np.abs(cpu).max())

    # 2. timing at size x size, float32 and mixed precision, host arrays in and out (as the app does)
    timings = {}
    x = np.random.default_rng(1).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    f32_out = None
    for policy in ("float32", "float32_strict", "mixed_float16", "mixed_bfloat16"):
        try:
            set_full_float32(backend, policy == "float32_strict")
            m = model_at(size, size, policy if policy.startswith("mixed") else None)
            for _ in range(5):
                out = np.asarray(m.predict_on_batch(x))
            t0 = time.perf_counter()
            for _ in range(frames):
                out = np.asarray(m.predict_on_batch(x))
            dt = (time.perf_counter() - t0) / frames
        except Exception as err:  # noqa: BLE001 - report and go on with the other precisions
            timings[policy] = {"error": f"{type(err).__name__}: {err}"}
            continue
        entry = {"ms_per_frame": dt * 1e3, "fps": 1.0 / dt}
        if f32_out is None:
            f32_out = out
        else:
            entry["max_abs_logit_diff_vs_float32"] = float(np.abs(out.astype(np.float32) - f32_out).max())
            entry["person_iou_vs_float32"] = _iou(_person_mask(out[0]), _person_mask(f32_out[0]))
        timings[policy] = entry
    result[f"timing_{size}x{size}_{frames}_frames"] = timings
    return result


def set_full_float32(backend: str, on: bool) -> None:
    """Turn TF32 off (``on``) or back to the backend's default for float32 convolutions and matmuls."""
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest" if on else None)
    elif backend == "torch":
        import torch

        torch.backends.cudnn.allow_tf32 = not on
        torch.backends.cuda.matmul.allow_tf32 = not on
    else:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(not on)


def _devices(backend: str) -> list[str]:
    try:
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices()]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices()]
    except Exception as err:  # noqa: BLE001
        return [f"unknown ({err})"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, type=Path, help="deeplabv3_257_mv_gpu.tflite")
    p.add_argument("--reference", type=Path, help="npz made with --make-reference (TFLite logits)")
    p.add_argument("--make-reference", type=Path, metavar="NPZ", help="write TFLite reference logits and exit")
    p.add_argument("--images", nargs="*", type=Path, default=[], help="photos for --make-reference")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--size", type=int, default=513)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.make_reference:
        make_reference(args.weights, args.images, args.make_reference)
        return 0
    result = check(args.weights, args.reference, args.frames, args.size)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    ok = result["max_abs_logit_diff_accelerator_vs_cpu"] <= 1e-3 and result.get("max_abs_logit_diff_accelerator_vs_tflite", 0) <= 1e-3
    print("logits agree within 1e-3" if ok else "LOGITS DIFFER by more than 1e-3", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
