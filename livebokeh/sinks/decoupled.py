"""A sink on its own thread, fed the newest composite: live outputs that must not hold up the rest."""

from __future__ import annotations

import logging
import threading

from livebokeh.errors import SinkError
from livebokeh.queues import END, Empty, LatestQueue
from livebokeh.sinks.base import Sink
from livebokeh.types import Composite

log = logging.getLogger(__name__)

_TICK = 1.0  # the thread ends on END; the timeout only bounds an idle wait
_JOIN_TIMEOUT = 2.0


class Decoupled(Sink):
    """Runs ``inner`` on its own thread at its own pace.

    :meth:`write` never waits for ``inner``: the composite replaces any one ``inner`` has not
    taken yet (counted in :attr:`dropped`), so a virtual camera whose reader is slow (or a
    driver call that blocks) does not delay the renderer, the preview or a recording. An
    error in ``inner`` is raised by the next :meth:`write`, or by :meth:`close` when no write
    comes, so the pipeline stops as with any sink error. :meth:`close` lets ``inner`` send the
    last composite, then closes it.
    """

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.name = inner.name
        self._slot = LatestQueue()
        self._error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._run, name=f"livebokeh-{inner.name}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Composites replaced before ``inner`` took them."""
        return self._slot.dropped

    def write(self, item: Composite) -> None:
        self._raise_pending()
        self._slot.put(item)

    def poll(self) -> bool:
        return self.inner.poll()

    def mark_complete(self) -> None:
        super().mark_complete()
        self.inner.mark_complete()

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._slot.get(timeout=_TICK)
                except Empty:
                    continue
                if item is END:
                    return
                self.inner.write(item)
        except BaseException as err:  # noqa: BLE001 - handed to the writer's thread
            self._error = err

    def _raise_pending(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            err = self._error
            if isinstance(err, SinkError):
                raise err
            raise SinkError(f"{self.name}: {err}") from err

    def _release(self) -> None:
        self._slot.put(END)
        self._thread.join(_JOIN_TIMEOUT)
        if self._thread.is_alive():
            log.warning("the %s output did not finish within %.0f s", self.name, _JOIN_TIMEOUT)
        self.inner.close()
        self._raise_pending()
