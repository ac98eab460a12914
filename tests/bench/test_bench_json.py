"""`bench ... --json FILE` is checked before anything is measured, as a run's outputs are
(:func:`livebokeh.sinks.files.check_outputs`)."""

import os

import pytest

from livebokeh.bench import render as bench_render
from livebokeh.cli import main


@pytest.fixture
def never_measured(monkeypatch):
    """bench render's measurement, which a refused --json must never reach."""
    calls = []
    monkeypatch.setattr(bench_render, "run", lambda *a, **k: calls.append(a) or pytest.fail("measured"))
    return calls


def _data(tmp_path):
    data = tmp_path / "data"
    (data / "stills").mkdir(parents=True)
    (data / "stills" / "hs_001.png").write_bytes(b"mask")
    return data


def _refused(capsys, argv):
    assert main(["bench", "render", *argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    return line


def test_json_onto_a_link_to_nothing_is_refused_at_the_start(tmp_path, capsys, never_measured):
    """It ran the whole bench, then said the name 'appeared during the run (another program wrote it)'."""
    link = tmp_path / "dangle.json"
    link.symlink_to("nowhere.json")
    line = _refused(capsys, ["--data", str(_data(tmp_path)), "--json", str(link)])
    assert line == f"livebokeh: error: --json {link} exists; pass --overwrite to replace it, or choose another name"
    assert link.is_symlink() and not os.path.lexists(tmp_path / "nowhere.json")


def test_json_into_a_missing_folder_or_with_no_name_is_refused_before_measuring(tmp_path, capsys, never_measured):
    data = str(_data(tmp_path))
    line = _refused(capsys, ["--data", data, "--json", str(tmp_path / "nodir" / "x.json")])
    assert line.endswith(f"folder {tmp_path / 'nodir'} does not exist; create it first")
    assert _refused(capsys, ["--data", data, "--json", ""]) == "livebokeh: error: --json needs a file name"
    line = _refused(capsys, ["--data", data, "--json", str(tmp_path)])
    assert line.endswith("is a folder; give a file name such as " + str(tmp_path / "out.json"))


def test_json_onto_an_input_of_the_bench_is_refused_even_with_overwrite(tmp_path, capsys, never_measured):
    """`--json DATA/stills/hs_001.png --overwrite` replaced the bench's own input mask with JSON."""
    data = _data(tmp_path)
    mask = data / "stills" / "hs_001.png"
    line = _refused(capsys, ["--data", str(data), "--json", str(mask), "--overwrite"])
    assert line == (f"livebokeh: error: --json {mask} would replace an input of the bench (a file in its data "
                    f"folder {data}); choose another name")
    link = tmp_path / "link.json"  # the same file under another name
    link.symlink_to(mask)
    assert "would replace an input of the bench" in _refused(capsys, ["--data", str(data), "--json", str(link),
                                                                      "--overwrite"])
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"weights")
    line = _refused(capsys, ["--data", str(data), "--rvm-weights", str(weights), "--json", str(weights), "--overwrite"])
    assert line.endswith(f"would replace the input {weights}; choose another name")
    assert mask.read_bytes() == b"mask" and weights.read_bytes() == b"weights"
    assert not never_measured


def test_json_onto_a_bench_settings_file_is_refused(tmp_path, capsys, monkeypatch):
    from livebokeh.bench import framing

    monkeypatch.setattr(framing, "run", lambda *a, **k: pytest.fail("measured"))
    settings = tmp_path / "s.toml"
    settings.write_text("")
    assert main(["bench", "framing", "--config", str(settings), "--json", str(settings), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"would replace the input {settings}; choose another name")
    assert settings.read_text() == ""
