"""`ctl` against a run whose port accepts and never answers: each request gives up with its
one line, the quick ones soon; only those that may swap a model (set, reload) wait long."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from livebokeh.commands import ctl
from livebokeh.control.runtime import RunFile, publish


@pytest.fixture
def mute_run():
    """A run file (this process: alive) whose port accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    run = RunFile(pid=os.getpid(), port=server.getsockname()[1], secret="abc", source="fake", started=time.time())
    path = publish(run)
    try:
        yield run
    finally:
        path.unlink(missing_ok=True)
        server.close()


QUICK = [["status"], ["get"], ["get", "render.blur"], ["pause"], ["resume"], ["snapshot", "now.png"]]
LONG = [["set", "render.blur", "0.05"], ["reload"]]


@pytest.mark.parametrize("argv", QUICK + LONG, ids=lambda a: " ".join(a))
def test_each_request_waits_as_long_as_it_may_need(argv, mute_run, monkeypatch, tmp_path, capsys):
    """`ctl status` waited 120 s (the time a backend swap may take) for a run that never answers."""
    monkeypatch.chdir(tmp_path)
    waits = []

    def never_answers(self, req, data=None, timeout=None):
        waits.append(timeout)
        raise urllib.error.URLError("timed out")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", never_answers)
    assert ctl.main(argv) == 1
    assert waits == [ctl.TIMEOUT_S if argv in LONG else ctl.QUICK_TIMEOUT_S]
    assert ctl.QUICK_TIMEOUT_S <= 10 < ctl.TIMEOUT_S
    err = capsys.readouterr().err
    said = f"livebokeh ctl: error: livebokeh (process {os.getpid()}) did not answer on port {mute_run.port}: timed out"
    if argv[0] in ("status", "get", "snapshot"):  # a question: nothing is left to happen
        assert err == said + "\n"
    else:  # a change may still be carried out when the run wakes (a pause after the resume that followed it)
        assert err.startswith(said + "; it may still carry this out when it answers again") and err.count("\n") == 1


def test_a_run_that_never_answers_is_said_in_one_line(mute_run, monkeypatch, capsys):
    monkeypatch.setattr(ctl, "QUICK_TIMEOUT_S", 0.2)  # (the real wait is 10 s)
    monkeypatch.setattr(ctl, "TIMEOUT_S", 0.2)
    assert ctl.main(["status"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"livebokeh ctl: error: livebokeh (process {os.getpid()}) did not answer on port "
                           f"{mute_run.port}: ")
    assert "timed out" in line
