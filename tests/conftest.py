"""Shared fixtures: the real data in ../shared (skipped when absent), fakes and probes."""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from livebokeh.bench.metrics import iou  # noqa: F401  (the tests' IoU is the benchmarks')
from livebokeh.sources.base import Source
from livebokeh.types import Frame, Mask, SegmenterTraits, StreamInfo

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LIVEBOKEH_SHARED", REPO.parent / "shared")).resolve()
DATA = SHARED / "data"

#: Half-body/portrait subset of stills/, as listed in ../shared/data/README.md.
HALF_BODY = [int(n) for n in """
1 3 4 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39
40 41 42 43 44 45 46 47 48 49 50 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 73 74 75 76
78 79 80 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 107 111 112 113
114 115 125 126 127 129 130 131 132 133 134 137 140 141 142 144 150 151 152 154 155 156 157 158 163
166 177 183 186 189 191 192 193 217 218 219 222 223 225 234 253 254 255 257 258 261 263 264 269 270
272 274 275 277 278 279 280 281 282 283 284 285 286 287 288 289 300""".split()]


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (set LIVEBOKEH_SHARED to the folder holding data/ and models/)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _need(DATA)


@pytest.fixture(scope="session")
def half_body_stills(data_dir: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for n in HALF_BODY:
        photo, mask = data_dir / "stills" / f"hs_{n:03d}.jpg", data_dir / "stills" / f"hs_{n:03d}.png"
        if photo.is_file() and mask.is_file():
            pairs.append((photo, mask))
    if not pairs:
        pytest.skip("no half-body stills found in ../shared/data/stills")
    return pairs


@pytest.fixture(scope="session")
def clip(data_dir: Path) -> Path:
    """A short real talking-head clip with audio (d3: 512x512, 30 fps)."""
    return _need(data_dir / "videos" / "d3.mp4")


def mean_iou_on(seg, pairs) -> float:
    """Mean IoU (probability > 0.5, upsampled to the photo) of a segmenter on (photo, mask) pairs."""
    import cv2

    scores = []
    for photo, ref in pairs:
        seg.reset()  # each photo on its own (a stateful model forgets the one before)
        img = cv2.imread(str(photo))
        gt = cv2.imread(str(ref), cv2.IMREAD_GRAYSCALE) > 127
        prob = cv2.resize(seg.segment(img).data, (img.shape[1], img.shape[0]))
        scores.append(iou(prob > 0.5, gt))
    return float(np.mean(scores))


def probe_video(path: Path) -> dict:
    """Decode a video independently of livebokeh's writer: frame count, size, rate, codec."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = {
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "fps": Fraction(s.average_rate) if s.average_rate else None,
            "pix_fmt": s.codec_context.pix_fmt,
        }
        frames = [f.to_ndarray(format="gray") for f in c.decode(s)]
    info["frames"] = len(frames)
    info["gray"] = frames
    return info


def synthetic_frame(index: int, width: int = 160, height: int = 120, moving: bool = True) -> np.ndarray:
    """A textured background with a bright textured 'person' square that moves 2 px per frame."""
    rng = np.random.default_rng(1234)
    img = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
    x = (20 + (2 * index if moving else 0)) % (width - 50)
    img[30:100, x : x + 40] = rng.integers(170, 235, size=(70, 40, 3), dtype=np.uint8)  # moves with it
    return img


def until(condition, what: str, timeout: float = 30.0) -> None:
    """Waits until ``condition()`` holds: a gate that orders a test's threads by events, not by
    the clock. Only a hang (``timeout`` seconds) fails it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.001)


class FakeSource(Source):
    """Synthetic frames; ``live`` sources produce them at ``fps`` (sleeping), file ones as asked."""

    def __init__(self, count: int = 20, live: bool = False, fps: float = 200.0, fail_at: int | None = None,
                 width: int = 160, height: int = 120) -> None:
        self.count, self.live, self.fps, self.fail_at = count, live, fps, fail_at
        self.size = (width, height)
        self.i = 0
        self.released = 0

    def _open(self) -> StreamInfo:
        self.i = 0
        return StreamInfo("fake", self.size[0], self.size[1], Fraction(self.fps).limit_denominator(1000),
                          live=self.live, frame_count=self.count)

    def read(self) -> Frame | None:
        if self.i >= self.count:
            return None
        if self.fail_at is not None and self.i == self.fail_at:
            from livebokeh.errors import SourceError

            raise SourceError("fake camera unplugged")
        if self.live:
            time.sleep(1.0 / self.fps)  # a camera delivers at its own pace
        frame = Frame(synthetic_frame(self.i, *self.size), self.i, time.monotonic_ns())
        self.i += 1
        return frame

    def _release(self) -> None:
        self.released += 1


class FakeSegmenter:
    """Thresholds brightness: the bright square is the person. Optionally slow or failing."""

    traits = SegmenterTraits()

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay, self.fail_at, self.calls = delay, fail_at, 0
        self.lock = threading.Lock()

    def segment_frame(self, frame: Frame) -> Mask:
        return self.segment(frame.image)

    def segment(self, image: np.ndarray) -> Mask:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.fail_at is not None and n > self.fail_at:
            raise RuntimeError("segmenter exploded")
        if self.delay:
            time.sleep(self.delay)
        return Mask((image.mean(axis=2) > 150).astype(np.float32))


class FakeDepthModel:
    """Stands in for the depth network: the picture's blue channel is its inverse depth (255 =
    nearest); each call may scale and shift it (``jitter``), as the real network's output drifts.
    Thread-safe enough for counting (the count is only read after a run)."""

    def __init__(self, jitter: float = 0.0, seed: int = 0) -> None:
        self.calls = 0
        self.closed = 0
        self.jitter = jitter
        self.rng = np.random.default_rng(seed)

    def estimate(self, image: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        import cv2

        from livebokeh.depth import map_size

        self.calls += 1
        h, w = image.shape[:2]
        size = size or map_size(w, h)
        d = cv2.resize(image[:, :, 0], size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        if self.jitter:
            d = d * np.float32(1 + self.rng.uniform(-self.jitter, self.jitter)) + np.float32(
                self.rng.uniform(-self.jitter, self.jitter))
        return d

    def close(self) -> None:
        self.closed += 1


class ListSink:
    """Collects what it receives."""

    name = "list"

    def __init__(self, fail_at: int | None = None) -> None:
        self.items: list = []
        self.fail_at = fail_at
        self.closed = 0

    def write(self, item) -> None:
        if self.fail_at is not None and len(self.items) >= self.fail_at:
            raise OSError("disk full")
        self.items.append(item)

    def poll(self) -> bool:
        return True

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def memory_vcam():
    """Registers an in-memory pyvirtualcam backend named 'memory'; yields the list of cameras made."""
    import pyvirtualcam
    from pyvirtualcam import camera as pvc

    made: list = []

    class MemoryCamera:
        def __init__(self, *, width, height, fps, fourcc, device, **kw):
            if device not in (None, "memory0"):
                raise RuntimeError(f"device {device} does not exist")
            self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
            self.frames: list[np.ndarray] = []
            self.closed = False
            made.append(self)

        def send(self, frame):
            self.frames.append(frame.reshape(self.height, self.width, 3).copy())

        def device(self):
            return "memory0"

        def native_fourcc(self):
            return self.fourcc

        def close(self):
            self.closed = True

    saved = dict(pvc.BACKENDS)
    pvc.BACKENDS.clear()
    pyvirtualcam.register_backend("memory", MemoryCamera)
    try:
        yield made
    finally:
        pvc.BACKENDS.clear()
        pvc.BACKENDS.update(saved)


@pytest.fixture(scope="session")
def deeplab_weights() -> Path:
    """Google's DeepLab TFLite release from ../shared/models (never downloaded in tests)."""
    return _need(SHARED / "models" / "deeplabv3_257_mv_gpu.tflite")


@pytest.fixture(scope="session")
def rvm_weights() -> Path:
    """Robust Video Matting's ONNX release from ../shared/models (never downloaded in tests)."""
    return _need(SHARED / "models" / "rvm_mobilenetv3_fp32.onnx")


#: The default backend's weights (RVM), as a user has them after the first download.
SHARED_RVM = SHARED / "models" / "rvm_mobilenetv3_fp32.onnx"
#: The depth model of ``--depth`` (TCMonoDepth small).
SHARED_DEPTH = SHARED / "models" / "tcmonodepth_tcsmallnet_192x320.onnx"


#: MediaPipe's selfie models, as a user has them after the first run (or `models download mediapipe`).
SELFIE_FILES = ("selfie_segmentation.tflite", "selfie_segmentation_landscape.tflite")


@pytest.fixture(scope="session")
def _selfie_model_dir(tmp_path_factory) -> Path | None:
    """A folder holding only the selfie models (links into ../shared/models), for
    ``LIVEBOKEH_MODEL_DIR``; None without ../shared."""
    if not all((SHARED / "models" / f).is_file() for f in SELFIE_FILES):
        return None
    folder = tmp_path_factory.mktemp("model_dir")
    for f in SELFIE_FILES:
        (folder / f).symlink_to(SHARED / "models" / f)
    return folder


@pytest.fixture(autouse=True)
def _isolated_model_cache(tmp_path_factory, monkeypatch, _selfie_model_dir):
    """Tests never read or fill the user's cache, and never reach the internet for weights: the
    default backend's weights come from ../shared (tests that run it skip without them, see
    :func:`default_weights`), MediaPipe's selfie models from a ``LIVEBOKEH_MODEL_DIR`` of links into
    ../shared (tests that run them ask for :func:`selfie_models`), DeepLab's only where a test
    asks for them."""
    monkeypatch.setenv("LIVEBOKEH_CACHE", str(tmp_path_factory.mktemp("cache")))
    for name in ("DEEPLAB", "SELFIE_GENERAL", "SELFIE_LANDSCAPE", "DEPTH"):
        monkeypatch.delenv(f"LIVEBOKEH_{name}_WEIGHTS", raising=False)
    monkeypatch.delenv("LIVEBOKEH_DEEPLAB_DECODER", raising=False)  # the package's own decoder
    if _selfie_model_dir is not None:
        monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(_selfie_model_dir))
    else:
        monkeypatch.delenv("LIVEBOKEH_MODEL_DIR", raising=False)
    if SHARED_RVM.is_file():
        monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(SHARED_RVM))
    else:
        monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS", raising=False)


@pytest.fixture
def selfie_models() -> Path:
    """For tests that run the mediapipe backend: the folder of its two models, or a skip."""
    for f in SELFIE_FILES:
        _need(SHARED / "models" / f)
    return SHARED / "models"


@pytest.fixture
def default_weights() -> Path:
    """For tests that run the default backend (RVM): its weights, or a skip."""
    return _need(SHARED_RVM)


@pytest.fixture
def depth_weights(monkeypatch) -> Path:
    """The depth model from ../shared/models (never downloaded in tests), also as
    ``LIVEBOKEH_DEPTH_WEIGHTS`` for runs that load it themselves."""
    path = _need(SHARED_DEPTH)
    monkeypatch.setenv("LIVEBOKEH_DEPTH_WEIGHTS", str(path))
    return path


@pytest.fixture
def no_rvm_weights(monkeypatch) -> None:
    """As on a machine that never downloaded RVM's weights."""
    monkeypatch.delenv("LIVEBOKEH_RVM_WEIGHTS", raising=False)


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """``livebokeh.cli.main`` sets up the "livebokeh" logger for a terminal (its own handler, no
    propagation); put it back after each test, so that the next one's ``caplog`` sees its records."""
    import logging

    logger = logging.getLogger("livebokeh")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


#: Fixtures that bring ../shared data or weights: a test using one is marked ``shared``.
_SHARED_FIXTURES = frozenset({"data_dir", "clip", "half_body_stills", "deeplab_weights", "rvm_weights",
                              "default_weights", "selfie_models", "depth_weights"})


@pytest.fixture(scope="session")
def gpu() -> str:
    """The GPU a backend's runtime sees ("onnxruntime" or "tensorflow"); skips without one."""
    from livebokeh.segment.deeplab.segmenter import tf_gpus
    from livebokeh.segment.rvm import providers

    try:
        if providers()[0] == "CUDAExecutionProvider":
            return "onnxruntime"
    except ImportError:
        pass
    if tf_gpus():
        return "tensorflow"
    pytest.skip("no GPU visible to ONNX Runtime or TensorFlow")


def pytest_collection_modifyitems(config, items):
    """Markers from what a test uses, so that ``-m "not shared"`` runs without ../shared,
    ``-m "not slow"`` is a quick loop (benchmarks and the end-to-end command tests left out) and
    ``-m gpu`` runs what needs a GPU (the ``gpu`` fixture; skipped without one)."""
    for item in items:
        if "gpu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.gpu)
        if _SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.shared)
        path = str(item.fspath)
        if "/tests/bench/" in path or path.endswith("/tests/test_cli.py"):
            item.add_marker(pytest.mark.slow)
