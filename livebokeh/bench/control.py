"""``livebokeh bench control``: how fast a change on the control page (or ``livebokeh ctl``)
reaches the virtual camera, whether a backend swap drops a frame, and what the page costs.

The command's own run (:func:`livebokeh.app.open_run`, the settings' backend) on a synthetic
1280x720 camera at 30 fps, into a virtual camera that keeps, for every frame sent, when it went
and how smooth a corner of the room is (the person never comes there). The control server is the
one a user's run serves; the bench talks to it over HTTP with the run's key, as ``ctl`` does.

- Changes: the effect flipped between ``none`` and ``blur`` ``changes`` times, a random pause
  between; for each, the frames sent from the moment the request went until the first that shows
  it (1 = the very next frame), and the milliseconds.
- A backend swap (where the pipeline can swap models): frames captured, sent and dropped around
  each swap, against the same span without one.
- The page's cost: CPU of the server's answering threads while a client polls as the page does
  (the small preview 8 times a second, the state once a second), in % of a core; with no client
  the server answers nothing and costs nothing. The process's whole CPU, polled and not, side by
  side, for reference (it moves with the model).
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
import urllib.request
from typing import Any

import numpy as np

from livebokeh.app import Job, open_run
from livebokeh.bench.common import machine
from livebokeh.bench.ondemand import SyntheticCamera
from livebokeh.config import Config

#: Where the room is always seen in :class:`SyntheticCamera`'s frames (rows, columns).
CORNER = (slice(0, 120), slice(0, 240))
#: A corner this smooth (gray levels' deviation) shows the blur; the room's own is about 23.
SMOOTH = 8.0


class _Client:
    """The page's requests, over HTTP with the run's key (as ``livebokeh ctl`` sends them)."""

    def __init__(self, server: Any) -> None:
        self.base = f"http://127.0.0.1:{server.port}"
        self.secret = server.secret
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, path: str, body: dict | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method="GET" if body is None else "POST")
        req.add_header("Authorization", f"Bearer {self.secret}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with self._opener.open(req, timeout=120) as resp:
            return resp.read()


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(cfg: Config | None = None, changes: int = 40, seconds: float = 10.0, swaps: int = 4) -> dict:
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    from livebokeh.control.server import serve

    sent: list[tuple[float, float]] = []  # (when, the corner's deviation)

    class StatsCamera:
        """A virtual camera that notes when each frame went and how smooth the room's corner is."""

        def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: Any, **kw: object) -> None:
            self.width, self.height, self.fourcc = width, height, fourcc

        def send(self, frame: np.ndarray) -> None:
            image = frame.reshape(self.height, self.width, 3)
            sent.append((time.monotonic(), float(image[CORNER].std())))

        def device(self) -> str:
            return "bench-control"

        def native_fourcc(self) -> int:
            return self.fourcc

        def close(self) -> None:
            pass

    base = cfg or Config()
    cfg = dataclasses.replace(
        base, preview=dataclasses.replace(base.preview, enabled=False),
        virtual_camera=dataclasses.replace(base.virtual_camera, enabled=True, backend="bench-control", device="",
                                           on_demand=False),
        render=dataclasses.replace(base.render, effect="none", blur=0.06, fstop=0.0))
    saved = dict(pvc.BACKENDS)
    pyvirtualcam.register_backend("bench-control", StatsCamera)
    try:
        with open_run(cfg, Job(), camera=SyntheticCamera) as live, serve(live, port=0) as server:
            live.start()
            client = _Client(server)
            while len(sent) < 60:  # the model warm
                time.sleep(0.05)
            report: dict[str, Any] = {"machine": machine(), "backend": cfg.segmenter.backend}
            report.update(_changes(client, sent, changes))
            report.update(_swaps(live, client, sent, swaps))
            report.update(_page_cost(live, server, client, seconds))
            live.request_stop()
            final = live.wait()
            report["frames_out"], report["dropped"] = final.frames_out, final.dropped
            return report
    finally:
        pvc.BACKENDS.clear()
        pvc.BACKENDS.update(saved)


def _changes(client: _Client, sent: list[tuple[float, float]], count: int) -> dict:
    rng = random.Random(0)
    frames, ms = [], []
    effect = "none"
    for _ in range(count):
        effect = "blur" if effect == "none" else "none"
        n0, t0 = len(sent), time.monotonic()
        client.call("/api/settings", {"changes": {"render.effect": effect}})
        shows = (lambda d: d < SMOOTH) if effect == "blur" else (lambda d: d >= SMOOTH)
        deadline = t0 + 5.0
        found = None
        while found is None and time.monotonic() < deadline:
            for i in range(n0, len(sent)):
                if shows(sent[i][1]):
                    found = i
                    break
            else:
                time.sleep(0.002)
        if found is None:
            frames.append(float("inf"))
            continue
        frames.append(found - n0 + 1)
        ms.append(1e3 * (sent[found][0] - t0))
        time.sleep(rng.uniform(0.1, 0.3))
    return {"changes": count, "change_frames_p50": _percentile(frames, 50), "change_frames_p95": _percentile(frames, 95),
            "change_frames_max": max(frames) if frames else float("nan"), "change_ms_p50": _percentile(ms, 50),
            "change_ms_p95": _percentile(ms, 95), "change_frames": frames}


def _swaps(live: Any, client: _Client, sent: list[tuple[float, float]], swaps: int) -> dict:
    """Each swap to the other backend and back, between MediaPipe and the settings' one (or RVM)."""
    if not hasattr(live.pipeline, "swap_segmenter") or swaps <= 0:
        return {"swaps": 0, "swap_note": "the pipeline has no swap primitive: the backend changes at a restart"}
    start = live.settings().segmenter.backend
    other = "mediapipe" if start != "mediapipe" else "rvm"
    def window(seconds: float) -> dict:
        p = live.pipeline
        in0, out0, drop0, n0 = p.frames_in, p.latency.frames_out, p.dropped, len(sent)
        time.sleep(seconds)
        gaps = np.diff([t for t, _ in sent[n0:]]) if len(sent) > n0 + 1 else np.array([0.0])
        return {"frames_in": p.frames_in - in0, "frames_out": p.latency.frames_out - out0,
                "dropped": p.dropped - drop0, "longest_gap_ms": float(gaps.max() * 1e3)}

    rows = []
    for i in range(swaps):
        target = other if i % 2 == 0 else start
        t0 = time.monotonic()
        client.call("/api/settings", {"changes": {"segmenter.backend": target}})
        load_s = time.monotonic() - t0
        during = window(2.0)  # the new model at work, blended in
        after = window(2.0)  # the same backend, the same span, no swap
        rows.append({"to": target, "load_s": load_s, **during,
                     **{f"steady_{k}": v for k, v in after.items()}})
    return {"swaps": swaps, "swap_rows": rows, "swap_dropped": sum(r["dropped"] for r in rows),
            "steady_dropped": sum(r["steady_dropped"] for r in rows)}


def _page_cost(live: Any, server: Any, client: _Client, seconds: float) -> dict:
    """The server's CPU with a client polling as the page does, and the process's, polled and not."""
    def window(polled: bool) -> tuple[float, float, int]:
        stop = threading.Event()
        cpu0, srv0, req0, t0 = time.process_time(), server.cpu_ns, server.requests, time.monotonic()

        def poll() -> None:
            k = 0
            while not stop.is_set():
                client.call("/api/frame.jpg?w=480")
                if k % 8 == 0:
                    client.call("/api/state")
                k += 1
                stop.wait(0.125)

        thread = threading.Thread(target=poll, daemon=True) if polled else None
        if thread is not None:
            thread.start()
        time.sleep(seconds)
        stop.set()
        if thread is not None:
            thread.join()
        wall = time.monotonic() - t0
        return (time.process_time() - cpu0) / wall, (server.cpu_ns - srv0) / 1e9 / wall, server.requests - req0

    closed, opened = [], []
    for _ in range(2):  # in turn, so that both see the same machine
        closed.append(window(False))
        opened.append(window(True))
    return {
        "page_seconds": seconds,
        "page_server_cores_open": float(np.mean([o[1] for o in opened])),
        "page_server_cores_closed": float(np.mean([c[1] for c in closed])),
        "page_requests_closed": sum(c[2] for c in closed),
        "page_requests_open_per_s": float(np.mean([o[2] for o in opened])) / seconds,
        "process_cores_open": float(np.mean([o[0] for o in opened])),
        "process_cores_closed": float(np.mean([c[0] for c in closed])),
    }


def render(r: dict) -> str:
    lines = [
        f"control ({r['backend']}, synthetic 1280x720 camera at 30 fps, changes over HTTP as the page and ctl send them):",
        f"  {r['changes']} changes: shown in frame {r['change_frames_p50']:.0f} after the request (p50), "
        f"{r['change_frames_p95']:.1f} (p95), {r['change_frames_max']:.0f} at most (target: within 2 at p95); "
        f"{r['change_ms_p50']:.0f} ms p50, {r['change_ms_p95']:.0f} ms p95",
    ]
    if r.get("swaps"):
        for s in r["swap_rows"]:
            lines.append(f"  swap to {s['to']}: loaded in {s['load_s']:.2f} s while the camera ran; the 2 s after: "
                         f"{s['frames_in']} frames in, {s['frames_out']} out, {s['dropped']} dropped, longest gap "
                         f"{s['longest_gap_ms']:.0f} ms; the next 2 s, no swap: {s['steady_dropped']} dropped, "
                         f"longest gap {s['steady_longest_gap_ms']:.0f} ms")
        lines.append(f"  dropped in the 2 s after each swap: {r['swap_dropped']} in all; in as long on the same "
                     f"backend without one: {r['steady_dropped']} (target: the swap adds none)")
    else:
        lines.append(f"  backend swap: {r['swap_note']}")
    lines += [
        f"  page open, its preview polled 8 times a second and its state once: the server's answering took "
        f"{100 * r['page_server_cores_open']:.2f}% of a core ({r['page_requests_open_per_s']:.1f} requests a second; "
        f"target <= 5%); closed: {100 * r['page_server_cores_closed']:.2f}% ({r['page_requests_closed']} requests)",
        f"  the whole process meanwhile: {r['process_cores_open']:.2f} cores polled, {r['process_cores_closed']:.2f} "
        "not (the model's share moves more than this)",
        f"  {r['frames_out']} frames out, {r['dropped']} dropped; {r['machine']}",
    ]
    return "\n".join(lines)
