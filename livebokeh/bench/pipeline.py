"""``livebokeh bench pipeline`` and ``livebokeh bench soak``: the whole pipeline against references.

pipeline: for a file at 1280x720 and 1920x1080 and a source paced at 30 fps, per backend: ms per
stage, output fps, capture-to-sink latency (p50, p95, p99), dropped frames and process CPU time
per frame; and, in the same run, three references on the same frames: decoding alone (the floor
every frame pays), the segmenter alone on every frame, and a naive sequential loop composed the
way Linux-Fake-Background-Webcam does (decode; MediaPipe landscape model; threshold 0.75; dilate 5x5; box blur 10x10; EMA 0.5;
``cv2.GaussianBlur(frame, (21, 21), 7)``; ``cv2.blendLinear``; encode).

job: the user's job, as the command assembles it (:mod:`livebokeh.app`): the 1280x720 clip in,
an H.264 MP4 with its sound out at the default output settings, the file finalised; against the
same naive loop writing the same encoder at the same settings. The file cases above write to a
null sink (a virtual camera's conversion): x264 is the largest single cost of a recording.

soak: the live pipeline on a looping file at camera pace for many frames: RSS over time, thread
count, drops and latency; memory must stay flat.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from livebokeh.bench.common import machine, null_outputs, require_clip, scratch_dir, table, video_frames
from livebokeh.config import Config, load_config, sections, with_backend
from livebokeh.errors import LivebokehError
from livebokeh.app import Job, open_run
from livebokeh.segment import SegmenterOptions, create_segmenter
from livebokeh.sinks.base import Sink
from livebokeh.sources.base import Source
from livebokeh.sources.clip import ClipCamera
from livebokeh.sources.video import VideoFileSource
from livebokeh.threads import cpu_cores
from livebokeh.types import Composite, Frame

log = logging.getLogger(__name__)


class NullSink(Sink):
    """A virtual camera that takes everything: converts each frame to I420 as pyvirtualcam's
    v4l2loopback backend does (the naive loop pays the same), then counts it."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0

    def write(self, item: Composite) -> None:
        encode_for_camera(item.image)
        self.frames += 1


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_pipeline(source: Source, cfg: Config, max_frames: int | None = None) -> dict:
    """``source`` through the run the settings ``cfg`` make (its backend), into a :class:`NullSink`."""
    sink = NullSink()
    with open_run(null_outputs(cfg), Job(max_frames=max_frames), source=source, sinks=[sink]) as run:
        cpu0 = time.process_time()
        report = run.run()
        cpu = time.process_time() - cpu0
    lat = np.fromiter(run.pipeline.latency.values_ns, dtype=np.int64) / 1e6
    return {
        "frames_in": report.frames_in, "frames_out": report.frames_out, "dropped": report.dropped,
        "fps": report.frames_out / report.wall_s if report.wall_s else 0.0,
        "inference_fps": report.inference_fps,
        "latency_p50": float(np.percentile(lat, 50)) if lat.size else 0.0,
        "latency_p95": float(np.percentile(lat, 95)) if lat.size else 0.0,
        "latency_p99": float(np.percentile(lat, 99)) if lat.size else 0.0,
        "cpu_ms_per_frame": 1e3 * cpu / max(1, report.frames_out),
        "cores": cpu / report.wall_s if report.wall_s else 0.0,
        "stages": {s.name: s.mean_ms for s in report.stages},
        "stage_cpu": {s.name: s.cpu_ms for s in report.stages},
    }


def _rate(src: VideoFileSource, work: Callable[[Frame], object]) -> dict:
    """Reading every frame of the open ``src`` and applying ``work`` to it: frames per second and
    the process CPU time a frame (every thread's, as for the pipeline)."""
    n, t0, cpu0 = 0, time.perf_counter(), time.process_time()
    while (f := src.read()) is not None:
        work(f)
        n += 1
    cpu = time.process_time() - cpu0
    return {"fps": n / (time.perf_counter() - t0), "cpu_ms_per_frame": 1e3 * cpu / max(1, n)}


def decode_alone(path: Path) -> dict:
    """Decode every frame to BGR, nothing else: what reading the file costs."""
    with VideoFileSource(path) as src:
        return _rate(src, lambda f: None)


def segmenter_alone(path: Path, cfg: Config) -> dict:
    """Decode and segment every frame with the backend of ``cfg``, nothing else: the model's limit
    (with 2 inference threads, its fastest here, and OpenCV's default threads)."""
    src = VideoFileSource(path)
    with src:
        opts = dataclasses.replace(SegmenterOptions.from_config(cfg, (src.info.width, src.info.height), live=False),
                                   threads=2, serial_threads=2)
        with create_segmenter(cfg.segmenter.backend, opts) as seg:
            return _rate(src, lambda f: seg.segment(f.image))


def naive_loop(path: Path, out: Path | None = None, cfg: Config | None = None, limit: int | None = None) -> dict:
    """Linux-Fake-Background-Webcam's ``compose_frame``, sequential: the peer reference.

    As its ``lfbw.py`` does it: the landscape model on the frame shrunk to 256 wide, the hard
    person mask as float32, upscaled to the frame and Gaussian-blurred (7x7); then, at frame
    size, threshold 0.75, dilate 5x5, box blur 10x10, EMA 0.5 (``accumulateWeighted``),
    ``GaussianBlur(frame, (21, 21), 7)``, ``blendLinear``; and the BGR -> I420 conversion that
    pyvirtualcam's v4l2loopback backend does on ``send`` (:func:`encode_for_camera`); or, with
    ``out``, writing the frames there with livebokeh's encoder at ``cfg``'s output settings and
    the clip's sound (the job's reference). ``limit``: the first frames only.
    """
    from livebokeh.segment.selfie import MediaPipeOptions, SelfieSegmenter
    from livebokeh.sinks.video import VideoWriter

    seg = SelfieSegmenter(SegmenterOptions(threads=2, roi=False, own=MediaPipeOptions("landscape")))
    kernel = np.ones((5, 5), np.uint8)
    old = None

    def compose(f: Frame) -> None:
        nonlocal old
        frame = f.image
        h, w = frame.shape[:2]
        person = (seg.segment(frame).data > 0.5).astype(np.float32)
        mask = cv2.GaussianBlur(cv2.resize(person, (w, h), interpolation=cv2.INTER_LINEAR), (7, 7), 0)
        cv2.threshold(mask, 0.75, 1, cv2.THRESH_BINARY, dst=mask)
        cv2.dilate(mask, kernel, iterations=1, dst=mask)
        cv2.blur(mask, (10, 10), dst=mask)
        if old is None:
            old = mask
        mask = cv2.accumulateWeighted(mask, old, 0.5)
        bg = cv2.GaussianBlur(frame, (21, 21), 7)
        result = cv2.blendLinear(frame, bg, mask, 1 - mask)
        if writer is not None:
            writer.write(result, f.time_s)
        else:
            encode_for_camera(result)

    writer = None
    src = _Limited(path, limit) if limit else VideoFileSource(path)
    with src, seg:
        if out is None:
            return _rate(src, compose)
        oc = (cfg or Config()).output
        t0, cpu0 = time.perf_counter(), time.process_time()
        writer = VideoWriter(out, src.info.width, src.info.height, src.info.fps, crf=oc.crf, preset=oc.preset,
                             audio_from=path if oc.audio else None, overwrite=True)
        try:
            n = 0
            while (f := src.read()) is not None:
                compose(f)
                n += 1
        finally:
            writer.close()
        return _timed(n, t0, cpu0)


def _timed(frames: int, t0: float, cpu0: float) -> dict:
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"fps": frames / wall, "cpu_ms_per_frame": 1e3 * cpu / max(1, frames), "cores": cpu / wall}


def job(path: Path, cfg: Config, out: Path, frames: int) -> dict:
    """The first ``frames`` of ``path`` into an H.264 file at ``out``, as ``livebokeh --input PATH
    --output OUT`` runs them (:func:`livebokeh.app.open_run`), the file finalised (encoder flushed,
    sound copied, moved into place) before the clock stops."""
    with open_run(cfg, Job(str(path), str(out), overwrite=True), source=_Limited(path, frames)) as run:
        t0, cpu0 = time.perf_counter(), time.process_time()  # the model loaded, as the naive loop's
        report = run.run()
    return {**_timed(report.frames_out, t0, cpu0), "frames_out": report.frames_out}


def encode_for_camera(image: np.ndarray) -> np.ndarray:
    """BGR -> I420, the conversion pyvirtualcam's v4l2loopback backend makes for every frame sent."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def _clip_1080(src: Path, frames: int, folder: Path) -> Path:
    """The first ``frames`` of ``src`` scaled to 1920x1080, written into ``folder`` (a scratch
    folder: see :func:`~livebokeh.bench.common.scratch_dir`)."""
    from livebokeh.sinks.video import VideoWriter

    path = folder / "office1080p.mkv"
    w = VideoWriter(path, 1920, 1080, Fraction(25), crf=12, preset="ultrafast")
    complete = False
    try:
        for f in video_frames(src, frames):
            w.write(cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR))
        complete = True
    finally:
        w.close(complete)  # the file closed on every path, so its folder can be removed
    return path


def run(data: Path, backends: list[str], frames: int = 183, paced_frames: int = 300,
        repeats: int = 2, cfg: Config | None = None) -> dict:
    """Every case against its references; each file case ``repeats`` times, the three measured in
    turn each time and the best rate of each kept (this machine's speed drifts between runs, so
    single runs taken minutes apart make noisy ratios).

    ``cfg`` (default: the defaults) sets the pipeline and the segmenter-alone reference (model,
    ROI pass); the naive loop is always the peer's."""
    clip = require_clip(data)
    cfg = cfg or Config()
    with scratch_dir() as scratch:  # the 1080p clip and the jobs' files are removed however the run ends
        return _run_cases(clip, _clip_1080(clip, frames, scratch), backends, frames, paced_frames, repeats, cfg,
                          scratch)


def _run_cases(clip: Path, clip1080: Path, backends: list[str], frames: int, paced_frames: int, repeats: int,
               cfg: Config, scratch: Path) -> dict:
    rows, jobs = [], []
    for backend in backends:
        bcfg = with_backend(cfg, backend)  # the settings of a run with this backend, as a user's
        for label, path in (("1280x720 file", clip), ("1920x1080 file", clip1080)):
            best: dict[str, dict] = {}
            try:
                for _ in range(max(1, repeats)):
                    _keep_fastest(best, "pipeline", _run_pipeline(_Limited(path, frames), bcfg))
                    _keep_fastest(best, "decode", decode_alone(path))
                    _keep_fastest(best, "alone", segmenter_alone(path, bcfg))
                    _keep_fastest(best, "naive", naive_loop(path))
            except LivebokehError as err:
                log.warning("%s: skipped (%s)", backend, err)
                break
            p, alone, naive = best["pipeline"], best["alone"], best["naive"]
            busy = every_core_busy(p["cpu_ms_per_frame"])
            rows.append({"case": f"{backend}, {label}", **p, "decode_alone_fps": best["decode"]["fps"],
                         "segmenter_alone_fps": alone["fps"], "naive_fps": naive["fps"],
                         "vs_naive": p["fps"] / naive["fps"], "vs_segmenter": p["fps"] / alone["fps"],
                         "decode_cpu_ms": best["decode"]["cpu_ms_per_frame"],
                         "segmenter_alone_cpu_ms": alone["cpu_ms_per_frame"],
                         "naive_cpu_ms": naive["cpu_ms_per_frame"], "busy_fps": busy,
                         "busy_vs_naive": busy / naive["fps"], "busy_vs_segmenter": busy / alone["fps"]})
        else:
            r = _run_pipeline(ClipCamera(clip, loop=True, fps=30.0), bcfg, paced_frames)
            rows.append({"case": f"{backend}, paced 30 fps 1280x720", **r})
            best = {}
            for _ in range(max(1, repeats)):
                _keep_fastest(best, "job", job(clip, bcfg, scratch / "job.mp4", frames))
                _keep_fastest(best, "naive", naive_loop(clip, scratch / "naive.mp4", cfg, limit=frames))
            j, naive = best["job"], best["naive"]
            jobs.append({"case": f"{backend}, 1280x720 clip to H.264", **j, "naive_fps": naive["fps"],
                         "vs_naive": j["fps"] / naive["fps"], "naive_cpu_ms": naive["cpu_ms_per_frame"],
                         "naive_cores": naive["cores"]})
    return {"machine": machine(), "repeats": repeats, "rows": rows, "jobs": jobs, "config": _differences(cfg)}


def _keep_fastest(best: dict[str, dict], name: str, result: dict) -> None:
    """Keep ``result`` as ``best[name]`` unless a run with more fps is there already."""
    if name not in best or result["fps"] > best[name]["fps"]:
        best[name] = result


def every_core_busy(cpu_ms_per_frame: float, cores: int | None = None) -> float:
    """Frames per second of work costing ``cpu_ms_per_frame`` of CPU time were it spread over
    every core (``cores``, default: those this process may use) without a moment idle: a bound
    no scheduling of the same work can pass, only less work a frame."""
    return (cores or cpu_cores()) * 1e3 / cpu_ms_per_frame if cpu_ms_per_frame > 0 else 0.0


def _differences(cfg: Config) -> dict[str, object]:
    """The settings of ``cfg`` that differ from the defaults, as dotted keys (empty: defaults)."""
    default = Config()
    out: dict[str, object] = {}
    for name in sections():
        ours, theirs = getattr(cfg, name), getattr(default, name)
        for f in dataclasses.fields(ours):
            if getattr(ours, f.name) != getattr(theirs, f.name):
                out[f"{name}.{f.name}"] = getattr(ours, f.name)
    return out


#: What ``bench cost`` turns off, one at a time, then the three costliest together: (label, overrides).
STEPS: tuple[tuple[str, dict[str, object]], ...] = (
    ("as configured", {}),
    ("no optical flow in the smoothing", {"mask.flow": False}),
    ("no temporal smoothing", {"mask.smoothing": 0.0}),
    ("blur on encoded pixels, not linear light", {"render.linear": False}),
    ("no light wrap", {"render.light_wrap": 0.0}),
    ("no ROI pass", {"segmenter.roi": False}),
    ("no flow, no linear light, no light wrap", {"mask.flow": False, "render.linear": False, "render.light_wrap": 0.0}),
)


def cost(data: Path, config: str | None = None, frames: int = 183, repeats: int = 2,
         overrides: dict[str, object] | None = None) -> dict:
    """What each quality step costs in the pipeline: the 1280x720 file case with the settings of
    ``config`` (default: the defaults) and with each of :data:`STEPS` turned off, all measured in
    turn ``repeats`` times (best kept), beside the segmenter alone (as configured) and the naive
    loop, so that every row's ratios come from the same run."""
    clip = require_clip(data)
    configs = [(label, load_config(config, {**(overrides or {}), **step})) for label, step in STEPS]
    base = configs[0][1]
    backend = base.segmenter.backend
    best: dict[str, dict] = {}
    refs: dict[str, dict] = {}
    for _ in range(max(1, repeats)):
        _keep_fastest(refs, "alone", segmenter_alone(clip, base))
        _keep_fastest(refs, "naive", naive_loop(clip))
        for label, cfg in configs:
            _keep_fastest(best, label, _run_pipeline(_Limited(clip, frames), cfg))
    alone, naive = refs["alone"]["fps"], refs["naive"]["fps"]
    ref_cpu = best[configs[0][0]]["cpu_ms_per_frame"]
    rows = [{"case": label, "fps": best[label]["fps"], "vs_naive": best[label]["fps"] / naive,
             "vs_segmenter": best[label]["fps"] / alone, "cpu_ms_per_frame": best[label]["cpu_ms_per_frame"],
             "cpu_saved": ref_cpu - best[label]["cpu_ms_per_frame"], "cores": best[label]["cores"],
             "busy_vs_segmenter": every_core_busy(best[label]["cpu_ms_per_frame"]) / alone}
            for label, _ in configs]
    return {"machine": machine(), "backend": backend, "repeats": repeats, "segmenter_alone_fps": alone,
            "naive_fps": naive, "segmenter_alone_cpu_ms": refs["alone"]["cpu_ms_per_frame"],
            "naive_cpu_ms": refs["naive"]["cpu_ms_per_frame"], "config": _differences(base), "rows": rows}


COST_COLUMNS = [
    ("case", "1280x720 file", ""), ("fps", "fps out", ".1f"), ("vs_naive", "x naive", ".2f"),
    ("vs_segmenter", "x segmenter", ".2f"), ("cpu_ms_per_frame", "CPU ms/frame", ".1f"),
    ("cpu_saved", "CPU ms saved", ".1f"), ("cores", "cores", ".2f"),
    ("busy_vs_segmenter", "x segmenter, every core busy", ".2f"),
]


def _settings(differences: dict[str, object]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in differences.items()) or "the defaults"


def render_cost(report: dict) -> str:
    return "\n\n".join([
        table(report["rows"], COST_COLUMNS),
        f"{report['backend']}, settings: {_settings(report['config'])}; "
        f"segmenter alone {report['segmenter_alone_fps']:.1f} fps ({report['segmenter_alone_cpu_ms']:.1f} ms CPU a frame), "
        f"naive loop {report['naive_fps']:.1f} fps ({report['naive_cpu_ms']:.1f} ms CPU a frame); "
        f"'every core busy': the fps were the row's CPU time spread over all {cpu_cores()} cores without a moment idle; "
        f"best of {report['repeats']} runs each, measured in turn; "
        f"{report['machine']}",
    ])


class _Limited(VideoFileSource):
    def __init__(self, path: Path, limit: int) -> None:
        super().__init__(path)
        self.limit = limit

    def read(self) -> Frame | None:
        return super().read() if self._index < self.limit else None


COLUMNS = [
    ("case", "case", ""), ("fps", "fps out", ".1f"), ("inference_fps", "inference fps", ".1f"),
    ("decode_alone_fps", "decode alone fps", ".0f"), ("segmenter_alone_fps", "segmenter alone fps", ".1f"),
    ("naive_fps", "naive loop fps", ".1f"),
    ("vs_naive", "x naive", ".2f"), ("vs_segmenter", "x segmenter", ".2f"),
    ("latency_p50", "p50 ms", ".0f"), ("latency_p95", "p95 ms", ".0f"), ("latency_p99", "p99 ms", ".0f"),
    ("dropped", "dropped", "d"), ("cpu_ms_per_frame", "CPU ms/frame", ".1f"), ("cores", "cores", ".2f"),
]


JOB_COLUMNS = [
    ("case", "case", ""), ("fps", "fps", ".1f"), ("cpu_ms_per_frame", "CPU ms/frame", ".1f"), ("cores", "cores busy", ".2f"),
    ("naive_fps", "naive loop fps", ".1f"), ("naive_cpu_ms", "its CPU ms/frame", ".1f"),
    ("naive_cores", "its cores busy", ".2f"), ("vs_naive", "x naive", ".2f"),
]

CPU_COLUMNS = [
    ("case", "case", ""), ("cpu_ms_per_frame", "pipeline", ".1f"), ("decode_cpu_ms", "decode alone", ".1f"),
    ("segmenter_alone_cpu_ms", "segmenter alone", ".1f"), ("naive_cpu_ms", "naive loop", ".1f"),
    ("busy_fps", "fps, every core busy", ".1f"), ("busy_vs_naive", "x naive then", ".2f"),
    ("busy_vs_segmenter", "x segmenter then", ".2f"),
]


def render(report: dict) -> str:
    names = ("capture", "inference", "render", "sinks")
    stages = [{"case": r["case"], **{f"{n}_wall": r["stages"].get(n, 0.0) for n in names},
               **{f"{n}_cpu": r.get("stage_cpu", {}).get(n, 0.0) for n in names}} for r in report["rows"]]
    files = [r for r in report["rows"] if "busy_fps" in r]
    return "\n\n".join([
        table(report["rows"], COLUMNS),
        "ms per frame in each stage, wall / CPU of the stage's own threads:\n"
        + table(stages, [("case", "case", ""), *((f"{n}_{k}", f"{n} {k}", ".1f") for n in names for k in ("wall", "cpu"))]),
        "CPU ms per frame (all threads of the process) beside the references', and the bound it sets: "
        "the fps were that work spread over every core without a moment idle:\n" + table(files, CPU_COLUMNS),
        "the job: a clip in, H.264 at the output settings out (with its sound, the file finalised), as the "
        "command runs it, against the naive loop writing the same encoder:\n" + table(report.get("jobs", []), JOB_COLUMNS),
        f"settings: {_settings(report.get('config', {}))}",
        f"file cases: best of {report.get('repeats', 1)} runs each, measured in turn; {report['machine']}",
    ])


def soak(data: Path, frames: int, fps: float, cfg: Config | None = None) -> dict:
    """The live pipeline on a looping clip at camera pace; memory and threads sampled as it runs."""
    clip = require_clip(data)
    cfg = cfg or Config()
    samples: list[tuple[int, float, int]] = []
    source = ClipCamera(clip, loop=True, fps=fps)
    sink = NullSink()
    threads_before = threading.active_count()
    with open_run(null_outputs(cfg), Job(max_frames=frames), source=source, sinks=[sink]) as run:
        p = run.pipeline
        run.start()
        step = max(1, frames // 40)
        next_at = 0

        def sample() -> bool:
            nonlocal next_at
            if p.frames_in >= next_at:
                samples.append((p.frames_in, rss_mb(), threading.active_count()))
                next_at += step
            return True

        report = p.wait(sample, poll_interval=0.05)
    samples.append((report.frames_in, rss_mb(), threading.active_count()))
    warm = [s for s in samples if s[0] >= max(step, frames // 10)] or samples
    q = max(1, len(warm) // 4)
    base = float(np.median([s[1] for s in warm[:q]]))
    end = float(np.median([s[1] for s in warm[-q:]]))
    growth = (end - base) / base if base else 0.0  # trend: first vs last quarter, not allocator noise
    lat = np.fromiter(p.latency.values_ns, dtype=np.int64) / 1e6
    return {
        "machine": machine(), "frames": report.frames_in, "fps": fps, "frames_out": report.frames_out,
        "dropped": report.dropped, "rss_mb_after_warmup": base, "rss_mb_end": end,
        "rss_mb_max": max(s[1] for s in warm),
        "rss_growth": growth, "threads_before": threads_before, "threads_during": max(s[2] for s in samples),
        "threads_after": threading.active_count(),
        "latency_p50": float(np.percentile(lat, 50)) if lat.size else 0.0,
        "latency_p95": float(np.percentile(lat, 95)) if lat.size else 0.0,
        "latency_p99": float(np.percentile(lat, 99)) if lat.size else 0.0,
        "samples": samples,
    }


def render_soak(r: dict) -> str:
    return (
        f"soak: {r['frames']} frames at {r['fps']:.0f} fps, {r['frames_out']} out, {r['dropped']} dropped; "
        f"RSS {r['rss_mb_after_warmup']:.0f} MB after warm-up, {r['rss_mb_end']:.0f} MB at the end "
        f"(medians of the first and last quarters: growth {100 * r['rss_growth']:.1f}%, target < 5%), "
        f"max {r['rss_mb_max']:.0f} MB; threads {r['threads_before']} before, "
        f"{r['threads_during']} during, {r['threads_after']} after; latency p50 {r['latency_p50']:.0f} ms, "
        f"p95 {r['latency_p95']:.0f} ms, p99 {r['latency_p99']:.0f} ms\n{r['machine']}"
    )
