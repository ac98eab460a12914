"""The command's presets without running a pipeline: --config files (stacked), --quality presets,
their order under the flags, and --config files as inputs. Quick (not marked slow, unlike
tests/test_cli.py's end-to-end runs)."""

from __future__ import annotations

import tomllib

from livebokeh import config
from livebokeh.cli import build_parser, main


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("livebokeh: error")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_quality_choices_are_the_preset_files_found(tmp_path, monkeypatch):
    def choices():
        return next(a for a in build_parser()._actions if a.dest == "quality").choices

    assert tuple(choices()) == config.quality_names() == ("best", "fast")
    for name in ("zz", "aa"):
        (tmp_path / f"{name}.toml").write_text("[mask]\nlookahead = 1\n")
    monkeypatch.setattr(config, "quality_dir", lambda: tmp_path)
    assert tuple(choices()) == ("aa", "zz")


def test_config_given_twice_stacks_under_quality_and_flags(tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text("[render]\nblur = 0.05\n[mask]\nlookahead = 2\n")
    assert main(["--config", "call", "--config", str(mine), "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["render"]["blur"] == 0.05 and printed["mediapipe"]["model"] == "landscape"  # mine over call
    assert main(["-c", "call", "-c", str(mine), "--quality", "best", "--lookahead", "3", "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    # call chose MediaPipe: best's MediaPipe table over both files, the flag over best
    assert (printed["mediapipe"]["model"], printed["segmenter"]["roi"], printed["mask"]["lookahead"]) == (
        "general", True, 3)


def test_every_config_file_given_counts_as_an_input(tmp_path, capsys):
    mine = tmp_path / "mine.toml"
    mine.write_text("[render]\nblur = 0.05\n")
    before = mine.read_bytes()
    assert main(["--config", "call", "--config", str(mine), "--stats-json", str(mine), "--overwrite"]) == 2
    assert f"--stats-json {mine} would replace the input" in error_line(capsys.readouterr().err)
    assert mine.read_bytes() == before


def test_readme_lists_every_quality_preset():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for name in config.quality_names():
        assert f"| `{name}` | " in readme, name  # a row of the --quality table


def test_a_backend_flag_that_does_not_apply_is_a_one_line_error(capsys):
    assert main(["--backend", "rvm", "--model", "landscape", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--model (mediapipe.model) does not apply to the rvm backend" in err
    assert "--rvm-weights (rvm.weights), --backbone (rvm.backbone), --model-size (rvm.size)" in err
