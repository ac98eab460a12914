import pytest

from livebokeh.cli import main


def test_doctor_reports_each_check_with_a_fix(capsys):
    code = main(["doctor"])
    out = capsys.readouterr()
    assert "[ok  ] packages: Python" in out.out and "default backend: rvm" in out.out
    assert "cameras:" in out.out and "virtual camera:" in out.out
    failed = "[FAIL]" in out.out
    assert code == (1 if failed else 0)
    if failed:  # e.g. CI: neither a webcam nor v4l2loopback
        assert "fix:" in out.out and "not ready for live use" in out.err


def test_doctor_without_devices_checks_the_rest_and_does_not_call_the_machine_ready(capsys):
    assert main(["doctor", "--no-devices"]) == 0
    out = capsys.readouterr()
    assert "ready for live use" not in out.err
    assert "the camera and the virtual camera were not checked (--no-devices)" in out.err
    assert "cameras:" not in out.out


def _default_line(out: str) -> str:
    (line,) = [ln for ln in out.splitlines() if "default backend:" in ln]
    return line


def test_the_default_weights_not_downloaded_are_needed_not_optional(capsys, no_rvm_weights):
    assert main(["doctor", "--no-devices"]) == 0  # the first run downloads them: nothing has failed
    out = capsys.readouterr()
    line = _default_line(out.out)
    assert line.startswith("[warn]") and "rvm (the default)" in line and "not downloaded yet" in line
    assert "optional" not in line and "optional" not in " ".join(ln for ln in out.out.splitlines() if "rvm" in ln)
    assert "fix: livebokeh models download rvm" in out.out
    assert "live use also waits until rvm's weights are downloaded" in out.err
    assert "ready for live use" not in out.err.replace("live use also waits", "")


@pytest.mark.parametrize("garbage", [b"", b"not an onnx file at all" * 40, b"\x08\x01" + bytes(3000)])
def test_garbage_default_weights_fail_and_are_never_ready(garbage, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "rvm.onnx"
    bad.write_bytes(garbage)
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(bad))
    for argv in (["doctor", "--no-devices"], ["doctor"]):
        assert main(argv) == 1
        out = capsys.readouterr()
        line = _default_line(out.out)
        assert line.startswith("[FAIL]") and f"LIVEBOKEH_RVM_WEIGHTS={bad} does not load" in line
        assert "fix: fix or unset LIVEBOKEH_RVM_WEIGHTS" in out.out
        assert out.err.strip() == "not ready for live use: fix the FAIL lines above"
        assert "Traceback" not in out.out + out.err


def test_default_weights_given_but_missing_fail(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(tmp_path / "gone.onnx"))
    assert main(["doctor", "--no-devices"]) == 1
    out = capsys.readouterr()
    assert _default_line(out.out).startswith("[FAIL]") and "does not exist; fix or unset it" in out.out
    assert "ready for live use" not in out.err.replace("not ready for live use", "")


def test_the_release_file_is_named_as_such(rvm_weights, capsys):
    assert main(["doctor", "--no-devices"]) == 0
    line = _default_line(capsys.readouterr().out)
    assert line.startswith("[ok  ]") and str(rvm_weights) in line and "the release file" in line


def test_valid_default_weights_named_by_the_variable_load(default_weights, monkeypatch, capsys):
    """The load check builds the backend as a run does (a broken check would fail every file)."""
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(default_weights))
    main(["doctor", "--no-devices"])
    line = _default_line(capsys.readouterr().out)
    assert line.startswith("[ok") and "does not load" not in line


def test_default_weights_whose_alpha_is_not_a_number_do_not_load(tmp_path, monkeypatch, capsys):
    """They load in ONNX Runtime but give NaN: the load check's probe says so (it said "it loads")."""
    from tests.segment.test_rvm import rvm_like

    bad = rvm_like(tmp_path / "rvm.onnx", "nan")
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(bad))
    assert main(["doctor", "--no-devices"]) == 1
    line = _default_line(capsys.readouterr().out)
    assert line.startswith("[FAIL]") and "does not load" in line and "not a number" in line


def test_a_run_with_weights_whose_alpha_is_not_a_number_stops_in_one_line(tmp_path, capsys):
    """Was a white picture and exit 0 (with --save-mask, a numpy warning)."""
    import cv2
    import numpy as np

    from tests.segment.test_rvm import rvm_like

    bad = rvm_like(tmp_path / "rvm.onnx", "nan")
    photo, out = tmp_path / "p.jpg", tmp_path / "o.jpg"
    cv2.imwrite(str(photo), np.full((48, 64, 3), 90, np.uint8))
    assert main(["--input", str(photo), "--output", str(out), "--save-mask", str(tmp_path / "m.png"),
                 "--backend", "rvm", "--rvm-weights", str(bad)]) == 1
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith("livebokeh: error: ") and "gave an alpha that is not a number" in line
    assert not out.exists() and not (tmp_path / "m.png").exists()
