"""The sink interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from livebokeh.closing import Closeable
from livebokeh.errors import SinkError
from livebokeh.registry import Registry
from livebokeh.types import Composite


class Sink(Closeable, ABC):
    """Receives every rendered :class:`Composite`.

    A sink is opened by its constructor (so a missing device or an unwritable path is reported
    before any frame is processed), written from the pipeline's sink thread, and finalised by
    :meth:`close`, which is safe to call twice and always leaves a complete file behind.
    """

    name: str = "sink"
    #: Whether the whole input went through (:meth:`mark_complete`): file sinks then finalise
    #: under their own name at :meth:`close`, otherwise (stopped, failed) as partial files.
    complete: bool = False

    def mark_complete(self) -> None:
        """The whole input went through: :meth:`close` finalises under the final name."""
        self.complete = True

    @abstractmethod
    def write(self, item: Composite) -> None: ...

    def poll(self) -> bool:
        """Called often from the main thread (GUI work lives here). False asks the pipeline to stop."""
        return True



SINKS: Registry[type[Sink]] = Registry("sink")


def check_output_path(path: str | Path) -> Path:
    """An output path whose folder exists (the file itself may or may not)."""
    p = Path(path)
    if p.is_dir():
        raise SinkError(f"output {p} is a folder; give a file name such as {p / 'out.mp4'}")
    if not p.parent.is_dir():
        raise SinkError(f"output folder {p.parent} does not exist; create it first")
    return p
