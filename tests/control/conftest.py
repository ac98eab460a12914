"""A live run to steer: synthetic frames at camera pace (or a clip played as a camera), a
segmenter that finds the bright 'person', the in-memory virtual camera, the control server."""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from livebokeh.config import Config
from tests.conftest import FakeSegmenter, FakeSource, until


class ClosingSegmenter(FakeSegmenter):
    """The tests' segmenter as the run keeps it (closed at the end)."""

    def __init__(self, backend: str = "mediapipe", delay: float = 0.0) -> None:
        super().__init__(delay=delay)
        self.backend = backend
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def live_settings(**render) -> Config:
    cfg = Config()
    return dataclasses.replace(
        cfg,
        segmenter=dataclasses.replace(cfg.segmenter, backend="mediapipe"),
        virtual_camera=dataclasses.replace(cfg.virtual_camera, backend="memory"),
        preview=dataclasses.replace(cfg.preview, enabled=False),
        render=dataclasses.replace(cfg.render, **render),
    )


@pytest.fixture(autouse=True)
def _private_folders(tmp_path, monkeypatch):
    """Runs publish into a runtime folder of the test's, uploads go to a data folder of its own."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LIVEBOKEH_SERVICE", raising=False)


@contextmanager
def started(cfg: Config, job=None, source=None, segmenters=None, serve_page: bool = True):
    """``open_run`` started on its threads (and its control server); stopped and closed after."""
    from livebokeh.app import Job, open_run
    from livebokeh.control.server import serve

    made = [] if segmenters is None else segmenters

    def make(backend, options):
        made.append(ClosingSegmenter(backend))
        return made[-1]

    run = open_run(cfg, job or Job(), source=source, make_segmenter=make)
    try:
        run.start()
        if serve_page:
            with serve(run) as server:
                yield run, server
        else:
            yield run, None
    finally:
        run.request_stop()
        try:
            run.wait()
        finally:
            run.close()


@pytest.fixture
def live(memory_vcam):
    """(run, server, vcam) on synthetic 160x120 frames at 60 fps."""
    with started(live_settings(), source=FakeSource(count=10**7, live=True, fps=60)) as (run, server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames at the virtual camera")
        yield run, server, memory_vcam[0]


class Client:
    """Raw HTTP to a control server: any method, Host, Origin, headers and body."""

    def __init__(self, server) -> None:
        self.server = server
        self.port = server.port
        self.secret = server.secret

    def send(self, method: str, path: str, body: bytes | None = None, *, host: str | None = None,
             auth: bool = True, headers: dict | None = None) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host if host is not None else f"127.0.0.1:{self.port}")
            if auth:
                conn.putheader("Authorization", f"Bearer {self.secret}")
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path: str, **kw) -> tuple[int, dict, bytes]:
        return self.send("GET", path, **kw)

    def post(self, path: str, payload, **kw) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        return self.send("POST", path, json.dumps(payload).encode(), headers=headers, **kw)

    def json(self, method: str, path: str, payload=None) -> dict:
        status, _, body = self.post(path, payload) if method == "POST" else self.get(path)
        assert status == 200, (status, body)
        return json.loads(body)


def outside_variance(image: np.ndarray, person: np.ndarray) -> float:
    """Mean variance of the picture's gray levels in 9x9 windows, outside the person (a blur lowers it)."""
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(gray, (9, 9))
    var = cv2.blur(gray * gray, (9, 9)) - mean * mean
    away = cv2.erode((~person).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    return float(var[away].mean())


def person_of(image: np.ndarray) -> np.ndarray:
    """The bright square of :func:`tests.conftest.synthetic_frame` (what FakeSegmenter finds)."""
    return image.mean(axis=2) > 150


def write_clip(path: Path, frames: int = 900, size=(320, 240), fps: int = 30) -> Path:
    """A synthetic camera clip: a textured room, a bright 'person' moving slowly."""
    import av

    from tests.conftest import synthetic_frame

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "12"})
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            img = synthetic_frame(i // 4, *size)
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:, :, ::-1]), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


_ = threading  # the runs' threads are the pipeline's
