"""``livebokeh bench ...``: benchmarks on the evaluation data."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from livebokeh.errors import (
    ConfigError,
    LivebokehError,
    OneLineParser,
    exit_code,
    log_to_stderr,
    one_line,
    printable,
)

if TYPE_CHECKING:
    from livebokeh.config import Config


def _subcommand(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A bench subcommand with the options every bench shares: --data, --json and the weights files."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--data", help="evaluation data folder (default: $LIVEBOKEH_DATA or ../shared/data)")
    p.add_argument("--json", help="also write the results as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file (default: refuse)")
    p.add_argument("--deeplab-weights", dest="deeplab.weights", default=argparse.SUPPRESS, metavar="FILE",
                   help="DeepLab weights file (default: $LIVEBOKEH_DEEPLAB_WEIGHTS, the cache or a download)")
    p.add_argument("--rvm-weights", dest="rvm.weights", default=argparse.SUPPRESS, metavar="FILE",
                   help="RVM weights file (default: $LIVEBOKEH_RVM_WEIGHTS, the cache or a download)")
    p.set_defaults(config=None)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="livebokeh bench", description="Benchmarks (speed side by side, mask quality).")
    sub = p.add_subparsers(dest="what", required=True)
    m = _subcommand(sub, "models", "segmenter ms/frame and IoU on stills, every backend")
    m.add_argument("--frames", type=int, default=60, help="frames to time per model (default 60)")
    m.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    m.add_argument("--stills-step", type=int, default=1, help="use every Nth still for IoU (default 1: all)")
    q = _subcommand(sub, "quality", "mask quality: each smoothing/refinement step on and off, per backend")
    q.add_argument("--backends", nargs="+", default=["mediapipe", "deeplab", "rvm"], help="backends to compare")
    q.add_argument("--clip-frames", type=int, default=100000, help="frames per clip at most (default: all)")
    q.add_argument("--stills-step", type=int, default=1, help="use every Nth still (default 1: all)")
    pl = _subcommand(sub, "pipeline", "whole pipeline vs the segmenter alone and a naive sequential loop")
    pl.add_argument("--backends", nargs="+", help="backends (default: the settings' backend)")
    pl.add_argument("--frames", type=int, default=183, help="frames per file case (default 183)")
    pl.add_argument("--paced-frames", type=int, default=300, help="frames of the paced 30 fps case")
    pl.add_argument("--repeats", type=int, default=2, help="runs of each file case, best kept (default 2)")
    pl.add_argument("--config", "-c", metavar="FILE|PRESET",
                    help="settings the pipeline and the segmenter-alone reference run with (default: the defaults)")
    co = _subcommand(sub, "cost", "what each quality step costs: the 720p file pipeline with each one off")
    co.add_argument("--frames", type=int, default=183, help="frames per run (default 183)")
    co.add_argument("--repeats", type=int, default=2, help="runs of each variant, best kept (default 2)")
    co.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to start from (default: the defaults)")
    so = _subcommand(sub, "soak", "live pipeline on a looping clip for a long time: memory, threads, latency")
    so.add_argument("--frames", type=int, default=20000, help="frames to run (default 20000)")
    so.add_argument("--fps", type=float, default=30.0, help="camera pace (default 30)")
    so.add_argument("--short", action="store_true", help="a quick run for CI: 300 frames at 100 fps")
    so.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    _subcommand(sub, "render", "renderer: halo, bokeh and replacement colours against the naive ways, ms a frame")
    de = _subcommand(sub, "depth", "--depth: blur against known depth on a generated room, flicker, cost live and in files")
    de.add_argument("--depth-weights", dest="render.depth_weights", default=argparse.SUPPRESS, metavar="FILE",
                    help="depth model file (default: $LIVEBOKEH_DEPTH_WEIGHTS or the cache; never downloaded here)")
    de.add_argument("--flicker-frames", type=int, default=60, help="frames of each still clip (default 60)")
    de.add_argument("--paced-frames", type=int, default=300,
                    help="frames of the paced 30 fps pipeline runs (default 300; 0 with --file-frames 0: no pipeline runs)")
    de.add_argument("--file-frames", type=int, default=120, help="frames of the file pipeline runs (default 120)")
    de.add_argument("--repeats", type=int, default=2, help="pipeline runs with and without depth, in turn (default 2)")
    de.add_argument("--clips", nargs="*", default=None, help="clips of videos/ for the flicker (default: office720p.mp4 d3.mp4 d6.mp4)")
    de.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    fr = _subcommand(sub, "framing", "auto-framing on clips with known motion: error, jerk, lag, against naive centring")
    fr.add_argument("--seconds", type=_at_least(0.5), default=1.0,
                    help="scales the clips' lengths, at least 0.5 (default 1: 45 s in all)")
    fr.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    lv = _subcommand(sub, "live", "the live path fed clips as cameras, quiet and beside busy processes: fps, drops, "
                                  "latency, cores, the controller, flicker and IoU against the file mode")
    lv.add_argument("--clip", action="append", metavar="FILE",
                    help="a clip to play as a camera (again for more; default: the data's office720p.mp4 and "
                         "d0_greenscreen.mp4)")
    lv.add_argument("--backends", nargs="+", help="backends (default: the settings' backend)")
    lv.add_argument("--load", type=_count, nargs="+", default=[0, 1], metavar="N",
                    help="busy processes beside it, one case each (default: 0 1)")
    lv.add_argument("--controller", choices=("on", "off", "both"), default="both",
                    help="the live controller on, off or both side by side (default both)")
    lv.add_argument("--seconds", type=_at_least(2.0), default=20.0, help="seconds a case (default 20)")
    lv.add_argument("--fps", type=_rate, default=30.0,
                    help="the camera's rate: each clip played at it (default 30, a 720p30 camera); 0: each clip's own")
    lv.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    od = _subcommand(sub, "ondemand", "--on-demand: CPU while nobody reads the virtual camera, wake-up and release times")
    od.add_argument("--idle", type=_at_least(1.0), default=60.0, help="seconds idle with no reader (default 60)")
    od.add_argument("--active", type=_at_least(1.0), default=5.0, help="seconds with a reader (default 5)")
    od.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    ct = _subcommand(sub, "control", "control page and ctl: frames until a change shows, a backend swap's drops, the page's CPU")
    ct.add_argument("--changes", type=int, default=40, help="changes to time (default 40)")
    ct.add_argument("--seconds", type=_at_least(2.0), default=10.0,
                    help="seconds of each page-open and page-closed window, two of each (default 10)")
    ct.add_argument("--swaps", type=int, default=4, help="backend swaps (default 4; where the pipeline can swap)")
    ct.add_argument("--config", "-c", metavar="FILE|PRESET", help="settings to run with (default: the defaults)")
    return p


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 or more, got {text}")
    return int(text)


def _rate(text: str) -> float:
    """An argparse type: frames a second, 0 (the clip's own) or at least 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value == 0 or 1 <= value <= 240):
        raise argparse.ArgumentTypeError(f"must be 0 (each clip's own rate) or from 1 to 240, got {text}")
    return value


def _at_least(low: float):
    """An argparse type: a number of seconds, ``low`` or more."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return value

    return seconds


def _weights(args: argparse.Namespace) -> dict[str, str]:
    """The weights files given on the command line, as settings overrides."""
    return {k: v for k, v in vars(args).items() if k.endswith((".weights", ".depth_weights"))}


def _config(args: argparse.Namespace) -> Config:
    """The settings of ``--config`` (a file or a preset name; the defaults without one), with the
    weights files given on the command line."""
    from livebokeh.config import apply_keys, load_config

    return apply_keys(load_config(args.config), _weights(args), "command line")


#: The benches that read the evaluation data (``--data``); ``bench live`` only without ``--clip``.
READS_DATA = frozenset({"models", "quality", "pipeline", "cost", "soak", "render", "depth", "framing", "live"})


def _check_json(args: argparse.Namespace, cfg: Config) -> None:
    """``--json``'s file under a run's output policy (:func:`~livebokeh.sinks.files.check_outputs`):
    a name, in a folder that exists and can be written, never an existing file (a link too, one to
    nothing included) without ``--overwrite``, never one of the bench's inputs, even with it: its
    settings file, weights, clips, or any file in its data folder. Raises ConfigError (exit 2)."""
    import dataclasses

    from livebokeh.bench.common import default_data_dir
    from livebokeh.config import preset_names
    from livebokeh.sinks.files import Output, check_outputs

    out = Output.of("--json", args.json)
    if args.what in READS_DATA and not (args.what == "live" and args.clip):
        data = Path(args.data) if args.data else default_data_dir()
        if data is not None and data.is_dir() and os.path.lexists(out.path):
            try:
                inside = data.resolve() in out.path.resolve().parents
            except (OSError, RuntimeError):  # a loop of links: check_outputs says what it is
                inside = False
            if inside:
                raise ConfigError(f"--json {out.path} would replace an input of the bench (a file in its data "
                                  f"folder {data}); choose another name")
    read: list[str | Path] = [c for c in [args.config] if c and c not in preset_names()]
    read += [Path(c) for c in getattr(args, "clip", None) or []]
    for section in dataclasses.asdict(cfg).values():  # weights files, a background picture
        if isinstance(section, dict):
            read += [v for k, v in section.items()
                     if isinstance(v, str) and v and k.endswith(("weights", "background")) and Path(v).is_file()]
    check_outputs([out], read, args.overwrite)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr()  # control characters escaped
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from livebokeh.bench import common

    try:
        cfg = _config(args)
        if args.json is not None:  # told before minutes of measuring
            _check_json(args, cfg)
        if args.what == "models":
            from livebokeh.bench import models as bench

            data = common.require_data(args.data)
            report = bench.run(data, args.frames, args.threads, cfg, max(1, args.stills_step))
        elif args.what == "pipeline":
            from livebokeh.bench import pipeline as bench

            data = common.require_data(args.data)
            report = bench.run(data, args.backends or [cfg.segmenter.backend], args.frames, args.paced_frames,
                               args.repeats, cfg)
        elif args.what == "cost":
            from livebokeh.bench import pipeline as cost

            report = cost.cost(common.require_data(args.data), args.config, args.frames, args.repeats, _weights(args))
            common.write_json(args.json, report, args.overwrite)
            print(printable(cost.render_cost(report)))
            return 0
        elif args.what == "soak":
            from livebokeh.bench import pipeline as soak

            data = common.require_data(args.data)
            frames, fps = (300, 100.0) if args.short else (args.frames, args.fps)
            report = soak.soak(data, frames, fps, cfg)
            common.write_json(args.json, report, args.overwrite)
            print(printable(soak.render_soak(report)))
            return 0 if report["rss_growth"] < 0.05 or args.short else 1
        elif args.what == "depth":
            from livebokeh.bench import depth

            clips = depth.CLIPS if args.clips is None else tuple(args.clips)
            report = depth.run(common.require_data(args.data), cfg, max(2, args.flicker_frames), max(0, args.paced_frames),
                               max(0, args.file_frames), max(1, args.repeats), clips)
            common.write_json(args.json, report, args.overwrite)
            print(printable(depth.render(report)))
            return 0
        elif args.what == "framing":
            from livebokeh.bench import framing

            report = framing.run(common.require_data(args.data), cfg, args.seconds)
            common.write_json(args.json, report, args.overwrite)
            print(printable(framing.render(report)))
            return 0
        elif args.what == "live":
            from livebokeh.bench import live
            from livebokeh.config import BACKENDS
            from livebokeh.sources import is_still_input

            adapt = {"on": (True,), "off": (False,), "both": (True, False)}[args.controller]
            backends = args.backends or [cfg.segmenter.backend]
            unknown = [b for b in backends if b not in BACKENDS]
            if unknown:  # told before minutes of work
                raise ConfigError(f"--backends {' '.join(unknown)}: no such backend; backends: {', '.join(BACKENDS)}")
            with common.scratch_dir() as scratch:
                references: dict = {}
                if args.clip:
                    clips = [Path(c) for c in args.clip]
                    stills = [str(c) for c in clips if c.is_file() and is_still_input(c)]
                    if stills:
                        raise ConfigError(f"--clip {', '.join(stills)}: a still picture, not a clip; give videos")
                else:
                    data = common.require_data(args.data)
                    clips = [data / "videos" / name for name in live.DEFAULT_CLIPS]
                    made = live.moving_camera_clip(data, scratch, args.fps or 30.0)
                    if made is not None:
                        clips.append(made[0])
                        references[str(made[0])] = made[1]
                missing = [str(c) for c in clips if not c.is_file()]
                if missing:
                    raise ConfigError(f"no clip {', '.join(missing)}; pass --clip FILE or --data DIR")
                report = live.run(clips, cfg, backends, args.load, adapt, args.seconds, args.fps or None, references)
            common.write_json(args.json, report, args.overwrite)
            print(printable(live.render(report)))
            return 0
        elif args.what == "ondemand":
            from livebokeh.bench import ondemand

            report = ondemand.run(cfg, args.idle, args.active)
            common.write_json(args.json, report, args.overwrite)
            print(printable(ondemand.render(report)))
            return 0
        elif args.what == "control":
            from livebokeh.bench import control

            report = control.run(cfg, args.changes, args.seconds, args.swaps)
            common.write_json(args.json, report, args.overwrite)
            print(printable(control.render(report)))
            return 0
        elif args.what == "quality":
            from livebokeh.bench import quality as bench

            data = common.require_data(args.data)
            report = bench.run(data, args.backends, cfg, args.clip_frames, max(1, args.stills_step))
        else:
            from livebokeh.bench import render as bench

            report = bench.run(Path(args.data) if args.data else common.default_data_dir(), settings=cfg)
        common.write_json(args.json, report, args.overwrite)
        print(printable(bench.render(report)))
    except LivebokehError as err:
        print(f"livebokeh: error: {one_line(err)}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt:  # Ctrl-C (SIGTERM and SIGHUP unwind as it does): its files are removed
        print("livebokeh: interrupted", file=sys.stderr)
        return 130
    return 0
