"""A preview window (OpenCV HighGUI), drawn from the main thread."""

from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Callable
from typing import Any

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
    Other keys go to ``controls`` (:class:`livebokeh.pipeline.LiveControls`): ``+``/``-`` blur
    strength, ``e`` effect, ``f`` framing, ``m`` mask view, ``o`` overlay. With the overlay on, the settings and
    ``status()`` (fps, latency) are drawn on the preview only, never on the virtual camera or files.
    """

    name = "preview"

    def __init__(self, title: str = "livebokeh", controls: Any = None,
                 status: Callable[[], str] | None = None) -> None:
        if not display_available():
            raise SinkError("no display for the preview window; run with --no-preview")
        self.title = title
        self.controls = controls
        self.status = status
        self.message = ""
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
            if self.controls is not None and self.controls.overlay:
                image = draw_overlay(image, self.overlay_lines())
            cv2.imshow(self.title, image)
            self._shown = True
        if not self._shown:
            return True
        key = cv2.waitKey(1)
        if key != -1 and not self.handle_key(key & 0xFF):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def handle_key(self, code: int) -> bool:
        """React to a key code; False means quit."""
        if code in QUIT_KEYS:
            return False
        if self.controls is not None and 32 <= code < 127:
            change = self.controls.handle_key(chr(code))
            if change:
                self.message = change
                log.info("%s", change)
        return True

    def overlay_lines(self) -> list[str]:
        from livebokeh.controls import describe

        lines = [describe(self.controls.render)] if self.controls is not None else []
        if self.controls is not None:
            lines.append(f"framing: {self.controls.framing_state if self.controls.framing else 'off'}")
        if self.status is not None:
            lines.append(self.status())
        lines.append("keys: + - blur, e effect, f framing, m mask, o overlay, q quit")
        return lines

    def _release(self) -> None:
        if self._shown:
            import cv2

            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:  # pragma: no cover - window already gone
                pass


def draw_overlay(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of ``image`` with ``lines`` of text in a dark box at the top left."""
    import cv2

    out = image.copy()
    scale = max(0.45, image.shape[0] / 1400)
    step = int(28 * scale / 0.6)
    width = int(max((len(t) for t in lines), default=0) * 11 * scale / 0.6) + 16
    cv2.rectangle(out, (0, 0), (min(width, out.shape[1]), step * len(lines) + 10), (0, 0, 0), -1)
    for i, text in enumerate(lines):
        cv2.putText(out, text, (8, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
