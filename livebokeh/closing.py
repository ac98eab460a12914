"""One close-once base for what holds files, devices or runtimes (sinks, segmenters, backgrounds)."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class Closeable:
    """:meth:`close` releases once (safe to call twice, as MediaPipe Tasks' objects are); use it
    as a context manager. Subclasses put their clean-up in :meth:`_release`."""

    _closed: bool = False

    def _release(self) -> None:
        """Backend clean-up; called once."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
