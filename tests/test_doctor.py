from livebokeh.cli import main


def test_doctor_reports_each_check_with_a_fix(capsys):
    code = main(["doctor"])
    out = capsys.readouterr()
    assert "[ok  ] packages: Python" in out.out and "models: mediapipe selfie models" in out.out
    assert "cameras:" in out.out and "virtual camera:" in out.out
    failed = "[FAIL]" in out.out
    assert code == (1 if failed else 0)
    if failed:  # e.g. CI: neither a webcam nor v4l2loopback
        assert "fix:" in out.out and "not ready for live use" in out.err


def test_doctor_without_devices_checks_the_rest(capsys):
    assert main(["doctor", "--no-devices"]) == 0
    assert "ready for live use" in capsys.readouterr().err
