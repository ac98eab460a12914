"""Native libraries' own lines kept off the terminal while a picture is decoded.

A damaged PNG makes libpng print ``libpng error: Not enough image data`` on the process's
stderr before OpenCV gives up, and OpenCV logs its decoders' failures as blocks of
``[ERROR:0@0.1] ... grfmt_webp.cpp ...`` lines; livebokeh says what is wrong in one line of its
own. Around a decode, :func:`quiet_native` silences OpenCV's logging and points file descriptor
2 at a temporary file; afterwards the libraries' lines are logged at debug level (``--debug``
shows them) and anything else written meanwhile (another thread's warning, the progress bar)
goes to stderr as it was. Decodes on several threads at once share one window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

#: Lines that native image libraries write by themselves: libpng's errors and warnings,
#: OpenCV's log (a block: its header, the exception's text, a blank line), libjpeg's warnings.
NATIVE_LINE = re.compile(
    rb"^(libpng (error|warning)|\[ ?(ERROR|WARN|INFO|DEBUG|FATAL|VERB):\d|OpenCV\(\d|"
    rb"Corrupt JPEG data|Premature end of JPEG|Invalid (JPEG|SOS)|Bogus |Unsupported marker)"
)

_lock = threading.Lock()
_depth = 0
_saved: int | None = None  # the real stderr, while captured
_capture: Any = None  # the temporary file fd 2 points at
_cv_level: int | None = None


_watchers: list[list[str]] = []  # the blocks open now: each gets the libraries' lines of its window


@contextlib.contextmanager
def quiet_native() -> Iterator[list[str]]:
    """Keep native libraries' own lines (libpng, libjpeg, OpenCV's log) off stderr for the
    block (see the module text); safe to nest and to use on several threads at once. Yields a
    list that holds, after the block, the lines the libraries wrote in its window (a damaged
    JPEG's ``Corrupt JPEG data: ...``: decoded all the same, but said)."""
    seen: list[str] = []
    with _lock:
        _watchers.append(seen)
    _enter()
    try:
        yield seen
    finally:
        _leave()
        with _lock:  # by identity: `in` and `remove` compare lists by content, and two empty ones are equal
            _watchers[:] = [w for w in _watchers if w is not seen]


def _enter() -> None:
    global _depth, _saved, _capture, _cv_level
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        try:
            import cv2

            _cv_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        except (ImportError, AttributeError):  # an OpenCV build without its logging module
            _cv_level = None
        try:
            _flush()
            capture = tempfile.TemporaryFile()  # noqa: SIM115 - held until the last decode leaves
            saved = os.dup(2)
        except OSError as err:  # no stderr to take (a daemon): nothing to keep off it
            log.debug("native stderr left as it is: %s", err)
            return
        try:
            os.dup2(capture.fileno(), 2)
        except OSError as err:
            log.debug("native stderr left as it is: %s", err)
            os.close(saved)
            capture.close()
            return
        _saved, _capture = saved, capture


def _leave() -> None:
    global _depth, _saved, _capture, _cv_level
    with _lock:
        _depth -= 1
        if _depth > 0:
            return
        if _cv_level is not None:
            import cv2

            cv2.utils.logging.setLogLevel(_cv_level)
            _cv_level = None
        saved, capture, _saved, _capture = _saved, _capture, None, None
        if saved is None:
            return
        _flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read()
        capture.close()
    _replay(text)


def _replay(text: bytes) -> None:
    """The libraries' lines to the debug log; every other line back to stderr, in order."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+$", text)  # a progress bar's \r stays inside its line
    native = [line for line in lines if NATIVE_LINE.match(line)]
    said = [line.decode(errors="replace").rstrip() for line in native]
    for line in said:
        log.debug("native: %s", line)
    with _lock:
        for seen in _watchers:
            seen.extend(said)
    # the blank lines that end OpenCV's blocks go with them
    others = [line for line in lines if not NATIVE_LINE.match(line) and (line.strip() or not native)]
    if others:
        with contextlib.suppress(OSError):
            os.write(2, b"".join(others))


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
