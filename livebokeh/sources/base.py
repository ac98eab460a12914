"""The source interface and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from livebokeh.registry import Registry
from livebokeh.types import Frame, StreamInfo


class Source(ABC):
    """Delivers :class:`Frame` objects, one :meth:`read` at a time.

    :meth:`open` returns the :class:`StreamInfo` (the real mode a camera gave, a file's size and
    frame rate) and raises :class:`livebokeh.errors.SourceError` with an actionable message when
    the source cannot be used. :meth:`read` returns None at the end of a finite source.
    :meth:`close` is safe to call twice. A source is read from one thread at a time.
    """

    _info: StreamInfo | None = None

    @abstractmethod
    def _open(self) -> StreamInfo: ...

    @abstractmethod
    def read(self) -> Frame | None: ...

    def _release(self) -> None:
        """Backend clean-up; called once per successful open."""

    def interrupt(self) -> None:
        """Wake a :meth:`read` that waits for something other than the device's next frame
        (an on-demand source waiting for a reader), so that it returns None; safe from any
        thread and in a signal handler. Sources whose reads return by themselves ignore it."""

    def open(self) -> StreamInfo:
        if self._info is None:
            self._info = self._open()
        return self._info

    @property
    def info(self) -> StreamInfo:
        if self._info is None:
            raise RuntimeError("source is not open")
        return self._info

    def close(self) -> None:
        if self._info is not None:
            self._info = None
            self._release()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


SOURCES: Registry[type[Source]] = Registry("source")

#: File name endings read as single images (OpenCV's still-image formats). Reading only: what
#: livebokeh writes is :data:`IMAGE_WRITE_SUFFIXES`.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".jp2", ".exr", ".hdr"}
)

_WRITE_ANY = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: The endings an image output is written as, by the flag that names it: those OpenCV's encoders
#: take for that kind of 8-bit picture of any size (``--output`` colour, ``--save-mask`` gray,
#: ``--alpha-output`` with transparency). Left out: .exr (no encoder in OpenCV's wheels), .jp2
#: (fails on small pictures), .hdr (floating point), .pbm (1 bit), and .ppm or .pgm for the
#: kind they cannot hold.
IMAGE_WRITE_SUFFIXES: dict[str, frozenset[str]] = {
    "--output": _WRITE_ANY | {".ppm"},
    "--save-mask": _WRITE_ANY | {".pgm"},
    "--alpha-output": frozenset({".png", ".webp", ".tif", ".tiff"}),
}


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
