import pytest

from livebokeh.errors import ConfigError
from livebokeh.registry import Registry
from livebokeh.segment import SEGMENTERS
from livebokeh.sinks import SINKS
from livebokeh.sources import SOURCES


def test_unknown_name_lists_the_known_ones():
    r = Registry[int]("colour")
    r.add("red", 1)
    r.add("blue", 2)
    assert r.get("blue") == 2
    with pytest.raises(ConfigError, match="unknown colour 'green'; choose one of: red, blue"):
        r.get("green")


def test_duplicate_registration_is_refused():
    r = Registry[int]("colour")
    r.register("red")(1)
    with pytest.raises(ValueError):
        r.register("red")(2)


def test_builtin_registries():
    assert SEGMENTERS.names() == ("mediapipe", "deeplab", "rvm")
    assert set(SOURCES.names()) == {"camera", "clip", "video", "image", "animation"}  # Reconnecting wraps "camera"
    assert set(SINKS.names()) == {"video", "alpha", "image", "mask", "virtual-camera", "preview"}
