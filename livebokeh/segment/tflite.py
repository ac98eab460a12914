"""TFLite models shared by the MediaPipe and DeepLab backends: interpreters (LiteRT, else
``tf.lite``), one per calling thread, made with the runtime's load-time chatter on fd 2 hidden."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from livebokeh.errors import ModelError

#: fd 2 is one per process: threads silencing it take turns (re-entrant: the Keras path nests).
_STDERR_LOCK = threading.RLock()


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Hide what the native runtime prints on fd 2 while it loads ("Created TensorFlow Lite
    XNNPACK delegate for CPU."); Python-level errors still propagate as exceptions.

    Safe from several threads at once (two inference workers each make an interpreter): they
    take turns, so fd 2 is always given back as it was found."""
    with _STDERR_LOCK:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # replaced stderr (pytest capture, IDEs)
            yield
            return
        saved = os.dup(fd)
        try:
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), fd)
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def make_interpreter(path: Path | None, threads: int, content: bytes | None = None,
                     fix: str = "download it again") -> Any:
    """A TFLite interpreter for ``path``, or for the model ``content`` (bytes) when given (LiteRT if
    installed, else tf.lite), tensors allocated. A path that is no UTF-8 text is read here and
    given as bytes (the runtime's loader takes UTF-8 names only). ``fix``: what the error about a
    file that is no usable model tells the user to do."""
    from livebokeh.interrupts import import_interruptible

    try:  # (a stop signal while it imports is an interrupt, not a missing runtime)
        Interpreter = import_interruptible("ai_edge_litert.interpreter").Interpreter
    except ImportError:  # pragma: no cover - depends on the environment
        try:
            tf = import_interruptible("tensorflow")
        except ImportError:
            raise ModelError("no TFLite runtime: run `pip install ai-edge-litert`") from None
        Interpreter = tf.lite.Interpreter
    what = f"the model built from {path}" if content is not None else str(path)
    if content is None and path is not None:
        from livebokeh.models import runtime_source

        try:
            source = runtime_source(path)
        except OSError as err:
            raise ModelError(f"cannot read {path} ({err.strerror or err}); check the file") from None
        if isinstance(source, bytes):
            content = source
    try:
        with native_stderr_silenced():
            if content is not None:
                interp = Interpreter(model_content=content, num_threads=threads)
            else:
                interp = Interpreter(model_path=str(path), num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"{what} is not a usable TFLite model ({err}); {fix}") from None
    return interp


class Interpreters:
    """TFLite interpreters for one model file, one per calling thread: an interpreter must not run
    on two threads at once, so a segmenter built on this may be called from several threads (a
    file pipeline runs a heavy model on two). The first is made at once, so that a bad file fails
    when the segmenter is built, and goes to the first thread that asks (the thread that built it
    is often not the one that runs it); each other thread's is made on its first :meth:`get`.

    Args:
        path: the ``.tflite`` file.
        threads: the runtime's own threads for each interpreter.
        content: the model's bytes, when it is built in memory (``path`` then names its source).
        fix: what to do about a file that is no usable model (the error's end).
    """

    def __init__(self, path: Path, threads: int, content: bytes | None = None,
                 fix: str = "download it again") -> None:
        self.path, self.threads, self.content = path, threads, content
        self.first = make_interpreter(path, threads, content, fix)  # also the source of the tensor details
        self._unclaimed = [self.first]
        self._lock = threading.Lock()
        self._local = threading.local()

    def check_shapes(self, inputs: list[list[int]], outputs: list[list[int]], fix: str) -> None:
        """Raise :class:`ModelError` (one line naming the file and ``fix``) unless the model's
        input and output shapes are ``inputs`` and ``outputs`` (each a shape, -1 for any size
        there), so that a file of another model fails when it loads, not at its first frame."""

        def fits(got: list[int], want: list[int]) -> bool:
            return len(got) == len(want) and all(w < 0 or g == w for g, w in zip(got, want))

        got_in = [[int(v) for v in d["shape"]] for d in self.first.get_input_details()]
        got_out = [[int(v) for v in d["shape"]] for d in self.first.get_output_details()]
        if len(got_in) == len(inputs) and len(got_out) == len(outputs) and all(
                fits(g, w) for g, w in zip(got_in + got_out, inputs + outputs)):
            return

        def shapes(items: list[list[int]]) -> str:
            return ", ".join("x".join("?" if v < 0 else str(v) for v in shape) for shape in items) or "none"

        raise ModelError(f"{self.path} takes {shapes(got_in)} and gives {shapes(got_out)}, where {shapes(inputs)} "
                         f"in and {shapes(outputs)} out are needed; {fix}")

    def get(self) -> Any:
        """The calling thread's interpreter."""
        interp = getattr(self._local, "interp", None)
        if interp is None:
            with self._lock:
                interp = self._unclaimed.pop() if self._unclaimed else None
            if interp is None:
                interp = make_interpreter(self.path, self.threads, self.content)
            self._local.interp = interp
        return interp
