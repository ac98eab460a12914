"""A preview window (OpenCV HighGUI), drawn from the main thread."""

from __future__ import annotations

import logging
import os
import platform
import threading

import numpy as np

from livebokeh.errors import SinkError
from livebokeh.sinks.base import SINKS, Sink
from livebokeh.types import Composite

log = logging.getLogger(__name__)

QUIT_KEYS = frozenset({ord("q"), ord("Q"), 27})  # q or Esc


def display_available() -> bool:
    """False on Linux without an X11 or Wayland display (servers, CI, SSH without -X)."""
    if platform.system() != "Linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@SINKS.register("preview")
class PreviewSink(Sink):
    """Shows the newest rendered frame; ``q`` or Esc (or closing the window) stops livebokeh.

    :meth:`write` only stores the frame (the sink thread never blocks on the GUI); the window is
    drawn by :meth:`poll`, which the pipeline calls on the main thread, as GUI toolkits require.
    """

    name = "preview"

    def __init__(self, title: str = "livebokeh") -> None:
        if not display_available():
            raise SinkError("no display for the preview window; run with --no-preview")
        self.title = title
        self._lock = threading.Lock()
        self._latest: np.ndarray | None = None
        self._shown = False

    def write(self, item: Composite) -> None:
        with self._lock:
            self._latest = item.image

    def poll(self) -> bool:
        import cv2

        with self._lock:
            image, self._latest = self._latest, None
        if image is not None:
            cv2.imshow(self.title, image)
            self._shown = True
        if not self._shown:
            return True
        key = cv2.waitKey(1)
        if key != -1 and (key & 0xFF) in QUIT_KEYS:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def _release(self) -> None:
        if self._shown:
            import cv2

            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:  # pragma: no cover - window already gone
                pass
