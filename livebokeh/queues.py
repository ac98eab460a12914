"""The small queues between pipeline stages. Every ``get`` and ``put`` takes a timeout."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable
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


class FanOut:
    """Deals items to several queues in turn (item ``k`` to queue ``k % n``); :data:`END` goes to all.

    With :class:`FanIn` on the far side it lets ``n`` workers share a stage while the order of the
    stream is kept: nothing needs re-sorting, so file output stays identical on every run.
    """

    def __init__(self, queues: list[FifoQueue]) -> None:
        self.queues = queues
        self._next = 0
        self._ended: set[int] = set()

    def put(self, item: Any, timeout: float) -> None:
        """Raises :class:`Full` when the queue whose turn it is has no room (the turn stays)."""
        if item is END:
            for i, q in enumerate(self.queues):
                if i not in self._ended:  # a retry after Full does not repeat the END already given
                    q.put(END, timeout=timeout)
                    self._ended.add(i)
            return
        self.queues[self._next].put(item, timeout=timeout)
        self._next = (self._next + 1) % len(self.queues)


class FanIn:
    """Takes items from several queues in turn, in the order :class:`FanOut` dealt them."""

    def __init__(self, queues: list[FifoQueue]) -> None:
        self.queues = queues
        self._next = 0

    @property
    def dropped(self) -> int:
        return sum(q.dropped for q in self.queues)

    def get(self, timeout: float) -> Any:
        """Raises :class:`Empty` when the queue whose turn it is stays empty (the turn stays).

        :data:`END` from the queue in turn means every item before it has been taken.
        """
        item = self.queues[self._next].get(timeout=timeout)
        if item is not END:
            self._next = (self._next + 1) % len(self.queues)
        return item


class InOrder:
    """Puts items that finish out of turn back in the order they were started.

    The stage that starts items calls :meth:`started` for each, in stream order; the stage that
    collects them calls :meth:`finished` for each as it arrives and gets back, in order, every
    item that is now due. One thread may start while another finishes (``deque`` appends and
    pops are atomic).

    Args:
        key: an item's identity, the same for an item and its result (e.g. its frame's index).
    """

    def __init__(self, key: Callable[[Any], Hashable]) -> None:
        self._key = key
        self._order: deque[Hashable] = deque()
        self._held: dict[Hashable, Any] = {}

    @property
    def in_flight(self) -> int:
        """Items started and not yet given back by :meth:`finished`."""
        return len(self._order)

    def started(self, item: Any) -> None:
        self._order.append(self._key(item))

    def finished(self, result: Any) -> list[Any]:
        """``result`` is done; returns the results now due, in the order they were started."""
        self._held[self._key(result)] = result
        due = []
        while self._order and self._order[0] in self._held:
            due.append(self._held.pop(self._order.popleft()))
        return due
