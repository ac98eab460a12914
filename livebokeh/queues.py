"""The small queues between pipeline stages. Every ``get`` and ``put`` takes a timeout."""

from __future__ import annotations

import queue
import threading
from typing import Any

#: Marks the end of the stream; it is never dropped.
END: Any = type("EndOfStream", (), {"__repr__": lambda self: "END"})()

Empty = queue.Empty
Full = queue.Full


class FifoQueue:
    """Bounded first-in first-out queue: a full queue blocks the producer (file sources: no frame is ever dropped)."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._q: queue.Queue[Any] = queue.Queue(maxsize)
        self.dropped = 0

    def put(self, item: Any, timeout: float) -> None:
        """Raises :class:`Full` when there is no room within ``timeout`` seconds."""
        self._q.put(item, timeout=timeout)

    def get(self, timeout: float) -> Any:
        """Raises :class:`Empty` when nothing arrives within ``timeout`` seconds."""
        return self._q.get(timeout=timeout)


class LatestQueue:
    """Holds only the newest item (live sources: low latency).

    A ``put`` over an unread item replaces it and counts it in :attr:`dropped`; ``put`` never
    blocks. :data:`END` is delivered after the item waiting with it (the last frame is not
    lost); items put after END are ignored.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self._end = False
        self.dropped = 0

    def put(self, item: Any, timeout: float = 0.0) -> None:
        with self._cond:
            if self._end:
                return
            if item is END:
                self._end = True
            else:
                if self._full:
                    self.dropped += 1
                self._item, self._full = item, True
            self._cond.notify()

    def get(self, timeout: float) -> Any:
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._end, timeout):
                raise Empty
            if self._full:
                item, self._item, self._full = self._item, None, False
                return item
            return END
