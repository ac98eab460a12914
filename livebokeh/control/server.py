"""The control page and its JSON API, served by a live run on 127.0.0.1 (the standard library's
``http.server``; the page is three static files, no build step, nothing from the network).

Every request is refused (403, or 421 for a foreign Host) unless all of these hold:

- it came to 127.0.0.1 (the server listens nowhere else);
- its ``Host`` is ``127.0.0.1:PORT`` or ``localhost:PORT`` (a page on another name that resolves
  here, DNS rebinding, is refused);
- its ``Origin``, when it has one, is the page's own (``http://127.0.0.1:PORT`` or
  ``http://localhost:PORT``), and its ``Sec-Fetch-Site``, when it has one, is ``same-origin`` or
  ``none`` (no other web page can drive it, nor embed it: ``frame-ancestors 'none'``);
- it carries the run's secret: ``Authorization: Bearer SECRET`` (``livebokeh ctl``, and the page,
  which takes it from its address, ``/#key=SECRET``, keeps it in its tab's ``sessionStorage`` and
  drops it from the address bar), or, for a GET, ``?key=SECRET``. No cookie holds it: cookies are
  not kept apart by port, so a browser would send one to any other server on 127.0.0.1.

The page's three static files need no secret (they hold none); every ``/api/`` request does.

Changes are made only by POST, with a JSON body (``Content-Type: application/json``, so that a
plain HTML form of another site cannot even send one) of bounded size; GET only reads.
Nothing in a request becomes a path: backgrounds are picked by the ids the picker lists or
uploaded (decoded first, kept in the user's data folder: :mod:`livebokeh.control.backgrounds`);
snapshots go back to the caller, who writes them.

API (all JSON unless said):

==========================  =================================================================
``GET /``                   the page (``/app.js``, ``/style.css``: its script and style)
``GET /api/state``          what the run does now (:meth:`livebokeh.app.Run.state`)
``GET /api/settings``       the settings in effect, how each key changes while running
                            (``now``, ``swap``: a new model, ``restart``), and the schema
``POST /api/settings``      ``{"changes": {"render.blur": 0.05, ...}}``: all applied or none
``POST /api/pause``         ``{"mode": "still" | "blank"}``; ``POST /api/resume`` ``{}``
``GET /api/frame.jpg``      the newest picture sent, small (``?w=`` 160 to 640 px wide), JPEG
``GET /api/snapshot.png``   the newest picture sent, full size, PNG; ``?path=&device=&inode=``
                            (the file it will be written to) refused (409) when that is an input
``GET /api/backgrounds``    the pictures and videos offered: ``{"items": [{"id", "name", "kind"}]}``
``GET /api/thumb?id=ID``    a small JPEG of one of them
``POST /api/background``    ``{"id": ID}`` picks one; ``{"upload": BASE64, "name": NAME}`` uploads
                            one; either with ``"apply": true`` also sets ``render.effect replace``
``POST /api/defaults``      ``{"overwrite": bool}``: the changes into the settings file (409
                            with ``"exists": true`` when it exists and overwrite is false)
``POST /api/reload``        ``{}``: the settings file read again, as SIGHUP does
==========================  =================================================================
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livebokeh.control import backgrounds
from livebokeh.control.runtime import RunFile, publish
from livebokeh.controls import NotLive, changeable
from livebokeh.errors import ConfigError, LivebokehError, one_line, printable

log = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parent / "page"
#: Path -> (file in :data:`PAGE`, content type): the only files served.
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Largest JSON body of a change, and of an upload (base64 of :data:`backgrounds.MAX_UPLOAD`).
MAX_BODY = 64 * 1024
MAX_UPLOAD_BODY = backgrounds.MAX_UPLOAD * 4 // 3 + 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
                               "connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PREVIEW_WIDTHS = (160, 640)


#: Connections served at once; more are closed unanswered (see ControlServer.process_request).
MAX_CONNECTIONS = 32
#: Seconds a request's line and headers have to arrive whole (each read also times out at 15 s).
HEAD_S = 10
#: Bytes a request's line and headers may take together (the page's and ``ctl``'s take under 2 KB;
#: Python's parser alone would take 100 lines of 64 KB, 6.4 MB a connection, from anyone local).
HEAD_BYTES = 16 * 1024


class _HeadReader:
    """A connection's reader while a request's head comes: past ``limit`` bytes it gives an
    over-long line, which the request parser refuses (414 for the request line, 431 for a header)
    without reading, or keeping, any more of it."""

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._left = limit

    def readline(self, size: int = -1) -> bytes:
        line = self._raw.readline(self._left + 1 if size < 0 else min(size, self._left + 1))
        self._left -= len(line)
        if self._left < 0:
            return b"x" * (size if size > 0 else 1 << 17)  # (the stdlib's limits are 64 KB a line)
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _shut(connection: Any) -> None:
    """End ``connection`` from this side: its handler's read returns, its thread ends."""
    import socket

    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class ControlServer(ThreadingHTTPServer):
    """The HTTP server of one run (see the module's text); :meth:`close` stops it."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, run: Any, port: int = 0, secret: str | None = None) -> None:
        try:
            super().__init__(("127.0.0.1", port), Handler)
        except OSError as err:
            raise ConfigError(f"the control page cannot listen on 127.0.0.1:{port} ({err.strerror}); choose another "
                              "--control-port (0 = any free one), or --no-control") from None
        self.run = run
        self.port = int(self.server_address[1])
        self.secret = secret or secrets.token_urlsafe(32)
        self.hosts = frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})
        self.origins = frozenset(f"http://{h}" for h in self.hosts)
        self._preview_lock = threading.Lock()
        self._preview: tuple[int, int, bytes] | None = None  # (frame index, width, JPEG)
        self.refused = 0  # requests refused by the checks (for the tests and the log)
        self.requests = 0  # requests answered
        self.cpu_ns = 0  # CPU time the answering took, every request's (its thread's own)
        self._count_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.closing = False  # the run is ending: a connection kept alive gets no more answers
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._waiting: dict[Any, float] = {}  # connections waiting for a request's head: since when
        self._waiting_lock = threading.Lock()

    def start(self) -> ControlServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="livebokeh-control", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name="livebokeh-control-watch", daemon=True).start()
        return self

    def _watch(self) -> None:
        """Once a second, close the connections that have waited more than :data:`HEAD_S` for a
        request's head (a byte at a time would else hold one for ever)."""
        while not self.closing:
            time.sleep(1.0)
            now = time.monotonic()
            for _ in self._evict(lambda waiting: [c for c, since in waiting.items() if now - since > HEAD_S]):
                log.debug("control: a connection sent no whole request in %d s; closed", HEAD_S)

    def _evict(self, choose: Any) -> list[Any]:
        """Close the waiting connections ``choose`` picks from ``{connection: waiting since}``;
        the ones closed."""
        with self._waiting_lock:
            chosen = choose(self._waiting)
            for c in chosen:
                del self._waiting[c]
        for c in chosen:
            _shut(c)
        return chosen

    def close(self) -> None:
        self.closing = True
        if self._thread is not None:
            self.shutdown()
            self._thread.join(2.0)
            self._thread = None
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """A connection gets a thread of its own, up to :data:`MAX_CONNECTIONS` at once (a local
        process opening thousands would else take as many threads from the camera's run; the page
        needs a few). When all are taken, the one that has waited longest for a request's head is
        closed for the new one (a client that holds connections open sending nothing, or a byte
        at a time, cannot lock the page and ``ctl`` out); when none waits, the new one is closed."""
        if not self._slots.acquire(blocking=False):
            oldest = self._evict(lambda waiting: [min(waiting, key=waiting.__getitem__)] if waiting else [])
            if not oldest or not self._slots.acquire(timeout=2.0):
                self.refused += 1
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def waiting(self, connection: Any, waits: bool) -> None:
        """Note that ``connection`` waits for a request's head (``waits``), or no longer does."""
        with self._waiting_lock:
            if waits:
                self._waiting[connection] = time.monotonic()
            else:
                self._waiting.pop(connection, None)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def url(self, path: str = "/") -> str:
        """The page's address with the secret, in its fragment (never sent to a server)."""
        return f"http://127.0.0.1:{self.port}{path}#key={self.secret}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """What escaped a connection's handler (socketserver prints a traceback to stderr, which
        any local process could fill by connecting and going away): a client gone is a debug
        line, anything else one warning line (the traceback with --debug)."""
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):
            log.debug("control: a connection from %s ended: %s", client_address, err)
        else:
            log.warning("control: a request from %s failed: %s", client_address,
                        one_line(err) if err is not None else "unknown", exc_info=log.isEnabledFor(logging.DEBUG))

    def counted(self, cpu_ns: int) -> None:
        with self._count_lock:
            self.requests += 1
            self.cpu_ns += cpu_ns

    def preview_jpeg(self, width: int) -> bytes | None:
        """The newest picture sent, ``width`` px wide, as JPEG (encoded once per frame and width,
        whoever asks)."""
        import cv2

        composite = self.run.snapshot()
        if composite is None:
            return None
        key = (composite.frame.index, width)
        with self._preview_lock:
            if self._preview is not None and self._preview[:2] == key:
                return self._preview[2]
            image = composite.image
            h, w = image.shape[:2]
            small = cv2.resize(image, (width, max(2, round(h * width / w))), interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
            data = bytes(buf)
            self._preview = (*key, data)
            return data


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    server: ControlServer
    server_version = "livebokeh"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 15  # a client that stops sending is dropped

    def handle_one_request(self) -> None:
        t0 = time.thread_time_ns()  # CPU only: waiting for the next request of a kept-alive connection is not
        # a request's line and headers must come whole within HEAD_S, however slowly each byte comes
        # (the timeout is per read; the server's watch closes it): till then it may also be closed
        # for a newer connection
        self.server.waiting(self.connection, True)
        raw, self.rfile = self.rfile, _HeadReader(self.rfile, HEAD_BYTES)
        try:
            super().handle_one_request()
        finally:
            self.rfile = raw
            self.server.waiting(self.connection, False)
        if getattr(self, "command", None):  # (none when the client sent nothing: a port scan)
            self.server.counted(time.thread_time_ns() - t0)

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers: still under the deadline and HEAD_BYTES
        reader = self.rfile
        if isinstance(reader, _HeadReader):  # the body is read as it is, to its own limit
            self.rfile = reader._raw
        self.server.waiting(self.connection, False)  # the head is in: the answer takes its own time
        return ok

    # -- the checks every request passes ----------------------------------------------------

    def _check(self) -> None:
        srv = self.server
        host = self.headers.get("Host", "")
        if host not in srv.hosts:  # (what it gave is not repeated: an answer stays small, whatever was sent)
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, f"the Host header is not this page's (127.0.0.1:{srv.port})")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in srv.origins:
            raise Refused(HTTPStatus.FORBIDDEN, f"requests from {printable(origin[:80], newlines=False)} are refused")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(HTTPStatus.FORBIDDEN, f"{printable(site[:40], newlines=False)} requests are refused")
        if self._authorised():
            return
        if self.command in ("GET", "HEAD") and urlsplit(self.path).path in STATIC:
            # the page's files, to anyone local: one answer a connection, so that a client that asks
            # again and again without reading can neither block the run's writer nor hold a connection
            self.close_connection = True
            return
        raise Refused(HTTPStatus.FORBIDDEN, "this needs the run's key: open the address `livebokeh ctl status` prints (url)")

    def _authorised(self) -> bool:
        secret = self.server.secret.encode()
        given: list[str] = []
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given.append(auth[7:].strip())
        if self.command in ("GET", "HEAD"):
            given += parse_qs(urlsplit(self.path).query).get("key", [])
        return any(hmac.compare_digest(g.encode(), secret) for g in given)

    def _guarded(self, handle: Any) -> None:
        """``handle`` answered, or the error it raised; a client gone meanwhile (a ConnectionError
        or TimeoutError while answering) ends the connection, told by ControlServer.handle_error."""
        try:
            if self.server.closing:
                raise Refused(HTTPStatus.SERVICE_UNAVAILABLE, "this livebokeh run is ending")
            self._check()
            handle()
        except Refused as err:
            self.server.refused += 1
            log.debug("control: refused %s %s: %s", self.command, self.path.split("?")[0], err)
            self.close_connection = True  # no request pipelined behind a refused one is read
            self._json({"error": str(err)}, err.status)
        except NotLive as err:
            self._json({"error": one_line(err), "restart": True}, HTTPStatus.CONFLICT)
        except LivebokehError as err:
            self._json({"error": one_line(err)}, HTTPStatus.BAD_REQUEST)
        except TimeoutError:  # a body shorter than its Content-Length: the client's fault, not the run's
            self.server.refused += 1
            self._json({"error": "the body ended before its Content-Length"}, HTTPStatus.REQUEST_TIMEOUT)
        except ConnectionError:
            raise
        except Exception as err:  # noqa: BLE001 - a bug: one line back, the traceback in the log
            log.warning("control: %s %s failed: %s", self.command, self.path.split("?")[0], one_line(err),
                        exc_info=log.isEnabledFor(logging.DEBUG))
            self._json({"error": f"internal error: {type(err).__name__}: {one_line(err)}"},
                       HTTPStatus.INTERNAL_SERVER_ERROR)

    # -- methods ------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._guarded(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _refuse_method(self) -> None:
        self._guarded(lambda: self._json({"error": f"{self.command} is not answered here"},
                                         HTTPStatus.METHOD_NOT_ALLOWED, {"Allow": "GET, HEAD, POST"}))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method  # noqa: N815

    def _get(self) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        run = self.server.run
        if path in STATIC:  # (the page takes a key from its address itself: ``/#key=``, or ``/?key=``)
            name, ctype = STATIC[path]
            self._send(HTTPStatus.OK, (PAGE / name).read_bytes(), ctype)
        elif path == "/api/state":
            self._json(run.state())
        elif path == "/api/settings":
            self._json(settings_payload(run))
        elif path == "/api/frame.jpg":
            width = _int(query.get("w", ["320"])[0], 320)
            width = min(PREVIEW_WIDTHS[1], max(PREVIEW_WIDTHS[0], width))
            data = self.server.preview_jpeg(width)
            if data is None:
                self._json({"error": "no picture sent yet"}, HTTPStatus.SERVICE_UNAVAILABLE)
            else:
                self._send(HTTPStatus.OK, data, "image/jpeg")
        elif path == "/api/snapshot.png":
            import cv2

            _refuse_an_input(run, parse_qs(url.query, errors="surrogateescape"))  # any bytes, as the OS names them
            composite = run.snapshot()
            if composite is None:
                self._json({"error": "no picture sent yet"}, HTTPStatus.SERVICE_UNAVAILABLE)
                return
            ok, buf = cv2.imencode(".png", composite.image)
            self._send(HTTPStatus.OK, bytes(buf), "image/png")
        elif path == "/api/backgrounds":
            items = backgrounds.listing(run.settings().control.backgrounds)
            self._json({"folder": run.settings().control.backgrounds or None,
                        "uploads": str(backgrounds.uploads_dir()),
                        "items": [i.public() for i in items.values()],
                        "current": _current_background_id(run, items)})
        elif path == "/api/thumb":
            item = backgrounds.listing(run.settings().control.backgrounds).get(query.get("id", [""])[0])
            if item is None:
                raise Refused(HTTPStatus.NOT_FOUND, "no such background")
            self._send(HTTPStatus.OK, backgrounds.thumbnail(item), "image/jpeg")
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"nothing at {path}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        routes = {"/api/settings": MAX_BODY, "/api/pause": MAX_BODY, "/api/resume": MAX_BODY,
                  "/api/background": MAX_UPLOAD_BODY, "/api/defaults": MAX_BODY, "/api/reload": MAX_BODY}
        if path not in routes:
            raise Refused(HTTPStatus.NOT_FOUND, f"nothing at {path}")
        body = self._body(routes[path])
        run = self.server.run
        if path == "/api/settings":
            changes = body.get("changes")
            if not isinstance(changes, dict) or not all(isinstance(k, str) for k in changes):
                raise ConfigError('give {"changes": {"section.key": value, ...}}')
            check_paths(run, changes)
            applied = run.change(changes, "control")
            self._json({"applied": applied, "state": run.state()})
        elif path == "/api/pause":
            run.pause(str(body.get("mode", "still")))
            self._json({"state": run.state()})
        elif path == "/api/resume":
            run.resume()
            self._json({"state": run.state()})
        elif path == "/api/background":
            self._background(run, body)
        elif path == "/api/defaults":
            self._defaults(run, body)
        else:
            reload = run.reload_settings
            if reload is None:
                raise NotLive("this run cannot read its settings file again (it was not started from the command line)")
            self._json({"restart": reload()})

    def _background(self, run: Any, body: dict[str, Any]) -> None:
        if "upload" in body:
            data = body["upload"]
            if not isinstance(data, str):
                raise ConfigError("upload must be the file's bytes in base64")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError("upload is not base64") from None
            path = backgrounds.store_upload(raw)
        elif "id" in body:
            item = backgrounds.listing(run.settings().control.backgrounds).get(str(body["id"]))
            if item is None:
                raise ConfigError("no such background in the list; reload the page")
            path = item.path
        else:
            raise ConfigError('give {"id": ID} of a listed background, or {"upload": BASE64}')
        changes: dict[str, Any] = {"render.background": str(path)}
        if body.get("apply"):
            changes["render.effect"] = "replace"
        applied = run.change(changes, "control")
        items = backgrounds.listing(run.settings().control.backgrounds)
        self._json({"applied": applied, "current": _current_background_id(run, items), "state": run.state()})

    def _defaults(self, run: Any, body: dict[str, Any]) -> None:
        from livebokeh.control.defaults import Exists, keep_defaults

        try:
            done = keep_defaults(run.settings(), run.job.config_files, overwrite=bool(body.get("overwrite")))
        except Exists as err:
            self._json({"error": one_line(err), "exists": True, "path": str(err.path), "keys": err.keys},
                       HTTPStatus.CONFLICT)
            return
        self._json(done)

    # -- plumbing -----------------------------------------------------------------------------

    def _body(self, limit: int) -> dict[str, Any]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "changes are POSTed as JSON (Content-Type: application/json)")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "a JSON body with its Content-Length is needed")
        size = int(length)
        if size > limit:
            self.close_connection = True
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is {size} bytes; the most here is {limit}")
        raw = self.rfile.read(size)
        try:
            body = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _json(self, payload: Any, status: int = HTTPStatus.OK, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, default=str).encode(), "application/json", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        if (status >= 400 and self.command == "POST") or self.server.closing or self.close_connection:
            self.close_connection = True  # a refused body may be unread; a run that ends answers no more
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("control: " + format, *args)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _current_background_id(run: Any, items: dict[str, backgrounds.Item]) -> str | None:
    current = run.settings().render.background
    for item in items.values():
        if str(item.path) == current:
            return item.id
    return None


def check_paths(run: Any, changes: dict[str, Any]) -> None:
    """No text of a request becomes a path the run opens: a key that names a file, folder or
    device (weights, the depth model, a camera) keeps the value the run has now or started with
    (or is emptied, its default); ``render.background`` as :func:`check_background` says. What is
    compared is the settings the change would give, whatever name reached the key (``[segmenter]``'s
    old names are refused outright). The answer never depends on whether the path exists."""
    import dataclasses

    from livebokeh.config import MOVED_SEGMENTER_KEYS, apply_keys, sections
    from livebokeh.schema import is_path

    for key in changes:
        section, _, name = key.partition(".")
        if section == "segmenter" and name in MOVED_SEGMENTER_KEYS:
            raise ConfigError(f"{key} has moved to {' and '.join(MOVED_SEGMENTER_KEYS[name])}; use that key")
    check_background(run, changes)
    current = run.settings()
    try:
        new = apply_keys(current, changes, "control")
    except LivebokehError:
        return  # a bad key or value: the change itself says so, and applies nothing
    for section_name in sections():
        for f in dataclasses.fields(getattr(new, section_name)):
            key = f"{section_name}.{f.name}"
            if not is_path(f) or key == "render.background":
                continue
            value = getattr(getattr(new, section_name), f.name)
            known = {getattr(getattr(cfg, section_name), f.name) for cfg in (current, run.cfg)}
            if value != "" and value not in known:
                raise ConfigError(f"{key} names a file, which the control API does not set (a request never names a "
                                  "file the run opens); set it in the settings file and run `livebokeh ctl reload`")


def check_background(run: Any, changes: dict[str, Any]) -> None:
    """``render.background`` over the API is a colour, nothing, or a background the run already
    knows (the one in use, the one it started with, one the picker lists): never a new path."""
    value = changes.get("render.background")
    if value is None or not isinstance(value, str) or value == "":
        return
    from livebokeh.render.background import parse_colour

    if parse_colour(value) is not None:
        return
    known = {run.settings().render.background, run.cfg.render.background}
    known |= {str(i.path) for i in backgrounds.listing(run.settings().control.backgrounds).values()}
    if value not in known:
        raise ConfigError("render.background over the control API takes a colour (#00ff00, green, chroma-green), "
                          "or a background the picker lists; upload a picture or video to use a new one "
                          "(`livebokeh ctl set render.background FILE` uploads it)")


def settings_payload(run: Any) -> dict[str, Any]:
    """The settings in effect, how each key changes while running, and each key's schema."""
    import dataclasses

    from livebokeh.config import describe_key, sections

    cfg = run.settings()
    values, schema = {}, {}
    for name in sections():
        section = getattr(cfg, name)
        for f in dataclasses.fields(section):
            key = f"{name}.{f.name}"
            values[key] = getattr(section, f.name)
            info = describe_key(key)
            entry: dict[str, Any] = {"doc": info.doc, "accepts": info.accepts, "default": info.default}
            if info.choices:
                entry["choices"] = list(info.choices)
            if "range" in f.metadata:
                entry["range"] = list(f.metadata["range"])
            schema[key] = entry
    return {"settings": values, "live": changeable(), "schema": schema, "backend": cfg.segmenter.backend,
            "paused": run.controls.paused, "can_swap": run.controls.swap is not None
            and hasattr(run.pipeline, "swap_segmenter")}


def _refuse_an_input(run: Any, query: dict[str, list[str]]) -> None:
    """A snapshot is written by its caller, who says where (``path``: absolute, links resolved;
    ``device`` and ``inode`` when the file exists): refused (409) when that is one of the run's
    inputs, with or without ``--overwrite``. The path is compared, never opened."""
    path = query.get("path", [""])[0]
    try:
        file_id = (int(query["device"][0]), int(query["inode"][0])) if "inode" in query else None
    except (KeyError, ValueError):
        raise Refused(HTTPStatus.BAD_REQUEST, "device and inode must be numbers") from None
    if not path and file_id is None:
        return
    hit = run.input_named(path, file_id)
    if hit is not None:
        flag, p = hit
        raise Refused(HTTPStatus.CONFLICT, f"{path or 'that file'} is this run's input ({flag} {p}); a snapshot "
                      "never replaces an input, even with --overwrite; choose another name")


@contextlib.contextmanager
def serve(run: Any, port: int | None = None) -> Iterator[ControlServer]:
    """Serve ``run``'s control page while inside; publish its address and secret in the user's
    runtime folder (:mod:`livebokeh.control.runtime`), removed at the end."""
    server = ControlServer(run, run.settings().control.port if port is None else port)
    service = bool(os.environ.get("LIVEBOKEH_SERVICE"))
    info = RunFile(os.getpid(), server.port, server.secret, run.info.name if run.info else "", time.time(), service)
    try:
        path = publish(info)
    except BaseException:
        server.server_close()
        raise
    server.start()
    if service:  # the journal is read by others than the user (adm): the address without its key
        log.info("control page: %s (its key: `livebokeh service status`)", info.address())
    else:
        log.info("control page: %s", info.url)
    try:
        yield server
    finally:
        server.close()
        path.unlink(missing_ok=True)
