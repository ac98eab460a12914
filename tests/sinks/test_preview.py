import pytest

from livebokeh.errors import SinkError
from livebokeh.sinks import PreviewSink, display_available


def test_no_display_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not display_available()
    with pytest.raises(SinkError, match="run with --no-preview"):
        PreviewSink()


def test_display_detection(monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_available()
