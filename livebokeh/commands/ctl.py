"""``livebokeh ctl``: steer a running livebokeh from scripts, hotkeys and a desktop's shortcuts.

It finds the run through the user's runtime folder (:mod:`livebokeh.control.runtime`: the file a
run with the control page leaves there, mode 0600, holds its port and secret) and speaks the
control page's JSON API (:mod:`livebokeh.control.server`) on 127.0.0.1. The standard library only.

Exit status: 0 done; 2 the request was refused (an unknown key, a bad value, a setting that
cannot change while running, an existing snapshot file without ``--overwrite``, a snapshot onto one
of the run's inputs, with or without it); 1 no run found, or it did not answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from livebokeh.errors import (
    ConfigError,
    LivebokehError,
    OneLineParser,
    one_line,
    printable,
    stdout_error,
    stdout_gone,
)

#: Seconds to wait for the answer to a request that may swap a model (``set``, ``reload``: a
#: backend swap loads a model first).
TIMEOUT_S = 120.0
#: Seconds to wait for any other answer (status, get, snapshot, pause, resume): a run that takes
#: longer is stuck, and a script or hotkey should hear so soon.
QUICK_TIMEOUT_S = 10.0


class Refused(ConfigError):
    """The run answered, and refused."""


class Unreachable(LivebokehError):
    """No run answered."""


def request(run: Any, method: str, path: str, body: dict[str, Any] | None = None,
            timeout: float | None = None) -> tuple[bytes, str]:
    """``method path`` to ``run`` (a :class:`~livebokeh.control.runtime.RunFile`) with its secret;
    the answer's body and content type. :class:`Unreachable` when it does not answer within
    ``timeout`` seconds (default :data:`QUICK_TIMEOUT_S`; :data:`TIMEOUT_S` for a request that may
    swap a model)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(run.address(path), data=data, method=method)
    req.add_header("Authorization", f"Bearer {run.secret}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(req, timeout=QUICK_TIMEOUT_S if timeout is None else timeout) as resp:
            return resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("error", "")
        except ValueError:
            message = ""
        raise Refused(message or f"livebokeh answered {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        later = ("; it may still carry this out when it answers again: check with `livebokeh ctl status` before "
                 "asking again") if method != "GET" and (isinstance(reason, TimeoutError) or "timed out" in str(reason)) else ""
        raise Unreachable(f"livebokeh (process {run.pid}) did not answer on port {run.port}: {reason}{later}") from None


def call(run: Any, method: str, path: str, body: dict[str, Any] | None = None,
         timeout: float | None = None) -> Any:
    raw, _ = request(run, method, path, body, timeout)
    return json.loads(raw)


def value_of(key: str, text: str) -> Any:
    """``text`` as the settings key ``key`` takes it (the schema's type, checked)."""
    from livebokeh.config import field_of
    from livebokeh.schema import parse_text

    return parse_text(key, field_of(key), text, "ctl set")


def _set(run: Any, pairs: list[str]) -> dict[str, Any]:
    if len(pairs) % 2:
        raise ConfigError("set takes KEY VALUE pairs, such as: ctl set render.blur 0.05")
    changes = {key: value_of(key, text) for key, text in zip(pairs[::2], pairs[1::2], strict=True)}
    background = changes.get("render.background")
    named = Path(background).expanduser() if isinstance(background, str) and background else None
    if named is not None:
        from livebokeh.render.background import parse_colour

        if parse_colour(background) is not None:  # a colour is a colour, whatever file has that name here
            named = None
    if named is not None and not named.is_file() and os.path.lexists(named):
        # something at that name that is no file (a colour was taken as one above)
        from livebokeh.errors import file_kind

        try:
            what = file_kind(named.stat().st_mode)
        except OSError:
            what = "a link to a missing file"
        raise ConfigError(f"{background} is {what}, not a picture or video file; give a file, or a colour")
    if named is not None and named.is_file():
        # a file of yours: sent as an upload (the run never opens a path given over its API), up to
        # the run's limit (a larger one is told here, never read whole into memory)
        from livebokeh.control.backgrounds import MAX_UPLOAD

        with open(named, "rb") as fh:  # at most one byte past the limit: a file growing meanwhile is not read whole
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(MAX_UPLOAD + 1) if size <= MAX_UPLOAD else b""
        if size > MAX_UPLOAD or len(data) > MAX_UPLOAD:
            raise ConfigError(f"{background} is {max(size, len(data)):,} bytes, and a background sent to a run is at "
                              f"most {MAX_UPLOAD:,} ({MAX_UPLOAD // 2**20} MB): make it smaller (a still picture, or "
                              "a shorter video)")
        rest = {k: v for k, v in changes.items() if k != "render.background"}
        done = call(run, "POST", "/api/background", {"upload": base64.b64encode(data).decode(), "apply": False},
                    TIMEOUT_S)
        applied = dict(done.get("applied", {}))
        if rest:
            applied.update(call(run, "POST", "/api/settings", {"changes": rest}, TIMEOUT_S)["applied"])
        return applied
    try:
        return call(run, "POST", "/api/settings", {"changes": changes}, TIMEOUT_S)["applied"]
    except Refused as err:
        if named is not None and not os.path.lexists(named) and "takes a colour" in str(err):
            # (the run's advice, to give a FILE, is what the user did: the file is what is missing)
            raise ConfigError(f"render.background {background}: there is no such file (from {Path.cwd()}), and it is "
                              "no colour or background the run knows; give a picture's or video's path, or a "
                              "colour (#00ff00, green)") from None
        raise


def _snapshot(run: Any, file: str, overwrite: bool) -> Path:
    from livebokeh.sinks.files import Output, check_outputs, write_bytes

    out = Output.of("snapshot", file)
    if out.path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ConfigError(f"snapshot {file}: give a .png or .jpg file")
    raw, _ = request(run, "GET", "/api/snapshot.png?" + _target(out.path))  # the run refuses its inputs
    check_outputs([out], [], overwrite)
    if out.path.suffix.lower() != ".png":
        import cv2
        import numpy as np

        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        raw = bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1])
    return write_bytes(out.path, raw, overwrite)


def _target(path: Path) -> str:
    """The query that tells the run where its snapshot goes: the absolute path with links
    resolved, and the device and inode of the file there (when there is one)."""
    import os
    from urllib.parse import quote_from_bytes, urlencode

    fields = {"path": quote_from_bytes(os.fsencode(path.resolve()), safe="")}
    try:
        st = path.stat()
        fields.update(device=str(st.st_dev), inode=str(st.st_ino))
    except OSError:
        pass
    return urlencode(fields, safe="%")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="livebokeh ctl", description=(__doc__ or "").split("\n\n")[0].replace("``", ""))
    p.add_argument("--run", metavar="PID", help="which run, by process id, when several run (`ctl list` shows them)")
    sub = p.add_subparsers(dest="what", required=True, metavar="status|get|set|snapshot|pause|resume|reload|list")
    sub.add_parser("status", help="what the run does now, as JSON, with the control page's address (url)")
    g = sub.add_parser("get", help="a setting in effect (section.key), or every setting without KEY")
    g.add_argument("key", nargs="?", metavar="KEY")
    s = sub.add_parser("set", help="change settings: KEY VALUE [KEY VALUE ...] (settings file keys, e.g. render.blur 0.05)")
    s.add_argument("pairs", nargs="+", metavar="KEY VALUE")
    sn = sub.add_parser("snapshot", help="write the picture the virtual camera sends now to FILE (.png or .jpg)")
    sn.add_argument("file", metavar="FILE")
    sn.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    pa = sub.add_parser("pause", help="send a still picture (or a blank one) instead of the camera")
    pa.add_argument("--blank", action="store_true", help="a black picture instead of the last one")
    sub.add_parser("resume", help="send the camera again")
    sub.add_parser("reload", help="read the settings file again (as SIGHUP does)")
    sub.add_parser("list", help="the runs found (a running process's run file; not asked), one a line: process id, "
                                "source, address")
    return p


def main(argv: list[str]) -> int:
    from livebokeh.control.runtime import choose, find_runs

    args = build_parser().parse_args(argv)
    try:
        runs = find_runs()
        if args.what == "list":
            for r in runs:
                source = printable(r.source, newlines=False).replace("\t", "\\x09")  # a clip's name: one field
                print(f"{r.pid}\t{source}\t{r.address()}{'  (service)' if r.service else ''}")
            return 0
        run = choose(runs, args.run)
        if args.what == "status":
            state = call(run, "GET", "/api/state")
            print(json.dumps({"url": run.url, **state}, indent=2))
        elif args.what == "get":
            values = call(run, "GET", "/api/settings")["settings"]
            if args.key is None:
                print(json.dumps(values, indent=2))
            elif args.key not in values:
                from livebokeh.config import field_of

                field_of(args.key)  # the schema's message names the keys there
                raise ConfigError(f"unknown settings key {args.key!r}")
            else:
                value = values[args.key]
                print(json.dumps(value) if not isinstance(value, str) else value)
        elif args.what == "set":
            applied = _set(run, args.pairs)
            print("\n".join(f"{k} = {json.dumps(v)}" for k, v in applied.items()) or "nothing changed")
        elif args.what == "snapshot":
            print(_snapshot(run, args.file, args.overwrite))
        elif args.what == "pause":
            call(run, "POST", "/api/pause", {"mode": "blank" if args.blank else "still"})
        elif args.what == "resume":
            call(run, "POST", "/api/resume", {})
        elif args.what == "reload":
            for line in call(run, "POST", "/api/reload", {}, TIMEOUT_S).get("restart", []):
                print(line)
    except ConfigError as err:
        print(f"livebokeh ctl: error: {one_line(err)}", file=sys.stderr)
        return 2
    except LivebokehError as err:
        print(f"livebokeh ctl: error: {one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:
        if (isinstance(err, BrokenPipeError) and stdout_gone()) or stdout_error(err):
            raise  # its output's reader gone (ends quietly), or its output unwritable (livebokeh.cli.main)
        print(f"livebokeh ctl: error: {printable(err.strerror or str(err))}", file=sys.stderr)
        return 1
    return 0
