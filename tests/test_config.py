import dataclasses
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livebokeh.config import Config, load_config, preset_names, presets_dir, resolve_config_path, sections, to_toml
from livebokeh.errors import ConfigError


def test_default_toml_matches_the_dataclass_defaults():
    assert load_config("default") == Config()
    # and it documents every key
    text = (presets_dir() / "default.toml").read_text()
    for name, cls in sections().items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(cls):
            assert f"\n{f.name} = " in text


@pytest.mark.parametrize("name", ["call", "stream", "record"])
def test_presets_load_and_differ_from_default(name):
    assert name in preset_names()
    cfg = load_config(name)
    assert cfg != Config()


def test_file_values_and_flag_overrides(tmp_path):
    p = tmp_path / "my.toml"
    p.write_text('[render]\nblur = 0.05\n[camera]\ndevice = "/dev/video4"\nwidth = 640\n')
    cfg = load_config(p, {"render.blur": 0.01, "segmenter.model": "landscape"})
    assert cfg.render.blur == 0.01  # the flag wins
    assert cfg.camera.device == "/dev/video4" and cfg.camera.width == 640
    assert cfg.segmenter.model == "landscape"
    assert cfg.mask == Config().mask  # untouched sections keep their defaults


def test_ints_are_accepted_for_floats():
    assert load_config(None, {"camera.fps": 25}).camera.fps == 25.0


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[render]\nblurr = 0.1\n", "unknown key 'render.blurr'; allowed keys in [render]: effect, blur"),
        ("[renderer]\nblur = 0.1\n", "unknown section [renderer]; allowed sections: camera, segmenter"),
        ("[render]\nblur = 'lots'\n", "render.blur must be a number from 0 to 0.25, got 'lots'"),
        ("[render]\nblur = -1\n", "render.blur must be a number from 0 to 0.25, got -1"),
        ("[render]\neffect = 'sparkle'\n", "render.effect must be one of: blur, replace, none, got 'sparkle'"),
        ("[segmenter]\nbackend = 'yolo'\n", "segmenter.backend must be one of: mediapipe, deeplab"),
        ("[camera]\nwidth = 12.5\n", "camera.width must be a number from 16 to 7680, got 12.5"),
        ("[camera]\nwidth = true\n", "camera.width must be a number"),
        ("[camera]\nfourcc = 'MJPEG'\n", "camera.fourcc must be 4 characters"),
        ("[preview]\nenabled = 1\n", "preview.enabled must be true or false, got 1"),
        ("[mask]\nlow = 0.9\nhigh = 0.1\n", "mask.low (0.9) must be smaller than mask.high (0.1)"),
        ("render = 3\n", "[render] must be a table"),
        ("[render\n", "not valid TOML"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_key(tmp_path, toml, message):
    p = tmp_path / "bad.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert str(p) in text


def test_bad_override_names_the_command_line():
    with pytest.raises(ConfigError, match="command line: mask.smoothing must be a number from 0 to 1, got 3"):
        load_config(None, {"mask.smoothing": 3.0})


def test_unknown_config_name():
    with pytest.raises(ConfigError, match="neither a file nor a preset; presets: call, default, record, stream"):
        resolve_config_path("nonexistent")


def test_to_toml_round_trips(tmp_path):
    cfg = load_config("stream", {"virtual_camera.device": 'we"ird\\name'})
    p = tmp_path / "out.toml"
    p.write_text(to_toml(cfg))
    assert load_config(p) == cfg


_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(), max_size=2),
)
_keys = st.sampled_from(["blur", "effect", "width", "fps", "fourcc", "low", "high", "enabled", "device", "zzz"])
_sections = st.sampled_from(["render", "camera", "mask", "preview", "virtual_camera", "segmenter", "pipeline", "nope"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_sections, st.dictionaries(_keys, _values, max_size=4), max_size=4))
def test_random_configs_are_either_valid_or_a_config_error(data):
    from livebokeh.config import _apply

    try:
        cfg = _apply(Config(), {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in data.items()}, "fuzz")
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(cfg, Config)
        tomllib.loads(to_toml(cfg))


def test_the_schema_names_every_registered_backend():
    from livebokeh.config import BACKENDS
    from livebokeh.segment import SEGMENTERS

    assert BACKENDS == SEGMENTERS.names()
