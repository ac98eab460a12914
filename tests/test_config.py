import dataclasses
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livebokeh import config
from livebokeh.config import (
    BACKENDS,
    Config,
    load_config,
    preset_names,
    presets_dir,
    quality_dir,
    quality_names,
    resolve_config_path,
    sections,
    to_toml,
)
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
    cfg = load_config(p, {"render.blur": 0.01, "segmenter.backend": "mediapipe", "mediapipe.model": "landscape"})
    assert cfg.render.blur == 0.01  # the flag wins
    assert cfg.camera.device == "/dev/video4" and cfg.camera.width == 640
    assert cfg.mediapipe.model == "landscape"
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
        ("[render]\ndepth = 'yes'\n", "render.depth must be true or false, got 'yes'"),
        ("[render]\nfocus_distance = 0.1\n", "render.focus_distance must be a number from 0.3 to 100, got 0.1"),
        ("[render]\nmax_blur = 0.5\n", "render.max_blur must be a number from 0 to 0.25, got 0.5"),
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


def test_an_override_from_a_flag_names_the_flag():
    flags = {"mask.smoothing": "--smoothing", "mask.low": "--mask-low", "mask.high": "--mask-high"}
    with pytest.raises(ConfigError, match="^--smoothing must be a number from 0 to 1, got 3"):
        load_config(None, {"mask.smoothing": 3.0}, flags=flags)
    with pytest.raises(ConfigError, match=r"^--mask-low \(0.7\) must be smaller than --mask-high \(0.3\)$"):
        load_config(None, {"mask.low": 0.7, "mask.high": 0.3}, flags=flags)
    with pytest.raises(ConfigError, match="^command line: render.blur must be"):  # a key without a flag
        load_config(None, {"render.blur": 3.0}, flags=flags)


@pytest.mark.parametrize("value, ok", [(0, True), (64, True), (512, True), (2048, True), (1, False), (63, False),
                                       (2049, False), (-1, False)])
def test_the_backbone_is_automatic_or_what_rvm_can_use(value, ok):
    if ok:
        assert load_config(None, {"rvm.backbone": value}).rvm.backbone == value
    else:
        with pytest.raises(ConfigError, match="rvm.backbone must be 0 or a number from 64 to 2048"):
            load_config(None, {"rvm.backbone": value})


def test_a_background_flag_implies_replace():
    from livebokeh.config import with_implied

    assert with_implied({"render.background": "x.jpg"}) == {"render.background": "x.jpg", "render.effect": "replace"}
    assert with_implied({"render.background": ""}) == {"render.background": ""}
    assert with_implied({"render.effect": "blur"}) == {"render.effect": "blur"}
    with pytest.raises(ConfigError, match="shown only with --effect replace, not --effect blur"):
        with_implied({"render.background": "x.jpg", "render.effect": "blur"})


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


@pytest.mark.parametrize("value", ["\x1f", 'a"b\\c\nd\te', "\x7f", "plain", "€ é"])
def test_printed_settings_read_back_whatever_a_string_holds(value):
    cfg = load_config(None, {"camera.device": value, "render.background": value})
    assert load_config_text(to_toml(cfg)) == cfg


def load_config_text(text):
    from livebokeh.config import _apply

    return _apply(Config(), tomllib.loads(text), "printed")


def test_the_schema_names_every_registered_backend():
    from livebokeh.config import BACKENDS
    from livebokeh.segment import SEGMENTERS

    assert BACKENDS == SEGMENTERS.names()


# ---------------------------------------------------------------------------------------------
# --quality presets (configs/quality/*.toml)

#: What each shipped quality preset sets, per backend: the values of the Python dict the TOML files
#: replaced. A new preset file, or a changed value, has to be written here too.
QUALITY_EXPECTED = {
    "fast": {backend: {"mask.lookahead": 0} for backend in BACKENDS},
    "best": {
        "mediapipe": {"mask.lookahead": 4, "segmenter.roi": True, "mediapipe.model": "general"},
        "deeplab": {"mask.lookahead": 4, "deeplab.size": 513, "deeplab.aspect": "frame"},
        "rvm": {"rvm.backbone": 512},  # RVM's look-ahead measured no gain
    },
}


def test_quality_presets_are_the_files_in_their_own_folder_not_config_presets():
    assert quality_dir() == presets_dir() / "quality"
    assert quality_names() == tuple(sorted(QUALITY_EXPECTED)) == ("best", "fast")
    assert not set(quality_names()) & set(preset_names())
    assert preset_names() == ("call", "default", "record", "stream")
    with pytest.raises(ConfigError, match="neither a file nor a preset"):
        resolve_config_path("best")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(QUALITY_EXPECTED))
def test_every_quality_preset_sets_exactly_its_keys_for_every_backend(name, backend):
    base = {"segmenter.backend": backend}
    got = load_config(None, base, quality=name)
    expected = QUALITY_EXPECTED[name][backend]
    for dotted, value in expected.items():
        section, _, key = dotted.partition(".")
        assert getattr(getattr(got, section), key) == value, dotted
    # and nothing else: the same as the expected keys given as flags
    assert got == load_config(None, {**base, **expected})


def test_quality_sits_over_the_config_files_and_under_the_flags(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[segmenter]\nbackend = "rvm"\n[rvm]\nbackbone = 300\n[mask]\nlookahead = 2\n')
    assert load_config(mine, quality="best").rvm.backbone == 512  # preset beats --config
    assert load_config(mine, quality="best").mask.lookahead == 2  # what it leaves alone stays
    assert load_config(mine, {"rvm.backbone": 448}, quality="best").rvm.backbone == 448  # flag beats preset
    assert load_config(mine, quality="fast").mask.lookahead == 0
    assert load_config(mine, {"mask.lookahead": 3}, quality="fast").mask.lookahead == 3


def test_the_backend_tables_follow_the_backend_the_config_or_the_flags_choose(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[segmenter]\nbackend = "deeplab"\n')
    dl = load_config(mine, quality="best")
    assert (dl.segmenter.backend, dl.deeplab.size, dl.deeplab.aspect, dl.rvm.backbone) == ("deeplab", 513, "frame", 0)
    rvm = load_config(mine, {"segmenter.backend": "rvm"}, quality="best")  # the flag chooses
    assert (rvm.segmenter.backend, rvm.deeplab.size, rvm.deeplab.aspect, rvm.rvm.backbone) == ("rvm", 0, "square", 512)
    mp = load_config("call", quality="best")  # call: MediaPipe, landscape model, no ROI pass
    assert (mp.mediapipe.model, mp.segmenter.roi, mp.mask.lookahead) == ("general", True, 4)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[backend.rvm]\nrvm.backbon = 512\n",
         "[backend.rvm]: unknown key 'rvm.backbon'; allowed keys in [rvm]: weights, backbone, size"),
        ("[backend.deeplab]\ndeeplab.size = 9999\n",  # a backend other than the chosen one is checked too
         "[backend.deeplab]: deeplab.size must be a number from 0 to 2049, got 9999"),
        ("[backend.rvm]\nmediapipe.model = 'landscape'\n",
         "[backend.rvm]: sets [mediapipe], another backend's options"),
        ("[backend.rvm]\nrenderer.blur = 0.1\n", "[backend.rvm]: unknown section [renderer]"),
        ("[backend.yolo]\nmask.lookahead = 4\n", "unknown backend [backend.yolo]; backends: mediapipe, deeplab, rvm"),
        ("[backend.rvm]\nsegmenter.backend = 'deeplab'\n", "[backend.rvm]: cannot set segmenter.backend"),
        ("[backend]\nrvm = 3\n", "[backend.rvm] must be a table of sections"),
        ("backend = 3\n", "[backend] must be a table of backend names"),
        ("[mask]\nlookahead = 9\n", "mask.lookahead must be a number from -1 to 8, got 9"),
        ("[mask\n", "not valid TOML"),
    ],
)
def test_bad_quality_presets_give_one_line_errors_naming_the_file(tmp_path, monkeypatch, toml, message):
    monkeypatch.setattr(config, "quality_dir", lambda: tmp_path)
    p = tmp_path / "bad.toml"
    p.write_text(toml)
    assert quality_names() == ("bad",)
    with pytest.raises(ConfigError) as info:
        load_config(None, {"segmenter.backend": "rvm"}, quality="bad")
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert str(p) in text


def test_an_unknown_quality_name_lists_the_presets():
    with pytest.raises(ConfigError, match="--quality 'nope' is not a quality preset; presets: best, fast"):
        load_config(None, quality="nope")


def test_config_files_stack_and_the_later_one_wins(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text("[render]\nblur = 0.05\n[segmenter]\nroi = true\n")
    cfg = load_config(["call", mine])
    assert (cfg.render.blur, cfg.segmenter.roi) == (0.05, True)  # mine over call
    assert (cfg.segmenter.backend, cfg.mediapipe.model, cfg.preview.enabled) == ("mediapipe", "landscape", False)
    assert load_config([mine, "call"]).segmenter.roi is False  # call over mine
    assert load_config(["call"]) == load_config("call")
    assert load_config([]) == Config()


def test_an_installed_package_finds_its_presets_where_the_wheel_puts_them(tmp_path):
    """The wheel's layout, from pyproject's force-include (CI installs with ``pip install .``):
    the presets, the quality ones included, are found inside the package."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO as repo

    project = tomllib.loads((repo / "pyproject.toml").read_text())
    include = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    package = tmp_path / "livebokeh"
    package.mkdir()
    for name in ("__init__.py", "errors.py", "config.py", "schema.py", "segment/__init__.py", "segment/options.py"):
        (package / name).parent.mkdir(exist_ok=True)
        shutil.copy(repo / "livebokeh" / name, package / name)
    for src, dst in include.items():
        shutil.copytree(repo / src, tmp_path / dst)
    code = ("from livebokeh import config; print(config.presets_dir()); print(*config.preset_names());"
            "print(*config.quality_names()); print(config.load_config(None, {'segmenter.backend': 'deeplab'},"
            " quality='best').deeplab.size)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert out.stdout.splitlines() == [str(package / "configs"), " ".join(preset_names()), "best fast", "513"]


# ---------------------------------------------------------------------------------------------
# Each backend's own section


def test_each_backend_section_is_its_options_dataclass():
    from livebokeh.segment import BACKEND_OPTIONS

    secs = sections()
    for backend, options in BACKEND_OPTIONS.items():
        assert secs[backend] is options
        assert getattr(Config(), backend) == options()
    cfg = Config()
    assert cfg.backend_options() is cfg.rvm  # the default backend's


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"segmenter.backend": "rvm", "mediapipe.model": "landscape"},
         "--model (mediapipe.model) does not apply to the rvm backend (it is mediapipe's); rvm takes --rvm-weights "
         "(rvm.weights), --backbone (rvm.backbone), --model-size (rvm.size); leave it out, or choose --backend mediapipe"),
        ({"rvm.backbone": 512, "segmenter.backend": "deeplab"}, "--backbone (rvm.backbone) does not apply to the deeplab"),
        ({"segmenter.backend": "mediapipe", "model.size": 300},
         "--model-size does not apply to the mediapipe backend; mediapipe takes --model (mediapipe.model)"),
        ({"deeplab.weights": "x.tflite"}, "--deeplab-weights (deeplab.weights) does not apply to the rvm backend"),
    ],
)
def test_a_flag_of_a_backend_not_chosen_is_an_error_naming_what_applies(overrides, message):
    from livebokeh.cli import build_parser, flag_names

    with pytest.raises(ConfigError) as info:
        load_config(None, overrides, flags=flag_names(build_parser()))
    assert message in str(info.value)


def test_model_size_is_the_chosen_backends_size(tmp_path):
    assert load_config(None, {"model.size": 480}).rvm.size == 480  # rvm, the default
    dl = load_config(None, {"segmenter.backend": "deeplab", "model.size": 321})
    assert (dl.deeplab.size, dl.rvm.size) == (321, 0)
    mine = tmp_path / "mine.toml"
    mine.write_text('[segmenter]\nbackend = "deeplab"\n')
    assert load_config(mine, {"model.size": 321}).deeplab.size == 321  # the file chooses


def test_a_file_keeps_every_backends_section_for_when_it_is_chosen(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[segmenter]\nbackend = "rvm"\n[mediapipe]\nmodel = "landscape"\n[rvm]\nbackbone = 320\n')
    cfg = load_config(mine)
    assert (cfg.rvm.backbone, cfg.mediapipe.model) == (320, "landscape")
    assert load_config(mine, {"segmenter.backend": "mediapipe"}).backend_options().model == "landscape"


def test_old_flat_segmenter_keys_still_work_with_a_warning_naming_the_new_place(tmp_path, caplog):
    old = tmp_path / "old.toml"
    old.write_text('[segmenter]\nbackend = "mediapipe"\nmodel = "landscape"\nsize = 513\nrvm_weights = "/w.onnx"\n'
                   'weights = "/d.tflite"\nbackbone = 320\naspect = "frame"\n')
    with caplog.at_level("WARNING", logger="livebokeh.config"):
        cfg = load_config(old)
    assert cfg.mediapipe.model == "landscape"
    assert (cfg.deeplab.size, cfg.deeplab.weights, cfg.deeplab.aspect) == (513, "/d.tflite", "frame")
    assert (cfg.rvm.size, cfg.rvm.weights, cfg.rvm.backbone) == (513, "/w.onnx", 320)
    text = caplog.text
    assert "segmenter.model has moved to [mediapipe] model" in text
    assert "segmenter.size has moved to [deeplab] size and [rvm] size" in text
    assert str(old) in text
    # the new place, given in the same file, wins over the old key
    both = tmp_path / "both.toml"
    both.write_text('[segmenter]\nmodel = "landscape"\n[mediapipe]\nmodel = "general"\n')
    assert load_config(both).mediapipe.model == "general"


def test_shipped_settings_use_no_old_key(caplog):
    with caplog.at_level("WARNING", logger="livebokeh.config"):
        for name in preset_names():
            load_config(name)
        for name in quality_names():
            for backend in BACKENDS:
                load_config(None, {"segmenter.backend": backend}, quality=name)
    assert "has moved" not in caplog.text


def test_a_config_name_that_is_no_file_is_named_not_taken_for_a_mistyped_preset(tmp_path):
    """A --config file that became a folder or a pipe (a reload) was 'neither a file nor a preset;
    presets: ...', as if a preset's name were mistyped."""
    import os

    from livebokeh.config import resolve_config_path
    from livebokeh.errors import ConfigError

    (tmp_path / "s.toml").mkdir()
    os.mkfifo(tmp_path / "p.toml")
    for name, what in (("s.toml", "a folder"), ("p.toml", "a pipe")):
        with pytest.raises(ConfigError, match=f"is {what}, not a settings file"):
            resolve_config_path(tmp_path / name)
