"""``python -m livebokeh.segment.deeplab.train``: train the DeepLab-v3+ decoder (see the package text)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import platform
import sys
import time
from pathlib import Path

from livebokeh.errors import LivebokehError, one_line

log = logging.getLogger("livebokeh.segment.deeplab.train")


def parser() -> argparse.ArgumentParser:
    from livebokeh.segment.deeplab.train.stages import Settings

    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m livebokeh.segment.deeplab.train",
        description="Train livebokeh's DeepLab-v3+ decoder (background / person) on top of the released "
                    "DeepLab-v3 MobileNetV2, distilled from Robust Video Matting on the MIT-licensed clips "
                    "and portraits; validate on held-out clips and portraits.")
    p.add_argument("--data", metavar="DIR", help="folder with videos/ and portraits/ (default: $LIVEBOKEH_DATA, "
                   "$LIVEBOKEH_SHARED/data or ../shared/data)")
    p.add_argument("--work", metavar="DIR", help="cache of the teacher's mattes and the features "
                   "(default: the livebokeh cache folder, train-deeplab)")
    p.add_argument("--out", metavar="FILE", help="decoder weights to write (default: WORK/deeplabv3plus_person.npz); "
                   "the report goes beside it as .json")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--deeplab-weights", metavar="FILE",
                   help="the released DeepLab .tflite (default: as livebokeh finds it)")
    p.add_argument("--rvm-weights", metavar="FILE", help="RVM's .onnx, the teacher (default: as livebokeh finds it)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--variants", type=int, default=d.variants, help="pictures made of each training frame")
    p.add_argument("--portraits", choices=("none", "half"), default=d.portraits,
                   help="none: every portrait held out for validation; half: every other one trained on")
    p.add_argument("--portrait-repeat", type=int, default=d.portrait_repeat,
                   help="pictures made of a portrait trained on, in multiples of --variants")
    p.add_argument("--train-aspp", action="store_true", help="train the ASPP (the encoder's last layers) too")
    p.add_argument("--no-prior", dest="prior", action="store_false",
                   help="no linear skip from the ASPP to the logits (started from the released classifier's "
                        "background and person)")
    p.add_argument("--decoder-channels", type=int, default=d.decoder_channels)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--crop", type=int, default=d.crop, help="crop side in stride-4 pixels (odd)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--threads", type=int, default=d.threads, help="threads of the teacher and the feature runs")
    p.add_argument("--no-evaluate", action="store_true", help="skip the validation")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("jax").setLevel(logging.WARNING)  # its "no TPU" notice
    try:
        return run(args)
    except LivebokehError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    from livebokeh.bench.common import require_data
    from livebokeh.errors import ConfigError
    from livebokeh.models import cache_dir, locate
    from livebokeh.segment.deeplab import decoder as dec
    from livebokeh.segment.deeplab.train import data as D
    from livebokeh.segment.deeplab.train import stages as S

    try:
        import jax  # noqa: F401 - the fit runs on it
    except ImportError:
        raise ConfigError("training the decoder needs JAX, which is not installed: pip install 'livebokeh[train]'") from None
    settings = S.Settings(seed=args.seed, variants=args.variants, portraits=args.portraits,
                          portrait_repeat=args.portrait_repeat, train_aspp=args.train_aspp, prior=args.prior,
                          decoder_channels=args.decoder_channels, steps=args.steps, batch=args.batch,
                          crop=args.crop, lr=args.lr, threads=args.threads)
    data = require_data(args.data)
    work = Path(args.work) if args.work else cache_dir() / "train-deeplab"
    out = Path(args.out) if args.out else work / dec.DECODER_FILE
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it, or another --out")
    if out.suffix != ".npz":
        raise ConfigError(f"--out must end in .npz, got {out.name}")
    split = D.split(data, settings.portraits)
    if not split.train_clips or not split.validation_clips:
        raise ConfigError(f"{data / 'videos'} lacks the training or the validation clips "
                          f"({', '.join(D.VALIDATION_CLIPS)} are held out)")
    release = locate("deeplab", args.deeplab_weights)
    rvm = str(locate("rvm", args.rvm_weights))
    work.mkdir(parents=True, exist_ok=True)
    with _log_to(work / "train.log"):
        return _stages(settings, split, data, work, out, release, rvm, evaluate=not args.no_evaluate)


@contextlib.contextmanager
def _log_to(path: Path):
    """livebokeh's log (INFO and up) also goes to ``path`` while open."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("livebokeh")
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def _stages(settings, split, data: Path, work: Path, out: Path, release: Path, rvm: str, evaluate: bool) -> int:
    from livebokeh.segment.deeplab import decoder as dec
    from livebokeh.segment.deeplab.train import fit as F
    from livebokeh.segment.deeplab.train import stages as S
    from livebokeh.segment.deeplab.weights import read_tflite_tensors

    log.info("settings: %s", json.dumps(dataclasses.asdict(settings), sort_keys=True))
    log.info("split: %s", json.dumps(split.describe()))

    report = S.Report(settings=dataclasses.asdict(settings), split=split.describe())
    report.files = {"release": {"path": str(release), "sha256": S.digest(release)},
                    "teacher": {"path": rvm, "sha256": S.digest(Path(rvm))}, "data": str(data)}
    report.fit["environment"] = _environment()
    times = {}
    t0 = time.perf_counter()
    teacher = S.teacher_stage(split, work, settings, rvm)
    times["teacher_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cache = S.features_stage(split, teacher, work, settings, release)
    times["features_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    arrays = {k: cache.array(k) for k in cache.shapes}
    low_c = cache.shapes["low"][-1]
    shapes = F.Shapes(low_channels=low_c, decoder_channels=settings.decoder_channels,
                      skip_channels=settings.skip_channels)
    params, curve = F.train(arrays, shapes, settings.steps, settings.batch, settings.crop, settings.lr,
                            settings.weight_decay, settings.edge_weight, settings.seed,
                            release=read_tflite_tensors(release), train_aspp=settings.train_aspp,
                            prior=settings.prior)
    times["fit_s"] = time.perf_counter() - t0
    meta = {"classes": 2, "class_names": ["background", "person"], "person_class": F.PERSON,
            "decoder_channels": settings.decoder_channels, "skip_channels": settings.skip_channels,
            "trained_aspp": settings.train_aspp, "prior": settings.prior,
            "release_sha256": report.files["release"]["sha256"],
            "input_size": [257, 257],
            "trained_on": sorted(p.name for p in split.train_clips + split.train_portraits),
            "training": {"settings": report.settings, "samples": cache.n,
                         "final_loss": curve[-1][1] if curve else None}}
    dec.save(out, F.to_tensors(params), meta)
    log.info("wrote %s (%d bytes)", out, out.stat().st_size)
    report.fit.update(samples=cache.n, curve=curve, weights=str(out), weights_sha256=S.digest(out))

    if evaluate:
        from livebokeh.segment.deeplab.train.evaluate import evaluate as validate

        t0 = time.perf_counter()
        report.evaluation = validate(split, teacher, release, out, rvm, data, settings.threads)
        times["evaluate_s"] = time.perf_counter() - t0
        for k, v in report.evaluation["targets"].items():
            log.info("target %s: %s by %+.3f", k, "met" if v["met"] else "MISSED", v["margin"])
    report.fit["times"] = times
    report.write(out.with_suffix(".json"))
    log.info("report: %s", out.with_suffix(".json"))
    return 0


def _environment() -> dict:
    import jax
    import numpy as np

    return {"python": platform.python_version(), "machine": platform.machine(), "numpy": np.__version__,
            "jax": jax.__version__, "jax_devices": [str(d) for d in jax.devices()]}


if __name__ == "__main__":
    sys.exit(main())
