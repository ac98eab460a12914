"""The ``livebokeh`` command.

Only the standard library is imported at module level, so ``livebokeh --help`` is instant; the
pipeline and its libraries are imported when a run starts.
"""

from __future__ import annotations

import argparse
import errno
import io
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from livebokeh import __version__
from livebokeh.errors import (
    ConfigError,
    LivebokehError,
    ModelError,
    OneLineParser,
    PrintableFormatter,
    StdoutError,
    TaggedStdout,
    exit_code,
    one_line,
    printable,
    stdout_error,
    stdout_gone,
)

log = logging.getLogger("livebokeh")

EPILOG = """\
commands:
  livebokeh models list|download|path [NAME]      downloadable model weights
  livebokeh bench models|quality|render|depth|pipeline|cost|live|soak|framing|ondemand|control   benchmarks
  livebokeh doctor                                checks cameras, virtual camera, GPU, models, service
  livebokeh service install|uninstall|status      always-on virtual camera at login (Linux, systemd)
  livebokeh ctl status|get|set|snapshot|pause|resume   steer a running livebokeh (its control page too)

examples:
  livebokeh                                       webcam 0 -> virtual camera + preview
  livebokeh --camera 1 --config call --no-preview
  livebokeh --input talk.mp4 --output talk_portrait.mp4
  livebokeh --camera talk.mp4 --loop              a recording played as the webcam (try settings, demos)
  livebokeh --input photo.jpg --output photo_portrait.jpg --save-mask photo_mask.png
  livebokeh --print-config > my.toml              write every setting, then edit and pass --config my.toml

In the preview window: q or Esc quits. Ctrl-C stops cleanly and finalises any recording. A live run
serves a control page on 127.0.0.1 (its address is logged; `livebokeh ctl status` prints it) and
reads its settings file again on SIGHUP.
"""


def build_parser() -> argparse.ArgumentParser:
    from livebokeh.config import preset_names, quality_names

    p = OneLineParser(
        prog="livebokeh",
        description="Real-time portrait mode: blur the background behind the person in a webcam, video or photo.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cfg = argparse.SUPPRESS  # flags that override config keys appear only when given

    g = p.add_argument_group("input and output")
    g.add_argument("--camera", dest="camera.device", metavar="INDEX|PATH|FILE", default=cfg)
    g.add_argument("--loop", dest="camera.loop", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--input", "-i", metavar="FILE", nargs="+",
                   help="process video or image files (or a folder of images) instead of a camera")
    g.add_argument("--output-dir", metavar="DIR", help="with several inputs: write NAME_portrait.EXT for each here")
    g.add_argument("--output", "-o", metavar="FILE",
                   help="write the result: a video (.mp4 H.264, .mkv, .mov, .webm, .avi) or an image (.jpg, .png)")
    g.add_argument("--save-mask", metavar="PATH",
                   help="write the final alpha as 8-bit gray: an image for image input; for video a video "
                        "(lossless FFV1 for .mkv) or a pattern such as masks/%%05d.png")
    g.add_argument("--alpha-output", metavar="PATH",
                   help="the frames with the person alpha as transparency: .mov (ProRes 4444), .webm (VP9), "
                        ".mkv (FFV1) or a PNG pattern such as alpha/%%05d.png")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files (default: refuse)")
    g.add_argument("--quality", choices=quality_names(),
                   help="files: fast keeps live settings; best spends more time per frame (RVM's backbone at 512 px; "
                        "look-ahead smoothing, and the ROI pass or DeepLab at 513 px in the frame's shape); "
                        "the presets are configs/quality/*.toml, over --config, under the flags")
    g.add_argument("--crf", dest="output.crf", metavar="N", default=cfg)
    g.add_argument("--preset", dest="output.preset", metavar="NAME", default=cfg)
    g.add_argument("--audio", dest="output.audio", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")

    g = p.add_argument_group("camera")
    g.add_argument("--width", dest="camera.width", default=cfg)
    g.add_argument("--height", dest="camera.height", default=cfg)
    g.add_argument("--fps", dest="camera.fps", default=cfg)
    g.add_argument("--fourcc", dest="camera.fourcc", default=cfg)

    g = p.add_argument_group("segmentation")
    g.add_argument("--backend", dest="segmenter.backend", default=cfg)
    g.add_argument("--model", dest="mediapipe.model", default=cfg)
    g.add_argument("--threads", dest="segmenter.threads", default=cfg)
    g.add_argument("--model-size", dest="model.size", metavar="PX", default=cfg)
    g.add_argument("--backbone", dest="rvm.backbone", metavar="PX", default=cfg)
    g.add_argument("--model-rate", dest="segmenter.rate", metavar="N", default=cfg)
    g.add_argument("--model-aspect", dest="deeplab.aspect", metavar="SHAPE", default=cfg)
    g.add_argument("--runtime", dest="deeplab.runtime", default=cfg)
    g.add_argument("--precision", dest="deeplab.precision", default=cfg)
    g.add_argument("--deeplab-weights", dest="deeplab.weights", metavar="FILE", default=cfg)
    g.add_argument("--deeplab-decoder", dest="deeplab.decoder", metavar="auto|on|off", default=cfg)
    g.add_argument("--rvm-weights", dest="rvm.weights", metavar="FILE", default=cfg)
    g.add_argument("--roi", dest="segmenter.roi", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--tta", dest="segmenter.tta", metavar="auto|on|off", default=cfg)
    g.add_argument("--mask-low", dest="mask.low", default=cfg)
    g.add_argument("--mask-high", dest="mask.high", default=cfg)
    g.add_argument("--feather", dest="mask.feather", default=cfg)
    g.add_argument("--smoothing", dest="mask.smoothing", default=cfg)
    g.add_argument("--lookahead", dest="mask.lookahead", metavar="N", default=cfg)

    g = p.add_argument_group("framing")
    g.add_argument("--framing", dest="framing.enabled", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--zoom-max", dest="framing.zoom_max", metavar="X", default=cfg)
    g.add_argument("--framing-lookahead", dest="framing.lookahead", metavar="S", default=cfg)

    g = p.add_argument_group("effect")
    g.add_argument("--effect", dest="render.effect", default=cfg)
    g.add_argument("--blur", dest="render.blur", default=cfg)
    g.add_argument("--fstop", dest="render.fstop", metavar="N", default=cfg)
    g.add_argument("--focus-distance", dest="render.focus_distance", metavar="METRES", default=cfg)
    g.add_argument("--depth", dest="render.depth", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--max-blur", dest="render.max_blur", metavar="F", default=cfg)
    g.add_argument("--depth-weights", dest="render.depth_weights", metavar="FILE", default=cfg)
    g.add_argument("--aperture", dest="render.aperture", metavar="SHAPE", default=cfg)
    g.add_argument("--blades", dest="render.blades", metavar="N", default=cfg)
    g.add_argument("--linear", dest="render.linear", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--highlights", dest="render.highlights", metavar="GAIN", default=cfg)
    g.add_argument("--light-wrap", dest="render.light_wrap", metavar="S", default=cfg)
    g.add_argument("--light-wrap-size", dest="render.light_wrap_size", metavar="F", default=cfg)
    g.add_argument("--background", dest="render.background", metavar="IMAGE|VIDEO|COLOUR", default=cfg)
    g.add_argument("--mirror", dest="render.mirror", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--mask", metavar="PATH",
                   help="render with these masks instead of segmenting: a gray image, a mask video or a "
                        "pattern such as masks/%%05d.png (as written by --save-mask)")

    g = p.add_argument_group("live")
    g.add_argument("--adapt", dest="live.adapt", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--fallback", dest="live.fallback", metavar="BACKEND", default=cfg)

    g = p.add_argument_group("live outputs")
    g.add_argument("--virtual-camera", dest="virtual_camera.enabled", action=argparse.BooleanOptionalAction,
                   default=cfg)
    g.add_argument("--vcam-device", dest="virtual_camera.device", metavar="DEVICE", default=cfg)
    g.add_argument("--vcam-backend", dest="virtual_camera.backend", metavar="NAME", default=cfg)
    g.add_argument("--vcam-fps", dest="virtual_camera.fps", default=cfg)
    g.add_argument("--on-demand", dest="virtual_camera.on_demand", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--preview", dest="preview.enabled", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--overlay", dest="preview.overlay", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--control", dest="control.enabled", action=argparse.BooleanOptionalAction, default=cfg)
    g.add_argument("--control-port", dest="control.port", metavar="PORT", default=cfg)
    g.add_argument("--backgrounds", dest="control.backgrounds", metavar="DIR", default=cfg)

    g = p.add_argument_group("general")
    g.add_argument("--config", "-c", metavar="FILE|PRESET", action="append",
                   help=f"settings file (TOML) or preset: {', '.join(preset_names())}; given again, the later one "
                        "wins (--config call --config mine.toml); --quality and flags override them")
    g.add_argument("--print-config", action="store_true", help="print the effective settings as TOML and exit")
    g.add_argument("--stats", action="store_true", help="print per-stage timings, fps, drops and latency at the end")
    g.add_argument("--stats-json", metavar="PATH", help="write the same statistics as JSON")
    g.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")
    g.add_argument("--verbose", "-v", action="store_true", help="more detail")
    g.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    g.add_argument("--version", action="version", version=f"livebokeh {__version__}")
    for action in p._actions:
        if "." in action.dest:
            _from_schema(action, HINTS.get(action.dest, ""))
    return p


#: What a flag's help adds to its settings key's meaning, for the command line only.
HINTS = {"preview.enabled": "for files only when asked; keys in the window: + - d [ ] e f m o q"}


def _from_schema(action: argparse.Action, hint: str) -> None:
    """A settings flag's help, type and metavar from the key's schema (livebokeh.config): the
    meaning, what it accepts and its default are written once, there."""
    from livebokeh.config import describe_key

    info = describe_key(action.dest)
    if action.nargs != 0 and not isinstance(info.default, bool):
        if isinstance(info.default, (int, float)):
            action.type = type(info.default)
        if action.metavar is None:
            action.metavar = action.dest.rsplit(".", 1)[1].upper()
    parts = [info.doc]
    if info.choices and not all(c in info.doc for c in info.choices):
        parts.append(info.accepts)
    if hint:
        parts.append(hint)
    if shown := _shown(info.default):
        parts.append(f"default {shown}")
    action.help = "; ".join(parts).replace("%", "%%")


def _shown(value: Any) -> str:
    """A default as the command line writes it ('' for an empty string: its meaning is in the doc)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (not the stream of when logging was set up)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if (args.verbose or args.debug) else logging.WARNING if args.quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(PrintableFormatter("livebokeh: %(message)s"))
    root = logging.getLogger("livebokeh")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags give, with what they imply (:func:`livebokeh.config.with_implied`)."""
    from livebokeh.config import with_implied

    return with_implied({k: v for k, v in vars(args).items() if "." in k})


def flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Settings key -> the flag that sets it (``render.blur`` -> ``--blur``), for errors."""
    return {a.dest: a.option_strings[0] for a in parser._actions if "." in a.dest and a.option_strings}


#: Subcommands: name -> module (imported on use) with ``main(argv) -> int``.
COMMANDS = {
    "models": "livebokeh.commands.models",
    "bench": "livebokeh.commands.bench",
    "doctor": "livebokeh.commands.doctor",
    "service": "livebokeh.commands.service",
    "ctl": "livebokeh.commands.ctl",
}


def main(argv: list[str] | None = None) -> int:
    """The command; its exit status. A reader that closes the pipe early (``livebokeh models
    list | head``) ends it quietly, as other commands end: status 141 (128 + SIGPIPE), no message."""
    if argv is None:  # run as the command: its own standard streams
        _open_closed_streams()
        if not isinstance(sys.stdout, (TaggedStdout, _ClosedOutput)):
            sys.stdout = TaggedStdout(sys.stdout)
    try:
        try:
            code = _main(argv)
        except SystemExit as done:  # --help, --version, a wrong flag: argparse swallows a failed write
            if argv is not None:
                raise  # called from Python: as argparse ends it
            if done.code is not None and not isinstance(done.code, int):
                print(done.code, file=sys.stderr)  # as Python's own exit says it
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        sys.stdout.flush()  # what waits in the buffer: a full disk is said here, not at exit
        failed = getattr(sys.stdout, "failed", None)
        if failed is not None:
            raise failed
        return code
    except BrokenPipeError:
        if not stdout_gone():
            raise
        _drop_stdout()
        return 128 + int(getattr(signal, "SIGPIPE", 13))
    except OSError as err:
        why = stdout_error(err)
        if why is None:
            raise
        _drop_stdout()
        print(f"livebokeh: error: cannot write to standard output ({why}); what was not printed is lost: "
              "send it to a file or pipe that can take it (on a full disk, free some space)", file=sys.stderr)
        return 1


def _open_closed_streams() -> None:
    """Standard streams the caller closed (``livebokeh ... 2>&-``, as some launchers do) are
    opened on the null device: else the next file opened takes that descriptor, and a native
    library's log line would land in it, and ``sys.stderr`` (None) breaks what writes to it."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            if fd == 1:  # its descriptor is the null device's; what is printed is refused, not lost unsaid
                sys.stdout = _ClosedOutput()
            elif getattr(sys, name) is None:
                setattr(sys, name, open(fd, mode, closefd=False, encoding="utf-8", errors="backslashreplace"))  # noqa: SIM115 - for the whole run
        except OSError:
            pass


class _ClosedOutput(io.TextIOBase):
    """``sys.stdout`` when the caller closed it (``>&-``): a run that prints nothing is not
    bothered; a command whose product is its output (``--print-config``, ``ctl list``) fails,
    and says so (:class:`~livebokeh.errors.StdoutError`), rather than print into nothing."""

    failed: StdoutError | None = None  # a write was refused (argparse's --help swallows it)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.failed = StdoutError(errno.EBADF, "it is closed")
        raise self.failed

    def fileno(self) -> int:
        return 1  # the null device, opened there


def _drop_stdout() -> None:
    """Point standard output at the null device, so that nothing more is written to the closed
    pipe (Python's last flush at exit would report the error again)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def _main(argv: list[str] | None) -> int:
    argv_given = argv is not None
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in COMMANDS:
        import importlib

        from livebokeh.interrupts import take_hup, termination_unwinds

        try:
            with termination_unwinds():  # SIGTERM, SIGHUP, SIGQUIT: as Ctrl-C
                if take_hup():  # one that came while the command loaded
                    raise KeyboardInterrupt
                return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
        except KeyboardInterrupt:  # (each cleans up after itself: a download's part file, a bench's folder)
            print(f"livebokeh {argv[0]}: interrupted", file=sys.stderr)
            return 130
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        # from the start: a signal while loading is an interrupt. Run as the command (argv None),
        # the handlers stay until the process exits: a signal in its last moments is not fatal
        with _StopSignals(restore=argv_given) as signals:
            from livebokeh.interrupts import take_hup

            # a live run (a camera, or a video played without outputs) reads its settings again on
            # SIGHUP, from its first moments (`systemctl --user reload` as the service starts), never
            # stops on it; a file's run stops on it (a closed terminal), also on one that came as it loaded
            signals.hup_waits = not args.input or not (args.output or args.output_dir or args.save_mask
                                                       or args.alpha_output)
            if take_hup() and not signals.hup_waits:
                raise KeyboardInterrupt
            from livebokeh.config import load_config, to_toml

            # defaults < --config files < --quality preset (for the chosen backend) < flags
            flags = flag_names(parser)
            cfg = load_config(args.config, _overrides(args), quality=args.quality, flags=flags)
            from livebokeh.config import check_mask_range

            bounds = ("mask.low", "mask.high")  # named by their flags when a flag set one of them
            names = {k: flags[k] for k in bounds} if set(bounds) & set(_overrides(args)) else {}
            check_mask_range(cfg.mask, "given" if args.mask else cfg.segmenter.backend, names)
            if args.print_config:
                print(to_toml(cfg, {k: flags[k] for k in _overrides(args) if k in flags}), end="")
                return 0
            return _run(args, cfg, signals)
    except LivebokehError as err:
        if args.debug:
            log.exception("error")
        print(f"livebokeh: error: {one_line(err)}", file=sys.stderr)
        return _as_service(exit_code(err))
    except KeyboardInterrupt:
        print("livebokeh: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: one line, traceback with --debug
        if (isinstance(err, BrokenPipeError) and stdout_gone()) or stdout_error(err):
            raise  # --print-config | head: the reader is gone; > /dev/full, >&-: one line (see main)
        if args.debug:
            log.exception("internal error")
        where = "; ".join(getattr(err, "__notes__", []))
        print(
            f"livebokeh: internal error: {type(err).__name__}: {one_line(err)}"
            f"{f' ({where})' if where else ''}; run with --debug for the traceback",
            file=sys.stderr,
        )
        return _as_service(1)


def _as_service(code: int) -> int:
    """``code``; run by the service's unit, the journal also gets what systemd does next."""
    if os.environ.get("LIVEBOKEH_SERVICE"):
        from livebokeh.commands.service import exit_note

        if note := exit_note(code):
            print(f"livebokeh: {note}", file=sys.stderr)
    return code




#: A partial result livebokeh kept (``NAME.partial.EXT``, ``NAME.partial-2.EXT``): not an input.
_PARTIAL = re.compile(r".*\.partial(?:-\d+)?")


def _folder_images(folder: Path) -> list[str]:
    """The pictures a folder input holds, by name: hidden files (another run's temporary files,
    its claims) and livebokeh's partial results are left out, and anything that is no regular
    file (a FIFO would wait forever for a writer) is skipped with a warning."""
    from livebokeh.sources import IMAGE_SUFFIXES
    from livebokeh.sources.imageinfo import not_regular_kind

    found, videos = [], []
    for f in sorted(folder.iterdir()):
        if f.suffix.lower() in _FOLDER_VIDEOS and not f.name.startswith("."):
            videos.append(f.name)
        if f.suffix.lower() not in IMAGE_SUFFIXES or f.name.startswith("."):
            continue
        if _PARTIAL.fullmatch(f.stem):
            log.warning("skipped %s: a partial result of an earlier run, not an input", f)
            continue
        kind = not_regular_kind(f)
        if kind is not None or not f.is_file():
            log.warning("skipped %s: not a regular file (%s)", f, kind or "a folder")
            continue
        found.append(str(f))
    if videos:
        log.warning("left out %d video%s in %s (%s): a folder input takes its pictures; give each video as an "
                    "input of its own", len(videos), "s" if len(videos) > 1 else "", folder, ", ".join(videos[:3])
                    + (", ..." if len(videos) > 3 else ""))
    return found


#: The videos a folder input leaves out (and says so).
_FOLDER_VIDEOS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".ts", ".mts", ".flv", ".wmv", ".y4m"})
#: What ``--output-dir`` adds to each input's name (``a.jpg`` -> ``a_portrait.jpg``).
RESULT_TAG = "_portrait"


def _jobs(args: argparse.Namespace) -> list[Any]:
    from livebokeh.app import Job
    from livebokeh.sources import IMAGE_SUFFIXES, is_animation
    from livebokeh.sources.base import IMAGE_WRITE_SUFFIXES

    def job(input: str | None, output: str | None, save_mask: str | None = None, alpha_output: str | None = None) -> Job:
        return Job(input, output, save_mask, alpha_output, mask=args.mask, max_frames=args.max_frames,
                   overwrite=args.overwrite, explicit_preview="preview.enabled" in vars(args),
                   config_files=tuple(args.config or ()))

    inputs: list[str] = []
    for item in args.input or []:
        p = Path(item)
        if p.is_dir():
            found = _folder_images(p)
            if not found:
                raise ConfigError(f"folder {p} holds no images (.jpg, .png, ...)")
            inputs += found
        else:
            inputs.append(item)
    if not inputs:
        return [job(None, args.output, args.save_mask, args.alpha_output)]
    if len(inputs) == 1 and not args.output_dir:
        return [job(inputs[0], args.output, args.save_mask, args.alpha_output)]
    if not args.output_dir:
        raise ConfigError("several inputs need --output-dir DIR (each result is named after its input)")
    if args.output or args.save_mask or args.alpha_output:
        raise ConfigError("--output-dir names each result after its input: leave out --output, --save-mask and "
                          "--alpha-output, which name one file")
    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--output-dir {out_dir} is a file, not a folder; give a folder")
    if not out_dir.is_dir():
        raise ConfigError(f"--output-dir {out_dir} does not exist; create it first")
    jobs: list[Job] = []
    taken: dict[str, str] = {}
    for item in inputs:
        p = Path(item)
        suffix = p.suffix.lower() if p.suffix.lower() in IMAGE_SUFFIXES | {".mp4", ".mov", ".mkv", ".webm", ".m4v"} else ".mp4"
        if suffix in IMAGE_SUFFIXES - IMAGE_WRITE_SUFFIXES["--output"]:  # read, not written (.exr, .hdr): PNG
            suffix = ".png"
        if is_animation(p):  # read as a video
            suffix = ".mp4"
        out = out_dir / f"{p.stem}{RESULT_TAG}{suffix}"
        key = os.path.normcase(os.path.abspath(out))
        if key in taken:
            raise ConfigError(
                f"{taken[key]} and {item} would both be written to {out}; rename one, or process them in separate runs"
            )
        taken[key] = item
        jobs.append(job(item, str(out)))
    return jobs


def _check_outputs(args: argparse.Namespace, cfg: Any, jobs: list[Any]) -> None:
    """The output policy (:mod:`livebokeh.sinks.files`) for every file the whole run will write,
    before any input is read; then temporary files a killed run left on these outputs are kept."""
    from livebokeh.config import preset_names
    from livebokeh.sinks.files import Output, check_outputs, recover_stale

    outputs = []
    for job in jobs:
        for flag, path in (("--output", job.output), ("--save-mask", job.save_mask), ("--alpha-output", job.alpha_output)):
            if path is not None:  # --output-dir names each result, and is named in messages
                out = Output.of(flag, path, "--output-dir" if args.output_dir and flag == "--output" else "")
                _check_ending(out, job)
                outputs.append(out)
    if args.stats_json is not None:
        outputs.append(Output.of("--stats-json", args.stats_json))
    for out in outputs:  # a killed run's files first: kept whether or not this run may go on
        recover_stale(out)
    read: list[str | Path] = [job.input for job in jobs if job.input]
    from livebokeh.sources import is_clip

    if any(job.input is None for job in jobs) and is_clip(cfg.camera.device):
        read.append(cfg.camera.device)  # a video played as the camera is an input too
    if args.mask:  # its files are inputs (Output.of refuses a bad pattern)
        mask = Output.of("--mask", args.mask)
        read += mask.existing() if mask.pattern else [mask.path]
    background = cfg.render.background
    if background and Path(background).is_file():
        read.append(background)
    read += [c for c in args.config or [] if c not in preset_names()]
    check_outputs(outputs, read, args.overwrite)


def _check_ending(out: Any, job: Any) -> None:
    """The file ending ``out`` needs for ``job``'s kind of input (a still image, or video)."""
    from livebokeh.sinks.video import ALPHA_CODECS, COLOR_CODECS, MASK_CODECS
    from livebokeh.sources import is_animation, is_still_input
    from livebokeh.sources.base import IMAGE_WRITE_SUFFIXES

    still = job.input is not None and is_still_input(job.input)
    images = IMAGE_WRITE_SUFFIXES[out.flag]  # only endings that can be written as that kind of picture
    kind = "images with transparency" if out.flag == "--alpha-output" else "images"
    if out.pattern or still:
        allowed, what = images, kind
    else:
        allowed = {"--output": COLOR_CODECS, "--save-mask": MASK_CODECS, "--alpha-output": ALPHA_CODECS}[out.flag]
        what = "videos (" + ("a camera gives video" if job.input is None else "the input is an animated image, read "
                             "as a video" if is_animation(job.input) else "the input gives video") + ")"
    if out.path.suffix.lower() not in allowed:
        raise ConfigError(
            f"{out.named} {out.path}: {out.path.suffix or 'no ending'} is not one of the {what} it can write; use "
            + ", ".join(sorted(allowed))
        )


def _run(args: argparse.Namespace, cfg: Any, signals: _StopSignals) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if cfg.virtual_camera.backend:  # refused on every run, as a live one refuses it (not only when it opens)
        from livebokeh.sinks.virtualcam import check_backend

        check_backend(cfg.virtual_camera.backend)
    jobs = _jobs(args)
    _check_outputs(args, cfg, jobs)
    reports: list[Any] = []
    if len(jobs) == 1:
        code = _run_one(args, cfg, jobs[0], signals, reports)
    else:
        code = _run_batch(args, cfg, jobs, signals, reports)
    if args.stats_json and reports:
        from livebokeh.sinks.files import write_json

        entries = [r if isinstance(r, dict) else r.to_dict() for r in reports]
        write_json(Path(args.stats_json), entries[0] if len(jobs) == 1 else entries, args.overwrite)
    return code


class _ModelUnusable(ModelError):
    """A run's model could not be loaded (or downloaded) before its first frame: every input of a
    batch would fail the same way."""

    def __init__(self, error: ModelError) -> None:
        super().__init__(str(error))
        self.error = error


def _run_batch(args: argparse.Namespace, cfg: Any, jobs: list[Any], signals: _StopSignals, reports: list[Any]) -> int:
    failed = 0
    for n, job in enumerate(jobs, start=1):
        log.info("[%d/%d] %s", n, len(jobs), job.input)  # (its output is named once it is opened)
        try:
            code = _run_one(args, cfg, job, signals, reports)
        except (_ModelUnusable, ConfigError) as err:  # the same for every input: one line, the rest not tried
            # (a model or given masks that cannot be had, a setting that cannot be: a background)
            rest = f"; none of the {len(jobs)} inputs was processed" if n == 1 else \
                f"; the {len(jobs) - n + 1} inputs from {printable(str(job.input))} on were not processed"
            raise (ModelError if isinstance(err, _ModelUnusable) else ConfigError)(f"{one_line(err)}{rest}") from None
        except LivebokehError as err:
            print(f"livebokeh: error: {printable(str(job.input))}: {one_line(err)}", file=sys.stderr)
            reports.append({"source": Path(str(job.input)).name, "error": one_line(err)})
            failed += 1
            continue
        if code:
            return code
    if failed:
        print(f"livebokeh: error: {failed} of {len(jobs)} inputs failed (see above)", file=sys.stderr)
        return 1
    return 0


def _run_one(args: argparse.Namespace, cfg: Any, job: Any, signals: _StopSignals, reports: list[Any]) -> int:
    from livebokeh.app import open_run

    with ExitStack() as stack:
        # a live run (a camera, a clip played as one) reloads on SIGHUP, also while its model loads
        signals.hup_waits = job.input is None or not job.writes
        stack.callback(setattr, signals, "hup_waits", False)
        try:
            run = stack.enter_context(open_run(cfg, job))
        except ModelError as err:  # the model (or the given masks) cannot be had: no input of a batch can run
            raise _ModelUnusable(err) from None
        info = run.info
        # a live run reads its settings file again on SIGHUP; a file's run stops (a closed terminal)
        run.reload_settings = lambda: _reload(run, args)
        stack.enter_context(signals.stopping(run, reload=run.reload_settings if info.live else None))
        if info.live and cfg.control.enabled:
            from livebokeh.control.server import serve

            stack.enter_context(serve(run))  # closed (no more requests) before the run
        pollers = [s.poll for s in run.sinks if type(s).poll is not _base_poll()]
        if not info.live and not info.still and not args.quiet and sys.stderr is not None and sys.stderr.isatty():
            pollers.append(stack.enter_context(Progress(run.pipeline, info.frame_count, args.max_frames, info.name)))
        poll = (lambda: all([p() for p in pollers])) if pollers else None
        log.info("%s: %dx%d @ %.4g fps -> %s%s", info.name, info.width, info.height, float(info.fps),
                 ", ".join(s.name for s in run.sinks), "  (Ctrl-C to stop)" if info.live else "")
        report = run.run(poll)  # the outputs finalised under their names unless a signal stopped it
        reports.append(report)

    if args.stats:
        print(printable(report.table()), file=sys.stderr)
    if signals.received:
        log.warning("stopped after %d frames; outputs were finalised", report.frames_out)
        return 130
    return 0


def _reload(run: Any, args: argparse.Namespace) -> list[str]:
    """SIGHUP (or the control page): the settings files (and the flags over them) read again and
    applied to ``run``; what cannot change live is logged and returned. Never stops the run: a
    bad file is logged, one line (and raised to the page)."""
    from livebokeh.config import load_config

    try:
        cfg = load_config(args.config, _overrides(args), quality=args.quality, flags=flag_names(build_parser()))
        lines = run.reload(cfg)
    except LivebokehError as err:
        log.warning("settings not reloaded: %s", one_line(err))
        raise
    log.info("settings reloaded from %s", ", ".join(args.config or ["the defaults"]))
    for line in lines:
        log.warning("%s", line)
    return lines


class Progress:
    """A progress bar on the terminal (tqdm): frames, fps, ETA; a poll callback and a context
    manager (the bar is closed, at its real count, before the next line is logged)."""

    def __init__(self, pipeline: Any, total: int | None, limit: int | None, name: str) -> None:
        from tqdm import tqdm

        self.pipeline = pipeline
        total = min(total, limit) if total and limit else (total or limit)
        self._bar = tqdm(total=total, unit="frame", desc=printable(name), leave=False, dynamic_ncols=True, file=sys.stderr,
                         mininterval=0.25)

    def __call__(self) -> bool:
        done = self.pipeline.latency.frames_out
        if done > self._bar.n:
            if self._bar.total is not None and done > self._bar.total:
                self._bar.total = done  # the header's count was short
            self._bar.update(done - self._bar.n)
        return True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self()
        self._bar.close()


def _base_poll() -> Any:
    from livebokeh.sinks import Sink

    return Sink.poll


class _StopSignals:
    """Ctrl-C, Ctrl-\\ (SIGQUIT), SIGTERM and SIGHUP (a closed terminal, a dropped ssh session)
    for a whole run.

    SIGHUP stops only a run that reads files: a live run (camera, service) reads its settings
    file again instead (on a thread of its own, never in the handler), as daemons do.

    The first stops reading the source: the frames in flight are finished and every output is
    finalised. A second one stops the pipeline at once; the outputs are still finalised, as
    partial files. Later ones wait for that: the handlers stay installed until the last output
    is closed, so no signal can cut a file's finalising short. Before a pipeline runs (a model
    loading), the first signal interrupts as usual. With ``restore`` False (the command), the
    signals are ignored once it is left, to the process's exit: its status is the run's.
    """

    def __init__(self, restore: bool = True) -> None:
        self.restore = restore
        self.hup_waits = False  # a live run is being built: SIGHUP reloads once it runs (see stopping)
        self._hup_pending = False
        self.received: list[int] = []
        self._pipeline: Any = None
        self._reload: Callable[[], object] | None = None
        self._previous: list[tuple[int, Any]] = []

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == getattr(signal, "SIGHUP", None) and self._reload is not None:
            threading.Thread(target=_reload_logged, args=(self._reload,), name="livebokeh-reload", daemon=True).start()
            return
        if signum == getattr(signal, "SIGHUP", None) and self.hup_waits:
            # a live run still loading its model (`systemctl --user reload` as the service starts):
            # its settings are read again once it runs, never a stop
            self._hup_pending = True
            return
        from livebokeh.interrupts import note_stop

        note_stop(signum)
        self.received.append(signum)
        pipeline = self._pipeline
        if pipeline is None:
            raise KeyboardInterrupt
        if len(self.received) == 1:
            log.warning("stopping: finishing the frames read (again to stop at once)")
            pipeline.request_stop()
        elif len(self.received) == 2:
            log.warning("stopping now; keeping what was written")
            pipeline.abort()

    def __enter__(self) -> _StopSignals:
        for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
            sig = getattr(signal, name, None)
            if sig is None:  # SIGHUP, SIGQUIT: not on Windows
                continue
            try:
                self._previous.append((sig, signal.signal(sig, self._handle)))
            except ValueError:  # not the main thread (embedded use)
                continue
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipeline = _Finishing()  # from here a signal only waits for the exit
        for sig, previous in self._previous:
            # run as the command, the outputs are finalised and the exit status is known: later
            # signals are ignored to the end (Python's own shutdown would put the default
            # handlers back, and a signal then would end the process with 143 or 129)
            signal.signal(sig, previous if self.restore else signal.SIG_IGN)
        self._previous.clear()

    @contextmanager
    def stopping(self, pipeline: Any, reload: Callable[[], object] | None = None) -> Iterator[None]:
        """While inside, signals stop ``pipeline`` (anything with ``request_stop`` and ``abort``:
        a run), and SIGHUP calls ``reload`` instead when given; a signal received before (between
        two inputs of a batch) stops it before it starts."""
        self._pipeline, self._reload = pipeline, reload
        self.hup_waits = False
        if self.received:
            pipeline.request_stop()
        elif self._hup_pending and reload is not None:  # a SIGHUP while it was being built
            self._hup_pending = False
            threading.Thread(target=_reload_logged, args=(reload,), name="livebokeh-reload", daemon=True).start()
        try:
            yield
        finally:
            self._pipeline, self._reload = _Finishing(), None


def _reload_logged(reload: Callable[[], object]) -> None:
    """SIGHUP's reload, on its own thread: a failure is logged (one line), never raised."""
    try:
        reload()
    except LivebokehError:
        pass  # logged by _reload
    except Exception as err:  # noqa: BLE001 - a bug must not end the run either
        log.warning("settings not reloaded: internal error: %s: %s", type(err).__name__, one_line(err))


class _Finishing:
    """Stands for a pipeline that has ended while its outputs are finalised: signals wait."""

    def request_stop(self) -> None:
        pass

    def abort(self) -> None:
        pass
