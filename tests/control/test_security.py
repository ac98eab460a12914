"""The control page is a door into the user's machine: every way in without the run's secret, from
another origin or host, or around the rules for changes and uploads is refused, and refusing
changes nothing."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import struct
import zlib

import pytest

from livebokeh.control import backgrounds
from tests.control.conftest import Client

pytestmark = pytest.mark.timeout(120)

PATHS_GET = ["/api/state", "/api/settings", "/api/frame.jpg", "/api/snapshot.png", "/api/backgrounds",
             "/api/thumb?id=x"]  # (the page's three static files hold no secret and need none)
CHANGE = {"changes": {"render.blur": 0.2}}


def _refusals(c: Client) -> list[tuple[str, tuple[int, dict, bytes]]]:
    """Every request the server must refuse, each with what it tries."""
    port, secret = c.port, c.secret
    body = json.dumps(CHANGE).encode()
    json_type = {"Content-Type": "application/json"}
    tries = []
    for path in PATHS_GET:
        tries.append((f"GET {path} without the secret", c.get(path, auth=False)))
        tries.append((f"GET {path} with a wrong secret", c.get(path, auth=False, headers={"Authorization": "Bearer x"})))
        tries.append((f"GET {path} with a wrong key", c.get(path + ("&" if "?" in path else "?") + "key=nope", auth=False)))
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", "localhost",
                 f"127.0.0.2:{port}", f"[::1]:{port}", ""):
        tries.append((f"GET / with Host {host!r}", c.get("/api/state", host=host)))
        tries.append((f"POST with Host {host!r}", c.send("POST", "/api/settings", body, host=host, headers=json_type)))
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}",
                   f"http://evil.example:{port}", f"http://localhost.evil.example:{port}"):
        tries.append((f"POST from Origin {origin}", c.send("POST", "/api/settings", body,
                                                            headers={**json_type, "Origin": origin})))
        tries.append((f"GET from Origin {origin}", c.get("/api/state", headers={"Origin": origin})))
    for site in ("cross-site", "same-site"):
        tries.append((f"POST with Sec-Fetch-Site {site}", c.send("POST", "/api/settings", body,
                                                                 headers={**json_type, "Sec-Fetch-Site": site})))
    # the key in the address is for reading (the page's address), never for a change
    tries.append(("POST with the key in the address only", c.send("POST", f"/api/settings?key={secret}", body,
                                                                   auth=False, headers=json_type)))
    # no cookie is a key, not even one with the secret (cookies are not kept apart by port)
    for name in (f"livebokeh-{port}", f"livebokeh-{port + 1}", "key"):
        tries.append((f"GET with the secret in cookie {name}", c.get("/api/state", auth=False,
                                                                     headers={"Cookie": f"{name}={secret}"})))
    # changes only by POST with a JSON body
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""):
        headers = {"Content-Type": ctype} if ctype else {}
        tries.append((f"POST as {ctype or 'no type'}", c.send("POST", "/api/settings", body, headers=headers)))
    tries.append(("POST without a length", c.send("POST", "/api/settings", None, headers=json_type)))
    tries.append(("POST that is not JSON", c.send("POST", "/api/settings", b"render.blur=0.2", headers=json_type)))
    tries.append(("POST a JSON list", c.send("POST", "/api/settings", b"[1]", headers=json_type)))
    tries.append(("POST too big", c.send("POST", "/api/settings", b" " * (65 * 1024), headers=json_type)))
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        tries.append((f"{method} a change", c.send(method, "/api/settings", body, headers=json_type)))
    for path in ("/api/pause", "/api/resume", "/api/defaults", "/api/reload", "/api/background"):
        tries.append((f"GET {path} (changes are POSTs)", c.get(path)))
    # the static files, from another site or another name
    for path in ("/", "/app.js", "/style.css"):
        tries.append((f"GET {path} from another site", c.get(path, auth=False, headers={"Sec-Fetch-Site": "cross-site"})))
        tries.append((f"GET {path} for another name", c.get(path, auth=False, host=f"evil.example:{port}")))
    # nothing in a request becomes a path
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/page/index.html", "/app.js/../index.html",
                 "//etc/passwd", "/api/../app.js"):
        tries.append((f"GET {path}", c.get(path)))
    for bad in ("/etc/passwd", "../../x.png", "~/secret.png", os.__file__):
        tries.append((f"background path {bad}", c.post("/api/settings", {"changes": {"render.background": bad}})))
    for bad in ("folder:../../etc/passwd", "uploads:../../../etc/hosts", "/etc/passwd", "uploads:nope.png"):
        tries.append((f"pick {bad}", c.post("/api/background", {"id": bad})))
        tries.append((f"thumb {bad}", c.get(f"/api/thumb?id={bad}")))
    return tries


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_every_way_in_without_the_secret_or_from_elsewhere_is_refused(live):
    run, server, cam = live
    c = Client(server)
    before = (run.controls.changes, run.settings())
    accepted = []
    for what, (status, headers, _body) in _refusals(c):
        if status < 400:
            accepted.append(f"{what}: {status}")
        assert headers.get("Content-Security-Policy", "").startswith("default-src 'none'"), what
        assert headers.get("X-Frame-Options") == "DENY", what
    assert accepted == []  # 0 requests accepted
    assert (run.controls.changes, run.settings()) == before  # and nothing changed
    assert server.refused > 60


@pytest.mark.parametrize(
    ("what", "upload", "message"),
    [
        ("not a picture", b"#!/bin/sh\nrm -rf ~\n" * 20, "neither a picture"),
        ("a bomb's header", _png_header(60000, 60000), "pictures up to 50 megapixels"),
        ("a damaged picture", _png_header(64, 64) + b"\x00" * 100, "could not be decoded"),
        ("empty", b"", "the upload is empty"),
    ],
)
def test_uploads_are_decoded_before_use_and_refused_when_they_are_not_pictures(live, what, upload, message):
    run, server, cam = live
    c = Client(server)
    status, _, body = c.post("/api/background", {"upload": base64.b64encode(upload).decode(), "apply": True})
    assert status == 400 and message in json.loads(body)["error"], what
    assert not backgrounds.uploads_dir().exists() or not any(backgrounds.uploads_dir().iterdir())
    assert run.settings().render.background == ""


def test_uploads_have_a_size_limit(live, monkeypatch):
    run, server, cam = live
    c = Client(server)
    big = b"x" * (backgrounds.MAX_UPLOAD + 1)  # within the body's limit, over the file's
    status, _, body = c.post("/api/background", {"upload": base64.b64encode(big).decode()})
    assert status == 400 and "the most is 32 MB" in json.loads(body)["error"]
    # over the body's limit: refused from its length, before a byte of it is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(f"POST /api/background HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Authorization: Bearer {server.secret}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {100 * 2**20}\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):  # the server closes the connection after its answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b"the most here is" in answer
    status, _, body = c.post("/api/background", {"upload": "!!! not base64 !!!"})
    assert status == 400 and "not base64" in json.loads(body)["error"]


def test_connections_that_go_away_print_nothing(live, capfd, caplog):
    """Any local process could connect, send part of a request and leave: each such connection
    printed socketserver's 30-line traceback into the run's terminal (or the journal)."""
    _run, server, _cam = live
    capfd.readouterr()
    for n in range(15):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            s.sendall([b"GET /api/state HTTP/1.1\r\n", b"GET /api/st", b"POST /api/settings HTTP/1.1\r\nHost: x\r\n\r\n",
                       f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode(),
                       b""][n % 5])  # (nothing at all: a port scan's connect and close)
            if n % 5 != 4:  # (a port scan closes as usual; the others reset, not a goodbye)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    from livebokeh.control.server import MAX_CONNECTIONS
    from tests.conftest import until

    until(lambda: server._slots._value == MAX_CONNECTIONS, "every connection's thread done")
    c = Client(server)
    assert c.json("GET", "/api/state")["live"] is True  # the run answers as before
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text
    assert "failed" not in err


def test_a_flood_of_connections_neither_takes_the_runs_threads_nor_locks_the_owner_out(live):
    """Any local process may open connections and send nothing (or a byte at a time): each took a
    thread of the run's, and 32 held ones locked the page and ``ctl`` out. At most MAX_CONNECTIONS
    are served; a new one closes the one that has waited longest for a request's head."""
    import threading

    from livebokeh.control.server import MAX_CONNECTIONS

    _run, server, _cam = live
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        for s in idle:
            s.sendall(b"G")  # a byte of a request line, as a slow client sends
        c = Client(server)
        assert c.get("/api/state")[0] == 200  # the owner gets in while they are all still open
        assert threading.active_count() - before <= MAX_CONNECTIONS + 1
    finally:
        for s in idle:
            s.close()


def test_refused_requests_get_small_answers_and_their_connection_closed(live):
    """Requests with a 60 KB Host header, pipelined and never read: the refusal repeated the Host,
    the answers filled the socket, the run's thread blocked writing them, and 32 such connections
    locked the owner out. The answer no longer repeats what was sent, and the connection is closed
    after it (nothing pipelined behind it is read)."""
    _run, server, _cam = live
    huge = b"GET /api/state HTTP/1.1\r\nHost: " + b"h" * 12_000 + b"\r\n\r\n"  # (under HEAD_BYTES)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(huge * 3)
        answer = b""
        while chunk := s.recv(65536):  # the server closes it after the first answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 421 ") and answer.count(b"HTTP/1.1 ") == 1 and len(answer) < 2000
    assert b"hhhh" not in answer


@pytest.mark.parametrize("where", ["headers", "line"])
def test_a_request_head_is_refused_past_its_size_limit_without_being_kept(live, where):
    """The request parser took 100 header lines of 64 KB, 6.4 MB a connection from anyone local
    (32 connections held 240 MB in the run). A head over HEAD_BYTES is refused (431, or 414 for the
    request line) once the limit is passed, and its connection closed; a head under it is answered."""
    from livebokeh.control.server import HEAD_BYTES

    _run, server, _cam = live
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    if where == "headers":
        head = b"GET /api/state HTTP/1.1\r\n" + host + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 4000) for i in range(90))
    else:
        head = b"GET /" + b"a" * 60_000 + b" HTTP/1.1\r\n" + host
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        try:
            s.sendall(head)  # (not ended: a parser that waited for the rest would never answer)
        except OSError:
            pass  # closed by the server before all was sent
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 " if where == "headers" else b"HTTP/1.1 414 "), answer[:80]
    assert len(answer) < 2000 and b"aaaa" not in answer
    small = b"GET /api/state HTTP/1.1\r\n" + host + b"X-Pad: " + b"a" * (HEAD_BYTES // 2) + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(small)
        assert s.recv(65536).startswith(b"HTTP/1.1 403 ")  # (no key: the checks ran, the head was taken)


def test_the_pages_files_are_one_answer_a_connection_without_the_key(live):
    """The page's files need no key: asked for 200 times at once on a connection that never reads,
    the answers blocked the run's writer, and 32 such connections locked the owner out. Without the
    key a connection gets one answer, then it is closed; with it, it is kept alive."""
    _run, server, _cam = live
    request = f"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(request * 200)
        answer = b""
        while chunk := s.recv(65536):  # closed after the first answer
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 ") == 1 and b"Connection: close" in answer
    c = Client(server)
    status, headers, _ = c.get("/app.js")  # with the key: kept alive
    assert status == 200 and headers.get("Connection") != "close"


def test_a_request_head_that_comes_a_byte_at_a_time_is_closed(live, monkeypatch):
    """The 15 s timeout is per read: a byte every 10 s held a connection for ever."""
    from livebokeh.control import server as server_module

    _run, server, _cam = live
    monkeypatch.setattr(server_module, "HEAD_S", 1)
    line = b"GET /api/state HTTP/1.1\r\n"
    _dripped(server.port, b"", line)  # the request line a byte at a time
    _dripped(server.port, line, b"X-Slow: " + b"a" * 20)  # the line at once, then its headers a byte at a time


def _dripped(port: int, sent: bytes, dripped: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        closed = False
        s.sendall(sent)
        for byte in dripped:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            s.settimeout(0.4)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed  # within the 1 s given (plus the watch's second), long before the line was sent


def test_a_body_shorter_than_its_length_is_the_clients_fault(live, monkeypatch, caplog):
    from livebokeh.control.server import Handler

    run, server, _cam = live
    monkeypatch.setattr(Handler, "timeout", 1)  # the 15 s a client that stops sending is given
    payload = json.dumps(CHANGE).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(f"POST /api/settings HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Authorization: Bearer {server.secret}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(payload) + 1}\r\n\r\n".encode() + payload)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ") and b"ended before its Content-Length" in answer
    assert run.settings().render.blur != 0.2
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_the_key_is_in_no_cookie_and_the_page_holds_no_secret(live):
    """A cookie holding the key went to every server on 127.0.0.1 (cookies are not kept apart by
    port): any local listener the browser was sent to could read it. The address carries the key
    in its fragment, which the browser never sends; the page keeps it in its tab."""
    _run, server, _cam = live
    c = Client(server)
    assert server.url().endswith(f"/#key={server.secret}")
    for path in ("/", f"/?key={server.secret}", "/app.js", "/style.css"):
        status, headers, body = c.get(path, auth=False)
        assert status == 200 and "Set-Cookie" not in headers and server.secret.encode() not in body, path
        assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert b"<title>livebokeh</title>" in c.get("/", auth=False)[2]
    assert c.get("/", host=f"localhost:{server.port}", auth=False)[0] == 200  # the other name of the page
    assert c.get("/api/state", auth=False)[0] == 403


def test_it_listens_on_the_loopback_interface_only(live):
    run, server, cam = live
    assert server.server_address[0] == "127.0.0.1"
    try:  # another address of this machine, where there is one, does not answer
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the outgoing address
            outside = s.getsockname()[0]
    except OSError:
        outside = None
    if outside and not outside.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((outside, server.port), timeout=2).close()


def test_the_secret_is_in_a_file_only_the_user_can_read(live):
    from livebokeh.control.runtime import find_runs, runtime_dir

    run, server, cam = live
    folder = runtime_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (path,) = folder.glob("run-*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (found,) = find_runs()
    assert (found.port, found.secret) == (server.port, server.secret) and len(server.secret) >= 40
    assert found.url == f"http://127.0.0.1:{server.port}/#key={server.secret}"


def test_a_runtime_folder_others_may_enter_is_refused(tmp_path, monkeypatch):
    from livebokeh.control.runtime import runtime_dir
    from livebokeh.errors import ConfigError

    shared = tmp_path / "shared"
    (shared / "livebokeh").mkdir(parents=True)
    os.chmod(shared / "livebokeh", 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    with pytest.raises(ConfigError, match="is not a private folder of yours"):
        runtime_dir(create=True)


def test_the_run_file_goes_with_the_run(memory_vcam):
    from livebokeh.control.runtime import runtime_dir
    from tests.conftest import FakeSource
    from tests.control.conftest import live_settings, started

    with started(live_settings(), source=FakeSource(count=10**7, live=True, fps=60)):
        assert len(list(runtime_dir().glob("run-*.json"))) == 1
    assert list(runtime_dir().glob("run-*.json")) == []
