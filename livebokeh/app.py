"""One run, made in one place: :func:`open_run` (settings and a :class:`Job`) -> :class:`Run`.

A run is its source (a camera, reconnecting and on demand as the settings say; a file; an
image), the replacement background, the live controls, the outputs (each given what it needs
when built), the segmenter on the run's thread plan, the pipeline, and the finish (outputs
finalised under their names when the whole input went through). The command line, the
service, the benchmarks and the tests all run through it, so a run measured by ``livebokeh
bench`` is the run a user gets.

A live run can be steered while it goes on (:mod:`livebokeh.controls` holds the settings in
effect; :meth:`Run.state` reads it back; :mod:`livebokeh.control` serves both to the control
page and ``livebokeh ctl``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livebokeh.closing import Closeable
from livebokeh.config import Config, with_backend
from livebokeh.controls import LiveControls, NotLive, changeable
from livebokeh.errors import ConfigError, LivebokehError, ModelError, SourceError, weights_not_there
from livebokeh.threads import plan_threads

log = logging.getLogger(__name__)

#: Seconds a backend change waits for the new model's first run (the answer to the page and ctl).
SWAP_WAIT_S = 10.0


@dataclass(frozen=True)
class Job:
    """What one run reads and writes (the command line's ``--input``, ``--output`` ...).

    Attributes:
        input: a video or image file; None = the camera of ``[camera]``. A video without
            outputs is played as a camera (in real time, ``[camera] loop`` repeating it) into the
            live outputs.
        output, save_mask, alpha_output: files to write (checked beforehand by
            :func:`livebokeh.sinks.files.check_outputs`).
        mask: given masks to render with instead of segmenting (``--mask``).
        max_frames: stop after this many frames.
        overwrite: existing files may be replaced.
        explicit_preview: the preview was asked for, so it opens for files and without a display too.
        config_files: the settings files (and presets) the settings came from, in order: the
            control page's "keep as my defaults" writes the last file, and SIGHUP reads them again.
    """

    input: str | None = None
    output: str | None = None
    save_mask: str | None = None
    alpha_output: str | None = None
    mask: str | None = None
    max_frames: int | None = None
    overwrite: bool = False
    explicit_preview: bool = False
    config_files: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return bool(self.output or self.save_mask or self.alpha_output)


@dataclass
class Outputs:
    """The sinks of a run, in order, and the virtual camera among them (None without one)."""

    sinks: list[Any] = field(default_factory=list)
    virtual_camera: Any = None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file (a name the system cannot look up, too long say, is none)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


class Run(Closeable):
    """One whole run (see the module's text); made by :func:`open_run`, closed once (finalising
    every output) by :meth:`close` or leaving a ``with`` block.

    Attributes:
        cfg: the settings it started with (:meth:`settings` gives those in effect now).
        job: what it reads and writes.
        source, info: the open source and its stream.
        controls: the live settings, the one place changes go through.
        sinks: the outputs, in order; ``virtual_camera`` the virtual camera among them.
        segmenter: the model in use (a backend swap, or the live controller's fallback, replaces it).
        pipeline: the pipeline.
    """

    def __init__(self, cfg: Config, job: Job) -> None:
        self.cfg, self.job = cfg, job
        self._stack = ExitStack()
        self.source: Any = None
        self.info: Any = None
        self.controls: LiveControls = LiveControls(settings=cfg)
        self.sinks: list[Any] = []
        self.virtual_camera: Any = None
        self._segmenter: Any = None  # the model the run started with
        self.pipeline: Any = None
        self.plan = plan_threads(cfg.segmenter.threads)
        self.report: Any = None
        self.stop_requested = False
        self.aborted = False
        self.started_at = time.time()
        self._cpu_mark = (time.monotonic(), time.process_time())
        self._cpu_cores = 0.0
        self._runs_mark = (time.monotonic(), 0)
        self._model_rate = 0.0
        self._reader_watch: Any = None
        self._make_segmenter: Callable[[str, Any], Any] | None = None
        #: reads the settings files again and applies them (:meth:`reload`), returning what needs a
        #: restart; given by whoever knows the files (the command line), else None
        self.reload_settings: Callable[[], list[str]] | None = None

    # -- running -----------------------------------------------------------------------------

    @property
    def segmenter(self) -> Any:
        return self.pipeline.segmenter if self.pipeline is not None else self._segmenter

    @property
    def live(self) -> bool:
        return bool(self.info is not None and self.info.live)

    def start(self) -> Run:
        self.pipeline.start()
        return self

    def wait(self, poll: Callable[[], bool] | None = None) -> Any:
        """Until the stream ends, a stage fails, :meth:`request_stop` or ``poll`` returns False
        (see :meth:`livebokeh.pipeline.Pipeline.wait`); the report."""
        self.report = self.pipeline.wait(poll)
        return self.report

    def finish(self) -> None:
        """The whole input went through: the outputs are finalised under their own names when
        closed (a file's run stopped by :meth:`request_stop` keeps them as partial files)."""
        for sink in self.sinks:
            sink.mark_complete()

    def run(self, poll: Callable[[], bool] | None = None) -> Any:
        """:meth:`start`, :meth:`wait`, then :meth:`finish` unless a file's run was stopped before
        its end (a live stream ends when it is stopped: its recording is whole), or the run was
        aborted; the report."""
        self.start()
        report = self.wait(poll)
        if not self.stop_requested or (self.info.live and not self.aborted):
            self.finish()
        return report

    def request_stop(self) -> None:
        """Stop reading; the frames read are still written (Ctrl-C, SIGTERM). A file's outputs
        are kept as partial files (the input was not read to its end); a live run's recordings
        end there, whole."""
        self.stop_requested = True
        self.pipeline.request_stop()

    def abort(self) -> None:
        """Stop every thread now, keeping what was written as partial files (a second Ctrl-C;
        safe in a signal handler)."""
        self.stop_requested = self.aborted = True
        self.pipeline.abort()

    def _release(self) -> None:
        self._stack.close()

    # -- what it does now --------------------------------------------------------------------

    def settings(self) -> Config:
        """The settings in effect: those it started with, and every live change."""
        return self.controls.settings()

    def status_line(self) -> str:
        """One line for the preview's overlay: fps, latency, drops (empty before the pipeline runs)."""
        return self.pipeline.live_status() if self.pipeline is not None else ""

    def state(self) -> dict[str, Any]:
        """What the run does now, as plain data (the control page's status, ``livebokeh ctl status``)."""
        p = self.pipeline
        now, cpu = time.monotonic(), time.process_time()
        t0, c0 = self._cpu_mark
        if now - t0 >= 0.5:  # CPU between two looks at least half a second apart
            self._cpu_cores, self._cpu_mark = (cpu - c0) / (now - t0), (now, cpu)
        runs = p.stage_items("inference") if p is not None else 0
        r0, n0 = self._runs_mark
        if now - r0 >= 0.5:
            self._model_rate, self._runs_mark = (runs - n0) / (now - r0), (now, runs)
        info = self.info
        state: dict[str, Any] = {
            "pid": os.getpid(),
            "source": info.name if info else None,
            "live": self.live,
            "size": [info.width, info.height] if info else None,
            "camera_fps": float(info.fps) if info else None,
            "fps": p.latency.recent_fps() if p is not None else 0.0,
            "frames_in": p.frames_in if p is not None else 0,
            "frames_out": p.latency.frames_out if p is not None else 0,
            "dropped": p.dropped if p is not None else 0,
            "cores": round(self._cpu_cores, 3),
            "model_rate": round(self._model_rate, 2),
            "backend": self.settings().segmenter.backend,
            "model": _backend_of(p.segmenter) if p is not None else None,
            "paused": self.controls.paused,
            "framing": self.controls.framing_state if self.controls.framing else "off",
            "controller": _controller_state(p),
            "virtual_camera": self._virtual_camera_state(),
            "changes": self.controls.changes,
            "started": self.started_at,
        }
        return state

    def _virtual_camera_state(self) -> dict[str, Any] | None:
        vc = self.virtual_camera
        if vc is None:
            return None
        device = str(getattr(vc, "device", ""))
        out: dict[str, Any] = {"device": device, "readers": self._readers(device)}
        on_demand = getattr(self.source, "on_demand_state", None)
        out["on_demand"] = on_demand() if on_demand else None
        return out

    def _readers(self, device: str) -> int | None:
        """Apps reading the virtual camera (Linux, a device file; None where it cannot be told)."""
        readers = getattr(self.source, "readers", None)
        if readers is not None:  # on demand watches them already
            return int(readers)
        if self._reader_watch is None:
            if not device.startswith("/") or not Path(device).exists():
                return None
            try:
                from livebokeh.sources.ondemand import ReaderWatch

                self._reader_watch = ReaderWatch(device)
            except (LivebokehError, ImportError, OSError):
                return None
            self._stack.callback(self._reader_watch.close)
        return int(self._reader_watch.wait(0.0))

    def input_files(self) -> list[tuple[str, Path]]:
        """Every file the run reads, with the flag or key that named it (for messages): the input
        or the video played as the camera, ``--mask`` (each file of a pattern), the background
        (the first one and the one in effect now, and those the page offers), the settings files,
        weights files named in the settings, the model folder's and the cache's, and every file a
        ``LIVEBOKEH_`` variable names. A snapshot never replaces one of them (:func:`input_named`)."""
        import dataclasses

        from livebokeh.config import preset_names, sections
        from livebokeh.sinks.files import Output, is_pattern
        from livebokeh.sources import is_clip

        found: list[tuple[str, Path]] = []
        job, now = self.job, self.settings()
        if job.input:
            found.append(("--input", Path(job.input)))
        elif is_clip(self.cfg.camera.device):
            found.append(("--camera", Path(self.cfg.camera.device)))
        if job.mask:
            found += [("--mask", p) for p in (Output.of("--mask", job.mask).existing() if is_pattern(job.mask)
                                              else [Path(job.mask)])]
        presets = preset_names()
        found += [("--config", Path(c)) for c in job.config_files if c not in presets]
        for cfg in (self.cfg, now):
            for name in sections():
                section = getattr(cfg, name)
                for f in dataclasses.fields(section):
                    value = getattr(section, f.name)
                    if (f.name == "background" or f.name.endswith("weights")) and isinstance(value, str) and value:
                        found.append((f"{name}.{f.name}", Path(value).expanduser()))
        from livebokeh.control import backgrounds
        from livebokeh.models import weight_files

        for cfg in (self.cfg, now):  # the pictures the page offers: the user's folder's and the uploads
            found += [("a background the page offers", item.path)
                      for item in backgrounds.listing(cfg.control.backgrounds).values()]

        found += weight_files()  # the model folder's and the cache's
        # every file a LIVEBOKEH_ variable names: each model's weights, DeepLab's decoder
        found += [(k, Path(v).expanduser()) for k, v in os.environ.items() if k.startswith("LIVEBOKEH_") and v]
        return [(flag, p) for flag, p in found if _is_file(p)]

    def input_named(self, path: str, file_id: tuple[int, int] | None) -> tuple[str, Path] | None:
        """The input of this run (:meth:`input_files`) that ``path`` (absolute, links resolved) or
        the file of device and inode ``file_id`` is; None when neither is one. Nothing is opened
        at ``path``: it is only compared."""
        for flag, p in self.input_files():
            try:
                st = p.stat()
                if (st.st_dev, st.st_ino) == file_id or str(p.resolve()) == path:
                    return flag, p
            except OSError:
                continue
        return None

    def snapshot(self) -> Any:
        """The last composite the outputs got (what the virtual camera sends: while paused, the
        still or the blank picture); None before the first."""
        return self.controls.last_sent()

    def pause(self, mode: str = "still", wait_s: float = 1.0) -> None:
        """Send a still or a blank picture instead of the camera (:meth:`LiveControls.pause`);
        returns once a frame has gone out paused (or after ``wait_s``, when no frame flows)."""
        self.controls.pause(mode)
        self._next_frame(wait_s)

    def resume(self, wait_s: float = 1.0) -> None:
        """Send the camera again; returns once a frame of it has gone out (or after ``wait_s``)."""
        self.controls.resume()
        self._next_frame(wait_s)

    def _next_frame(self, wait_s: float) -> None:
        seen, deadline = self.controls.presented, time.monotonic() + wait_s
        while self.controls.presented <= seen + 1 and time.monotonic() < deadline and self.live:
            time.sleep(0.005)

    def change(self, changes: dict[str, Any], origin: str = "change") -> dict[str, Any]:
        """Change settings while running (:meth:`LiveControls.change`); returns what changed."""
        return self.controls.change(changes, origin)

    def reload(self, cfg: Config) -> list[str]:
        """The settings ``cfg`` (the settings file read again, SIGHUP): what can change live is
        applied; for the rest, returned lines say it needs a restart."""
        current = self.settings()
        kinds = changeable()
        live, fixed = {}, []
        for key, kind in kinds.items():
            section, _, name = key.partition(".")
            new, old = getattr(getattr(cfg, section), name), getattr(getattr(current, section), name)
            if new == old:
                continue
            if kind == "restart":
                fixed.append(key)
            elif section not in ("mediapipe", "deeplab", "rvm") or section == cfg.segmenter.backend:
                live[key] = new
        if live:
            self.change(live, "settings file")
        return [f"{key} changed in the settings file: restart livebokeh to apply it" for key in sorted(fixed)]

    def _swap(self, new: Config) -> None:
        """The model for ``new`` built here (off the camera's threads), then swapped into the
        running pipeline at its next model run; the old one is closed by the pipeline."""
        swap = getattr(self.pipeline, "swap_segmenter", None)
        if swap is None or not self.live:
            raise NotLive("the backend cannot change while this run goes on; restart livebokeh to apply it")
        segmenter = self._built_aside(new)
        try:
            took = swap(segmenter, timeout=SWAP_WAIT_S)  # from here the pipeline closes it, or the old one
        except BaseException:
            segmenter.close()
            raise
        log.info("model %s %s", new.segmenter.backend, "swapped in" if took else "handed to the pipeline (it swaps "
                 "it in at the model's next run)")

    def _built_aside(self, cfg: Config) -> Any:
        """The model for ``cfg``, built on a thread of lower priority and run once there on the
        newest picture (a runtime's first run allocates and optimises): loading it never takes the
        CPU the camera's frames need."""
        import threading

        from livebokeh.threads import lower_priority

        box: dict[str, Any] = {}

        def build() -> None:
            lower_priority()
            try:
                box["model"] = model = self._new_segmenter(cfg)
                last = self.controls.last_sent()
                if last is not None and hasattr(model, "segment"):
                    model.segment(last.frame.image)
                    if model.traits.stateful:
                        model.reset()
            except BaseException as err:  # noqa: BLE001 - raised in the caller's thread
                if "model" in box:
                    box.pop("model").close()
                box["error"] = err

        thread = threading.Thread(target=build, name="livebokeh-model-load", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["model"]

    def _new_segmenter(self, cfg: Config) -> Any:
        from livebokeh.segment import SegmenterOptions, create_segmenter

        info = self.info
        options = SegmenterOptions.from_config(cfg, (info.width, info.height), info.still, info.live, self.plan)
        make = self._make_segmenter or create_segmenter
        return make(cfg.segmenter.backend, options)


def _backend_of(segmenter: Any) -> str | None:
    """The registered name of the backend ``segmenter`` is (None for given masks and fakes)."""
    from livebokeh.segment import SEGMENTERS

    for name in SEGMENTERS.names():
        if type(segmenter) is SEGMENTERS.get(name):
            return name
    return getattr(segmenter, "backend", None)


def _controller_state(pipeline: Any) -> Any:
    """The live controller's level and why (None where the pipeline has none)."""
    get = getattr(pipeline, "controller_state", None)
    if get is None:
        return None
    state = get()
    return dataclasses.asdict(state) if dataclasses.is_dataclass(state) else state


def check_live(cfg: Config, model: bool = True) -> None:
    """Before a live source opens: on demand's needs, a virtual camera that can take frames and,
    with ``model``, the model's weights (:func:`check_weights`), so that the webcam is never opened
    (its light blinking) by a run that cannot send frames (the service, restarted, would blink it
    at every try)."""
    from livebokeh.sinks.virtualcam import check_available
    from livebokeh.sources.ondemand import check_supported

    from livebokeh.sources import check_camera_device, is_clip

    if not is_clip(cfg.camera.device):
        check_camera_device(cfg.camera.device)  # a file named that is not there: said first
    vc = cfg.virtual_camera
    if vc.on_demand:
        check_supported()
        if not vc.enabled:
            raise ConfigError("--on-demand watches the virtual camera for readers: leave out --no-virtual-camera")
    if vc.enabled:
        check_available(vc, required=vc.on_demand)
    if model:  # (given masks need none)
        check_weights(cfg)
        fetch_fallback(cfg)
    if cfg.render.depth:
        check_depth_weights(cfg)


def fetch_fallback(cfg: Config) -> None:
    """The live controller's fallback backend's model, fetched before the camera opens when it is
    missing (not in the middle of a call, when the controller steps down to it). Without it the run
    goes on: the controller then stays with the run's own model."""
    from livebokeh import models
    from livebokeh.errors import one_line

    if not cfg.live.adapt or cfg.live.fallback in ("", cfg.segmenter.backend):
        return
    m = models.for_backend(cfg.live.fallback, getattr(getattr(cfg, cfg.live.fallback), "model", ""))
    if m is None or models.find(m.name).ok:
        return
    try:
        models.locate(m.name)
    except LivebokehError as err:
        log.warning("the live fallback %s is not available (%s); the run keeps its own model under load",
                    cfg.live.fallback, one_line(err))


def check_weights(cfg: Config) -> None:
    """The weights of the chosen backend, before a camera opens: a file its settings
    (``[rvm] weights``) or ``LIVEBOKEH_<NAME>_WEIGHTS`` name must be there (SetupError, exit 3:
    no retry brings it); missing from the cache, they are downloaded now (ModelError offline). First,
    the other files the backend reads that a setting or a variable names (DeepLab's decoder) must be
    there too (:meth:`~livebokeh.segment.base.Segmenter.missing_files`; SetupError)."""
    from livebokeh import models
    from livebokeh.errors import SetupError
    from livebokeh.segment import SEGMENTERS

    backend = cfg.segmenter.backend
    own = cfg.backend_options()
    if problem := SEGMENTERS.get(backend).missing_files(own):
        raise SetupError(problem)
    m = models.for_backend(backend, getattr(own, "model", ""))
    if m is None:
        return  # no weights file
    if hasattr(own, "weights"):
        named, source = own.weights, f"--{backend}-weights, {backend}.weights"
        if not named and os.environ.get(m.env_var):
            named, source = os.environ[m.env_var], m.env_var
        if named:
            if not Path(named).is_file():
                raise SetupError(f"the {backend} weights {named} ({source}) {weights_not_there(named)}; fix the path, or leave "
                                 f"it out and run `livebokeh models download {backend}`")
            return
    if not models.find(m.name).ok:
        models.locate(m.name)  # the first use: downloaded before the camera opens


def check_depth_weights(cfg: Config) -> None:
    """With ``[render] depth``, the depth model before a camera opens, as :func:`check_weights`
    does a backend's: a file ``--depth-weights`` or ``LIVEBOKEH_DEPTH_WEIGHTS`` names must be there
    (SetupError); missing, it is downloaded now (ModelError offline)."""
    from livebokeh import models
    from livebokeh.errors import SetupError

    m = models.manifest("depth")
    named, source = cfg.render.depth_weights, "--depth-weights, render.depth_weights"
    if not named and os.environ.get(m.env_var):
        named, source = os.environ[m.env_var], m.env_var
    if named:
        if not Path(named).is_file():
            raise SetupError(f"the depth weights {named} ({source}) {weights_not_there(named)}; fix the path, or leave it out "
                             "and run `livebokeh models download depth`, or run with --no-depth")
        return
    if not models.find(m.name).ok:
        models.locate(m.name)  # the first use: downloaded before the camera opens


def live_source(cfg: Config, make: Callable[[], Any] | None = None) -> Any:
    """The live source of ``[camera]``: the webcam, reopened when it is lost, or a video file
    played as a camera (:func:`livebokeh.sources.camera_source`); opened only while an app reads
    the virtual camera with ``on_demand``. ``make`` builds the camera itself instead (a
    benchmark's synthetic one), reopened when lost like a webcam."""
    from livebokeh.sources import Reconnecting, camera_source
    from livebokeh.sources.ondemand import OnDemand, check_supported

    def camera() -> Any:
        return Reconnecting(make, watchdog_s=cfg.camera.watchdog) if make else camera_source(cfg.camera)

    if not cfg.virtual_camera.on_demand:
        return camera()
    check_supported()
    if not cfg.virtual_camera.enabled:
        raise ConfigError("--on-demand watches the virtual camera for readers: leave out --no-virtual-camera")
    return OnDemand(camera)


def open_run(cfg: Config, job: Job | None = None, *, source: Any = None, camera: Callable[[], Any] | None = None,
             sinks: Sequence[Any] = (), make_segmenter: Callable[[str, Any], Any] | None = None) -> Run:
    """Make the whole run ``job`` describes with the settings ``cfg``; close it (or leave its
    ``with`` block) to stop it and finalise every output. Nothing is left open when it fails.

    Args:
        cfg: the settings.
        job: what to read and write (default: the camera into the live outputs).
        source: an unopened source to read instead of the job's input or the camera (a
            benchmark's clip played as a camera); the job's input still gives the sound kept.
        camera: builds the camera (unopened), instead of an OpenCV camera of ``[camera]``; it is
            wrapped as the settings say (reconnecting, on demand).
        sinks: outputs besides those the settings and the job give (after them).
        make_segmenter: ``(backend, SegmenterOptions) -> segmenter``, instead of the registered
            backends (tests).

    Raises:
        ConfigError: the job asks for what cannot be done (nothing was started).
        LivebokehError: a file, device or model failed.
    """
    job = job or Job()
    run = Run(cfg, job)
    try:
        _assemble(run, cfg, job, source, camera, sinks, make_segmenter)
    except BaseException:
        run.close()
        raise
    return run


def _assemble(run: Run, cfg: Config, job: Job, source: Any, camera: Any, extra: Sequence[Any],
              make_segmenter: Any) -> None:
    from livebokeh.sources import SOURCES, is_image_path, is_still_input, source_for_input

    stack = run._stack
    if job.input and is_still_input(job.input) and not job.writes:
        raise ConfigError("an image input needs --output FILE (and/or --save-mask FILE)")
    if job.output and job.input is None and source is None and is_image_path(job.output):
        raise ConfigError(f"--output {job.output} is an image but a camera gives video; use e.g. out.mp4")
    if job.mask and not job.input:
        raise ConfigError("--mask needs --input: given masks follow a file's frames")
    if cfg.virtual_camera.on_demand and job.input:
        raise ConfigError("--on-demand is for the camera: a file is read whole; leave out --on-demand or --input")
    background = None  # first: a missing one is told before a camera opens or weights download
    if cfg.render.effect == "replace" or cfg.render.background:
        from livebokeh.render import open_background

        background = stack.enter_context(open_background(cfg.render.background))
    if source is None and (not job.writes or job.input is None):
        check_live(cfg, model=not job.mask and make_segmenter is None)  # (a caller's models are its own)
    if source is None and job.input and (job.writes or is_still_input(job.input)):
        source = source_for_input(job.input)
    elif source is None and job.input:  # a video without outputs is played as a camera into the live outputs
        source = SOURCES.get("clip")(job.input, loop=cfg.camera.loop)
    elif source is None:
        source = live_source(cfg, camera)
    run.source = source
    run.info = info = source.open()
    stack.callback(source.close)
    if job.output and info.still != is_image_path(job.output):
        kind = "an image" if info.still else "a video"
        raise ConfigError(f"the input is {kind}; give --output a matching file ending")

    run.controls = controls = LiveControls(settings=cfg, background=background)
    stack.callback(controls.close)  # the background in use at the end (it may have changed)
    controls.swap = run._swap
    run._make_segmenter = make_segmenter
    # the models (or given masks) before any output: a bad weights file or a missing mask is its one
    # line, with no output opened (and then said unwritten) before it
    models = _open_models(run, cfg, job)
    outputs = open_outputs(cfg, info, stack, job, controls=controls, status=run.status_line)
    run.sinks, run.virtual_camera = outputs.sinks + list(extra), outputs.virtual_camera
    if not run.sinks:
        raise ConfigError("nothing to do: every output is off; give --output, --save-mask or --alpha-output, or enable "
                          "the virtual camera or the preview (--stats-json reports on a run; it is no output)")
    watch = getattr(source, "watch", None)
    if watch is not None and run.virtual_camera is not None:
        watch(run.virtual_camera.device)  # on demand: the app reading it turns the camera on
    elif watch is not None:
        raise ConfigError("--on-demand watches the virtual camera for readers: leave out --no-virtual-camera")
    _open_pipeline(run, cfg, job, background, *models)


def open_outputs(cfg: Config, info: Any, stack: ExitStack, job: Job, *, controls: LiveControls | None = None,
                 status: Callable[[], str] | None = None) -> Outputs:
    """The outputs of a run, each registered on ``stack`` to be closed (finalised) even when a
    later one cannot be opened; each given what it needs when built (the preview its controls and
    status line).

    Args:
        info: the open source's stream (a still image, a file, or live).
        job: the files to write, the input whose sound the videos keep (when ``[output] audio``
            is on), whether existing files may be replaced, whether the preview was asked for.
        controls, status: for the preview's keys and overlay.
    """
    from livebokeh.sinks import SINKS, display_available
    from livebokeh.sinks.decoupled import Decoupled

    out = Outputs()

    def add(sink: Any) -> Any:
        out.sinks.append(sink)
        stack.callback(sink.close)
        return sink

    oc = cfg.output
    audio = job.input if (job.input and oc.audio and not info.still) else None
    tail = job.max_frames is None  # the whole input: its sound to its end, not cut at the last picture
    if job.output:
        if info.still:
            add(SINKS.get("image")(job.output, overwrite=job.overwrite))
        else:
            add(SINKS.get("video")(job.output, info, crf=oc.crf, preset=oc.preset, audio_from=audio,
                                   overwrite=job.overwrite, threads=plan_threads(cfg.segmenter.threads).encoder,
                                   audio_tail=tail))
    if job.save_mask:
        add(SINKS.get("mask")(job.save_mask, info, overwrite=job.overwrite))
    if job.alpha_output:
        add(SINKS.get("alpha")(job.alpha_output, info, overwrite=job.overwrite, unmix=cfg.render.unmix,
                               audio_from=audio, audio_tail=tail))
    if info.live and cfg.virtual_camera.enabled:
        vc = cfg.virtual_camera
        camera = SINKS.get("virtual-camera")(info, vc.device, vc.backend, vc.fps, required=vc.on_demand)
        out.virtual_camera = camera
        # on its own thread, so a slow reader never holds up the preview or a recording
        add(Decoupled(camera))
    if cfg.preview.enabled and (info.live or job.explicit_preview):
        if display_available() or job.explicit_preview:
            add(SINKS.get("preview")(controls=controls, status=status))
        else:
            log.info("no display: preview window off (pass --no-preview to silence this)")
    return out


def _open_models(run: Run, cfg: Config, job: Job) -> tuple[Any, Any, Any]:
    """The run's models on its thread plan: the depth tracker (or None), then the segmenter (or
    the given masks, checked against the input's frame count); each registered on the run's stack
    to be closed. Returns ``(segmenter, mask settings, depth)``, the mask settings neutral for
    given masks."""
    from livebokeh.segment.given import GivenMasks
    from livebokeh.threads import opencv_threads

    stack, info, plan = run._stack, run.info, run.plan
    stack.enter_context(opencv_threads(plan))
    depth = open_depth(cfg, info, stack)  # first: missing weights stop the run before a model loads
    mask_cfg = cfg.mask
    if job.mask:
        try:
            segmenter: Any = stack.enter_context(GivenMasks(job.mask))
        except SourceError as err:  # the masks stand for the model: the same for every input of a batch
            raise ModelError(str(err)) from None
        frames = min(info.frame_count or 0, job.max_frames or info.frame_count or 0) or None
        segmenter.check_frames(frames)
        mask_cfg = dataclasses.replace(mask_cfg, low=0.0, high=1.0, feather=0.0, smoothing=0.0,
                                       guided="off", islands=0.0, lookahead=0)
        run.controls.swap = None  # given masks: no model to swap
    else:
        segmenter = run._new_segmenter(cfg)
    run._segmenter = segmenter
    stack.callback(segmenter.close)
    # the one in use at the end: a swap, or the live controller's fallback, may have replaced it
    stack.callback(lambda: run.pipeline.segmenter.close() if run.pipeline is not None else None)
    return segmenter, mask_cfg, depth


def _open_pipeline(run: Run, cfg: Config, job: Job, background: Any, segmenter: Any, mask_cfg: Any,
                   depth: Any) -> None:
    """The pipeline over the run's source, models and outputs; on close it is stopped first (before
    the outputs are finalised and the models closed)."""
    from livebokeh.pipeline import Pipeline, pacing

    stack, info, plan = run._stack, run.info, run.plan
    fallback = cfg.live.fallback if (info.live and not job.mask
                                     and cfg.live.fallback not in ("", cfg.segmenter.backend)) else None
    run.pipeline = Pipeline(
        run.source, segmenter, run.sinks, mask_cfg, cfg.render,
        queue_size=cfg.pipeline.queue_size, max_frames=job.max_frames,
        background=background, controls=run.controls, workers=plan.workers,
        segment_workers=plan.segment_workers(segmenter.traits), framing=cfg.framing, depth=depth,
        adapt=cfg.live.adapt and not job.mask,
        fallback=(lambda: run._new_segmenter(with_backend(run.settings(), fallback))) if fallback else None,
        fallback_name=fallback,
        **pacing(cfg.segmenter.rate, segmenter.traits),
    )
    stack.callback(run.pipeline.stop)  # stopped before the sinks are closed (finalised)


def open_depth(cfg: Config, info: Any, stack: ExitStack) -> Any:
    """With ``[render] depth`` on, the stream's :class:`~livebokeh.depth.DepthTracker` (its model
    loaded now, so that missing weights stop the run before it starts, in one line), registered
    on ``stack`` to be closed; else None."""
    if not cfg.render.depth:
        return None
    from livebokeh.depth import DepthEstimator, DepthOptions, DepthTracker

    estimator = DepthEstimator(DepthOptions(weights=cfg.render.depth_weights))
    return stack.enter_context(DepthTracker(estimator, live=info.live, fps=float(info.fps or 30)))
