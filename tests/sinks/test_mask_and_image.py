from fractions import Fraction

import cv2
import numpy as np
import pytest

from livebokeh.errors import ConfigError, SinkError
from livebokeh.sinks import ImageFileSink, MaskSink
from livebokeh.sinks.files import is_pattern
from livebokeh.types import Composite, Frame, Mask, StreamInfo


def _item(i, w=32, h=24):
    img = np.full((h, w, 3), i, np.uint8)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, : w // 2] = 1.0
    alpha[0, 0] = 0.5
    return Composite(Frame(img, i, 0), img.copy(), Mask(alpha))


VIDEO = StreamInfo("v", 32, 24, Fraction(30), live=False, frame_count=3)
STILL = StreamInfo("s", 32, 24, Fraction(1), live=False, frame_count=1, still=True)


def test_pattern_writes_one_png_per_frame_numbered_from_1(tmp_path):
    sink = MaskSink(tmp_path / "m_%04d.png", VIDEO)
    for i in range(3):
        sink.write(_item(i))
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["m_0001.png", "m_0002.png", "m_0003.png"]  # frame 0 is the first: 1, as FFmpeg counts
    m = cv2.imread(str(tmp_path / "m_0002.png"), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint8 and m.ndim == 2
    assert m[5, 0] == 255 and m[5, -1] == 0 and m[0, 0] == 128


def test_still_mask_and_image(tmp_path):
    MaskSink(tmp_path / "m.png", STILL).write(_item(0))
    assert cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED).shape == (24, 32)
    s = ImageFileSink(tmp_path / "o.jpg")
    s.write(_item(7))
    assert cv2.imread(str(tmp_path / "o.jpg")).shape == (24, 32, 3)
    with pytest.raises(SinkError, match="single image"):
        s.write(_item(8))


def test_bad_mask_paths(tmp_path):
    for bad in ("m%s.png", "m%d_%d.png", "m%i.png", "%05d/m.png", "100%_%d.png", "m%d%.png"):
        with pytest.raises(ConfigError, match="not a valid pattern; put one %d or %05d in the file name"):
            MaskSink(tmp_path / bad, VIDEO)
    with pytest.raises(ConfigError, match="is not one of the images it can write; use .bmp"):
        MaskSink(tmp_path / "m.txt", STILL)
    with pytest.raises(ConfigError, match=r"\.ppm is not one of the images it can write"):  # no gray PPM
        MaskSink(tmp_path / "%05d.ppm", VIDEO)
    assert is_pattern("a/%05d.png") and not is_pattern("a/b.png") and not is_pattern("100%.png") and not is_pattern("a%%b.png")


def test_alpha_output_stores_the_persons_own_colours(tmp_path):
    """The colour channels of --alpha-output hold the person's colours at its soft edge, not the
    old background's: over a new background the edge shows no rim (with unmix off: the frame)."""
    from livebokeh.sinks.video import AlphaVideoSink

    h, w = 48, 64
    fg, green = np.array([40, 60, 200], np.float32), np.array([0, 255, 0], np.float32)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, 20:] = np.clip(np.linspace(0.0, 2.0, w - 20), 0, 1)  # a ramp from background to person
    frame = np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * green).astype(np.uint8)
    item = Composite(Frame(frame, 0, 0), frame.copy(), Mask(alpha))
    for unmix, name in ((True, "u_%d.png"), (False, "f_%d.png")):
        sink = AlphaVideoSink(tmp_path / name, VIDEO, unmix=unmix)
        sink.write(item)
        sink.close()
    unmixed = cv2.imread(str(tmp_path / "u_1.png"), cv2.IMREAD_UNCHANGED)
    as_captured = cv2.imread(str(tmp_path / "f_1.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(unmixed[..., 3], as_captured[..., 3])
    np.testing.assert_array_equal(as_captured[..., :3], frame)
    ramp = (alpha > 0.1) & (alpha < 0.9)
    err, err_frame = np.abs(unmixed[..., :3][ramp] - fg), np.abs(frame[ramp] - fg)
    assert err.mean() < 0.05 * err_frame.mean()
    assert err[alpha[ramp] > 0.3].max() <= 4  # 8-bit rounding of the mixture, divided by the alpha
    whole = (alpha == 0) | (alpha == 1)
    np.testing.assert_array_equal(unmixed[..., :3][whole], frame[whole])


# -- patterns: never a file another program wrote, never two runs at once -----------------------


def _pattern_sink(kind, path, overwrite=False):
    from livebokeh.sinks.video import AlphaVideoSink

    return MaskSink(path, VIDEO, overwrite=overwrite) if kind == "mask" else AlphaVideoSink(path, VIDEO, overwrite=overwrite)


@pytest.mark.parametrize("kind", ["mask", "alpha"])
def test_a_patterns_file_that_appears_during_the_run_is_kept(tmp_path, kind):
    """Another program writes the third frame's name (00003.png) after the run started: without
    overwrite its file stays, this run's image goes to a partial name, and the write says so."""
    sink = _pattern_sink(kind, tmp_path / "%05d.png")
    sink.write(_item(0))
    sink.write(_item(1))
    (tmp_path / "00003.png").write_bytes(b"the other program's")
    with pytest.raises(SinkError, match=r"00003.png appeared during the run .* this run's result is in .*00003.partial.png"):
        sink.write(_item(2))
    sink.close()
    assert (tmp_path / "00003.png").read_bytes() == b"the other program's"
    assert cv2.imread(str(tmp_path / "00003.partial.png"), cv2.IMREAD_UNCHANGED) is not None
    assert cv2.imread(str(tmp_path / "00002.png"), cv2.IMREAD_UNCHANGED) is not None


@pytest.mark.parametrize("kind", ["mask", "alpha"])
def test_with_overwrite_a_patterns_file_is_replaced(tmp_path, kind):
    sink = _pattern_sink(kind, tmp_path / "%05d.png", overwrite=True)
    (tmp_path / "00001.png").write_bytes(b"an older run's")
    sink.write(_item(0))
    sink.close()
    assert cv2.imread(str(tmp_path / "00001.png"), cv2.IMREAD_UNCHANGED) is not None
    assert not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize(("first", "second"), [
    ("%05d.png", "%05d.png"),  # the same pattern
    ("%05d.png", "%d.png"),  # 12345.png from frame 12345 on
    ("a%d.png", "a1%d.png"),  # a10.png from frame 0 / frame 10 on
    ("m%04d.png", "m%05d.png"),  # m10000.png
])
def test_two_sinks_on_names_that_meet_are_refused_while_the_first_runs(tmp_path, first, second):
    a = _pattern_sink("mask", tmp_path / first)
    with pytest.raises(SinkError, match=r"another livebokeh run \(process \d+\) is writing .*wait for it to end or "
                                        r"choose another name") as info:
        _pattern_sink("alpha", tmp_path / second, overwrite=True)  # --overwrite does not make it right
    assert "\n" not in str(info.value)
    a.close()
    b = _pattern_sink("alpha", tmp_path / second)  # the first has ended: free
    b.close()
    assert not list(tmp_path.glob(".*livebokeh-claim"))  # the claims are gone with their runs


def test_patterns_that_never_meet_run_side_by_side(tmp_path):
    (tmp_path / "other").mkdir()
    sinks = [_pattern_sink("mask", tmp_path / "m%05d.png"), _pattern_sink("alpha", tmp_path / "a%05d.png"),
             _pattern_sink("mask", tmp_path / "other" / "m%05d.png")]
    for s in sinks:
        s.write(_item(0))
        s.close()
    assert {p.name for p in tmp_path.rglob("*.png")} == {"m00001.png", "a00001.png"}
    assert len(list(tmp_path.rglob("*.png"))) == 3


def _claimed_elsewhere(pattern):
    """A second process that claims ``pattern`` and holds it until its standard input closes."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys, pathlib; from livebokeh.sinks.files import claim_pattern;"
            f"c = claim_pattern('--save-mask', pathlib.Path({str(pattern)!r})); print('held', flush=True);"
            "sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_claim_held_by_another_process_refuses_and_a_killed_ones_is_taken_over(tmp_path):
    """The claim is a lock a real second process holds; once that process is killed, its claim
    file (left behind) no longer counts."""
    import signal

    child = _claimed_elsewhere(tmp_path / "%05d.png")
    try:
        with pytest.raises(SinkError, match=rf"another livebokeh run \(process {child.pid}\) is writing these files"):
            _pattern_sink("mask", tmp_path / "%05d.png")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert list(tmp_path.glob(".*livebokeh-claim"))  # a killed run leaves its claim file
    sink = _pattern_sink("mask", tmp_path / "%05d.png")
    sink.write(_item(0))
    sink.close()
    assert (tmp_path / "00001.png").is_file() and not list(tmp_path.glob(".*livebokeh-claim"))


def test_one_file_a_live_runs_pattern_will_give_is_refused(tmp_path):
    """``ctl snapshot lm/00600.png`` (or another run's ``-o``) while a run writes ``lm/%05d.png``:
    the run would find that file at frame 600 and stop. Refused at once, names the run."""
    from livebokeh.sinks.files import Output, check_outputs

    child = _claimed_elsewhere(tmp_path / "%05d.png")
    try:
        for name in ("00600.png", "123456.png"):
            with pytest.raises(SinkError, match=rf"run of process {child.pid} is writing .*%05d.png, which gives this name"):
                check_outputs([Output.of("snapshot", tmp_path / name)], [], overwrite=True)
        for name in ("0600.png", "00600.jpg", "x00600.png"):  # names the pattern does not give
            check_outputs([Output.of("snapshot", tmp_path / name)], [], overwrite=False)
    finally:
        child.stdin.close()
        child.wait()
    check_outputs([Output.of("snapshot", tmp_path / "00600.png")], [], overwrite=False)  # the run has ended


def test_one_file_another_live_run_writes_is_refused(tmp_path):
    """A second run's ``-o same.mkv`` while a live run records to same.mkv: the live run's
    recording then ended as a partial, exit 1, blamed on 'another program'. Refused at once."""
    import os
    import signal
    import subprocess
    import sys

    from livebokeh.sinks.files import Output, check_outputs
    from tests.conftest import REPO

    target = tmp_path / "same.mkv"
    code = ("import sys, pathlib; from livebokeh.sinks.files import create_locked, temp_path;"
            f"fd = create_locked(temp_path(pathlib.Path({str(target)!r}))); print('held', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert child.stdout.readline().strip() == "held"
        for overwrite in (False, True):
            with pytest.raises(SinkError, match=rf"--output {target}: another livebokeh run \(process {child.pid}\) "
                                                r"is writing it now"):
                check_outputs([Output.of("--output", target)], [], overwrite=overwrite)
        check_outputs([Output.of("--output", tmp_path / "other.mkv")], [], overwrite=False)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    check_outputs([Output.of("--output", target)], [], overwrite=False)  # a killed writer's file is no live run


def test_no_writer_replaces_files_unless_asked():
    """Every sink and writer that takes ``overwrite`` refuses to replace by default (or has no
    default at all): a caller that forgets the run's flag never replaces a user's file."""
    import inspect

    from livebokeh.pipeline.stats import Report
    from livebokeh.sinks import SINKS, VideoWriter
    from livebokeh.sinks.files import publish, write_bytes, write_json
    from livebokeh.sinks.image import ImageSequence, write_image

    checked = []
    for fn in [*(SINKS.get(n) for n in SINKS.names()), VideoWriter, ImageSequence, write_image, write_bytes,
               write_json, publish, Report.write_json]:
        param = inspect.signature(fn).parameters.get("overwrite")
        if param is not None:
            checked.append(fn)
            assert param.default in (False, inspect.Parameter.empty), fn
    assert len(checked) >= 9


def test_overwrite_removes_an_earlier_runs_numbered_files(tmp_path):
    """With --overwrite a pattern's files are this run's once it went through: a frame it does not
    write (dropped live) has no file left from before; a file changed during the run stays."""
    for name in ("m_0001.png", "m_0002.png", "m_0003.png", "m_0004.png", "other.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4), np.uint8))
    sink = MaskSink(tmp_path / "m_%04d.png", VIDEO, overwrite=True)
    sink.write(_item(0))
    sink.write(_item(2))  # frame 1 was dropped
    (tmp_path / "m_0004.png").write_bytes(b"written by another program during the run")
    sink.mark_complete()
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_0001.png", "m_0003.png", "m_0004.png", "other.png"]


@pytest.mark.parametrize("kind", ["mask", "alpha"])
def test_a_run_that_does_not_go_through_removes_no_earlier_file(tmp_path, kind):
    """--overwrite on a pattern: a run that fails or is stopped leaves the earlier run's files it
    did not replace (an old file is replaced only by a whole new one), and one opened but never
    written (the model failed to load) leaves every one."""
    old = {f"{i:05d}.png": np.full((4, 4), 10 * i, np.uint8) for i in range(1, 6)}
    for name, img in old.items():
        cv2.imwrite(str(tmp_path / name), img)
    _pattern_sink(kind, tmp_path / "%05d.png", overwrite=True).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(old)
    sink = _pattern_sink(kind, tmp_path / "%05d.png", overwrite=True)
    sink.write(_item(0))  # stopped after one frame
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(old)
    for name in list(old)[1:]:
        assert np.array_equal(cv2.imread(str(tmp_path / name), cv2.IMREAD_GRAYSCALE), old[name])


@pytest.mark.parametrize("flag", ["--output", "--save-mask", "--alpha-output"])
def test_every_image_ending_offered_for_writing_can_be_written(flag):
    """The endings an image output takes (and lists in its error) are those OpenCV here encodes
    for that kind of picture, at a small size and a larger one: no .exr (no encoder in the
    wheels), no gray .ppm, no .jp2."""
    from livebokeh.sources.base import IMAGE_WRITE_SUFFIXES

    channels = {"--output": 3, "--save-mask": 1, "--alpha-output": 4}[flag]
    for suffix in sorted(IMAGE_WRITE_SUFFIXES[flag]):
        for h, w in [(1, 1), (3, 2), (48, 64)]:
            image = np.zeros((h, w) if channels == 1 else (h, w, channels), np.uint8)
            ok, data = cv2.imencode(suffix, image)
            assert ok and data.size, (suffix, h, w)
            assert cv2.imdecode(data, cv2.IMREAD_UNCHANGED).shape[:2] == (h, w)


def test_a_link_at_a_files_temporary_name_is_never_written_through(tmp_path):
    """`write_bytes` (snapshots, 'keep as defaults', the service's default settings, uploads, image
    outputs) opened its temporary name with O_TRUNC, following a link planted there: the link's
    target was overwritten and the result published as that link. It is made new instead; a
    recording's temporary file too."""
    from fractions import Fraction as F

    from livebokeh.sinks import VideoWriter
    from livebokeh.sinks.files import temp_path, write_bytes

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "snap.png"
    temp_path(out).symlink_to(victim)
    assert write_bytes(out, b"picture", overwrite=False) == out
    assert victim.read_text() == "precious" and not out.is_symlink() and out.read_bytes() == b"picture"
    video = tmp_path / "rec.mkv"
    temp_path(video).symlink_to(victim)
    w = VideoWriter(video, 32, 24, F(25))
    w.write(np.zeros((24, 32, 3), np.uint8))
    w.close()
    assert victim.read_text() == "precious" and not video.is_symlink() and video.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mkv", "snap.png", "victim.txt"]



def test_a_read_only_folder_is_one_line_not_an_internal_error(tmp_path, monkeypatch):
    """On a read-only file system the clean-up's unlink failed too (EROFS), and that OSError escaped
    as an 'internal error' (keep as defaults: HTTP 500; ctl set render.background: exit 2)."""
    import errno
    import os

    from livebokeh.sinks import files

    def refused(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "open", refused)
    monkeypatch.setattr(files.Path, "unlink", refused)
    with pytest.raises(SinkError, match="cannot write .*Read-only file system"):
        files.write_bytes(tmp_path / "settings.toml", b"x", overwrite=True)
