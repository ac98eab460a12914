"""Media that broke promises, through the ``livebokeh`` command: tiny frames with every backend,
pictures whose header claims a huge size, animated images, sound that starts before the
picture, streams that change size or jump in time, truncated files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh.cli import main
from tests.conftest import REPO, probe_video, synthetic_frame
from tests.media import av_clip, flash_and_burst, sound_seconds, video_times


def run_cli(*args: str) -> tuple[int, str]:
    """The command in a fresh process: a crash (SIGSEGV) fails the test, not the test run."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "livebokeh", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    return proc.returncode, proc.stderr


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("livebokeh: error")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


def _clean(code: int, err: str) -> None:
    assert code == 0, err
    assert "Traceback" not in err and "internal error" not in err


# -- tiny frames -------------------------------------------------------------------------------

#: (w, h): 128x16 crashed (SIGSEGV in OpenCV's optical flow), 1000x16 was an internal error.
TINY = [(128, 16), (16, 16), (1000, 16), (16, 1000), (1, 1), (3, 7)]


def _tiny_inputs(folder: Path, size: tuple[int, int]) -> tuple[Path, Path]:
    """A textured picture and a 12-frame lossless video of ``size``."""
    import av

    w, h = size
    rng = np.random.default_rng(0)
    photo = folder / f"t{w}x{h}.png"
    cv2.imwrite(str(photo), rng.integers(0, 255, (h, w, 3), np.uint8))
    video = folder / f"t{w}x{h}.mkv"
    with av.open(str(video), "w") as c:
        s = c.add_stream("ffv1", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "bgr0"
        for i in range(12):
            f = av.VideoFrame.from_ndarray(np.roll(rng.integers(0, 255, (h, w, 3), np.uint8), i, axis=1), format="bgr24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return photo, video


def _tiny_runs(tmp_path, size, backend_args, extra=()):
    photo, video = _tiny_inputs(tmp_path, size)
    w, h = size
    for args in (
        ["--input", str(photo), "--output", str(tmp_path / "o.png"), "--save-mask", str(tmp_path / "m.png")],
        ["--input", str(video), "--output", str(tmp_path / "o.mp4"), "--save-mask", str(tmp_path / "m%03d.png"),
         "--alpha-output", str(tmp_path / "a.mkv"), "--framing", *extra],
    ):
        code, err = run_cli(*backend_args, *args, "--overwrite", "-q")
        _clean(code, err)
    assert cv2.imread(str(tmp_path / "o.png")).shape == (h, w, 3)
    out = probe_video(tmp_path / "o.mp4")
    assert out["frames"] == 12 and (out["width"], out["height"]) == (w + w % 2, h + h % 2)
    assert len(list(tmp_path.glob("m0*.png"))) == 12


@pytest.mark.parametrize("size", TINY)
def test_tiny_frames_with_mediapipe(tmp_path, size):
    _tiny_runs(tmp_path, size, ["--backend", "mediapipe"], extra=("--effect", "replace", "--background", "green"))


@pytest.mark.parametrize("size", [(128, 16), (1000, 16), (16, 1000), (1, 1)])
def test_tiny_frames_with_rvm(tmp_path, rvm_weights, size):
    _tiny_runs(tmp_path, size, ["--backend", "rvm", "--rvm-weights", str(rvm_weights)])


@pytest.mark.parametrize("size", [(128, 16), (1000, 16), (16, 1000), (1, 1)])
def test_tiny_frames_with_deeplab(tmp_path, deeplab_weights, size):
    _tiny_runs(tmp_path, size, ["--backend", "deeplab", "--deeplab-weights", str(deeplab_weights)],
               extra=("--quality", "best"))


# -- pictures whose header claims a huge size ----------------------------------------------------


@pytest.mark.parametrize("role", ["input", "background"])
def test_a_small_png_claiming_50000x50000_is_one_line(tmp_path, role):
    from tests.sources.test_imageinfo import _png_claiming

    big = _png_claiming(tmp_path / "big.png", 50000, 50000)
    small = tmp_path / "s.png"
    cv2.imwrite(str(small), np.full((24, 32, 3), 90, np.uint8))
    if role == "input":
        args = ["--input", str(big), "--output", str(tmp_path / "o.png")]
    else:
        args = ["--input", str(small), "--output", str(tmp_path / "o.png"), "--effect", "replace", "--background", str(big)]
    code, err = run_cli("--backend", "mediapipe", *args)
    assert code == 1
    line = error_line(err)
    assert "big.png is 50000x50000 (2500 MP)" in line and "scale it down" in line
    assert not (tmp_path / "o.png").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- animated images -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_an_animated_image_is_read_as_a_video(tmp_path, capsys, suffix):
    from tests.sources.test_animation import make_animation

    anim = make_animation(tmp_path / f"a{suffix}", levels=tuple(range(0, 240, 20)), delays=(100,) * 12, size=(64, 48))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    out = tmp_path / "o.mp4"
    assert main(["--input", str(anim), "--mask", str(mask), "--output", str(out), "-q"]) == 0
    times = video_times(out)
    assert len(times) == 12 and times == pytest.approx([i / 10 for i in range(12)], abs=1e-3)
    # an image output for it says why not
    assert main(["--input", str(anim), "--mask", str(mask), "--output", str(tmp_path / f"o{suffix}")]) == 2
    line = error_line(capsys.readouterr().err)
    assert "the input is an animated image, read as a video" in line and ".mp4" in line


def test_an_animated_background_plays_and_loops(tmp_path):
    from tests.sources.test_animation import make_animation

    bg = make_animation(tmp_path / "bg.webp", levels=(10, 120, 240), delays=(100, 100, 100), size=(64, 48))
    clip = av_clip(tmp_path / "in.mkv", seconds=7 / 30, size=(64, 48), audio_start=None)
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.zeros((48, 64), np.uint8))  # all background
    out = tmp_path / "o.mkv"
    assert main(["--input", str(clip), "--mask", str(mask), "--output", str(out), "--effect", "replace",
                 "--background", str(bg), "--crf", "0", "-q"]) == 0
    levels = [round(float(g.mean()) / 10) for g in probe_video(out)["gray"]]
    assert levels == [1, 12, 24, 1, 12, 24, 1]


def test_a_batch_names_an_animations_result_as_a_video(tmp_path):
    from tests.sources.test_animation import make_animation

    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    make_animation(tmp_path / "in" / "a.webp", size=(64, 48))
    cv2.imwrite(str(tmp_path / "in" / "b.png"), np.full((48, 64, 3), 90, np.uint8))
    code, err = run_cli("--backend", "mediapipe", "--input", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"))
    _clean(code, err)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_portrait.mp4", "b_portrait.png"]
    assert probe_video(tmp_path / "out" / "a_portrait.mp4")["frames"] == 5


# -- sound and picture, streams that change ------------------------------------------------------


@pytest.mark.parametrize("container", [".mkv", ".mp4", ".ts"])
@pytest.mark.parametrize(("video_start", "audio_start"), [(1.0, 0.0), (0.0, 1.0)])
def test_sound_stays_with_the_picture_through_the_command(tmp_path, container, video_start, audio_start):
    src = av_clip(tmp_path / f"in{container}", video_start=video_start, audio_start=audio_start, flash_at=2.2,
                  size=(64, 48))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))  # all person: the flash shows as it was
    out = tmp_path / "o.mp4"
    assert main(["--input", str(src), "--mask", str(mask), "--output", str(out), "-q"]) == 0
    (flash, burst), (got_flash, got_burst) = flash_and_burst(src), flash_and_burst(out)
    assert abs((got_burst - got_flash) - (burst - flash)) < 1 / 30 + 0.002
    assert len(video_times(out)) == 90
    # all of it: not cut by the second before the picture, nor (a late sound) after its last frame
    assert abs(sound_seconds(out) - sound_seconds(src)) < 0.05


def test_max_frames_ends_the_sound_with_the_last_picture(tmp_path):
    """The whole input keeps all its sound; a part of it (--max-frames) keeps the sound of that part."""
    src = av_clip(tmp_path / "in.mp4", seconds=2.0, audio_seconds=3.0, size=(64, 48))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    whole, part = tmp_path / "whole.mp4", tmp_path / "part.mp4"
    assert main(["--input", str(src), "--mask", str(mask), "--output", str(whole), "-q"]) == 0
    assert main(["--input", str(src), "--mask", str(mask), "--output", str(part), "--max-frames", "30", "-q"]) == 0
    assert abs(sound_seconds(whole) - 3.0) < 0.05
    assert len(video_times(part)) == 30 and abs(sound_seconds(part) - 1.0) < 0.05


@pytest.mark.parametrize("sizes", [((64, 48), (64, 48)), ((96, 96), (128, 72))])
def test_joined_mpeg_ts_is_one_clean_run(tmp_path, capsys, sizes):
    """Timestamps that jump back ended in 'finishing o.mp4 failed: Invalid argument'; a size
    change stopped at the join ('frame 128x72 differs from the video's 96x96')."""
    parts = [av_clip(tmp_path / f"p{i}.ts", seconds=s, size=size, audio_start=0.0, pattern=True)
             for i, (s, size) in enumerate(zip((2.0, 3.0), sizes))]
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full(sizes[0][::-1], 255, np.uint8))
    out = tmp_path / "o.mp4"
    assert main(["--input", str(joined), "--mask", str(mask), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "error" not in err
    assert err.count("changes size") == (1 if sizes[0] != sizes[1] else 0)
    times = video_times(out)
    assert len(times) == 150 and (np.diff(times) > 0).all() and abs(times[-1] - times[0] - 149 / 30) < 0.1
    assert abs(sound_seconds(out) - 5.0) < 0.1
    assert {(probe_video(out)["width"], probe_video(out)["height"])} == {sizes[0]}


def test_a_truncated_mp4_keeps_every_decodable_frame(tmp_path, capsys):
    """FFmpeg's own command decodes two frames more than livebokeh kept (the decoder's held
    B-frames, never flushed): now the partial holds every frame whose data is whole."""
    from tests.sources.test_decoding import _complete_packets

    fast = av_clip(tmp_path / "full.mp4", seconds=4, size=(96, 64), pattern=True, audio_start=0.0,
                   options={"movflags": "+faststart"})  # the index first: a cut file still opens
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 10])
    whole = _complete_packets(cut)
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((64, 96), 255, np.uint8))
    assert main(["--input", str(cut), "--mask", str(mask), "--output", str(tmp_path / "o.mp4")]) == 1
    assert "truncated" in error_line(capsys.readouterr().err)
    assert probe_video(tmp_path / "o.partial.mp4")["frames"] == whole >= 20


# -- native libraries' own lines, a closed pipe ----------------------------------------------------


def _damaged_png(path: Path) -> Path:
    _, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    path.write_bytes(data.tobytes()[: len(data) * 9 // 10])  # cut in its image data: libpng says so itself
    return path


def _damaged_webp(path: Path) -> Path:
    from tests.sources.test_animation import make_animation

    make_animation(path, levels=tuple(range(0, 240, 20)), delays=(100,) * 12, size=(64, 48))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


@pytest.mark.parametrize("role", ["input", "background"])
def test_a_jpeg_with_damaged_data_is_said_to_be_damaged(tmp_path, role):
    """libjpeg decodes damaged data as far as it goes and warns; the warning was kept for --debug,
    so a grey or shifted picture was taken silently. Said in one line, the run goes on (exit 0),
    as a damaged packet of a video is."""
    ok, buf = cv2.imencode(".jpg", synthetic_frame(0))
    data = bytes(buf)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(data[:-2] + b"\x00" * 88 + data[-2:])  # bytes where the end marker should be
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((120, 160, 3), 90, np.uint8))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((120, 160), 255, np.uint8))
    args = {"input": ["--input", str(bad), "--mask", str(mask)],
            "background": ["--input", str(good), "--mask", str(mask), "--effect", "replace", "--background", str(bad)]}
    code, err = run_cli(*args[role], "--output", str(tmp_path / "o.png"))
    said = [ln for ln in err.splitlines() if "is damaged" in ln]
    assert code == 0 and len(said) == 1 and "Corrupt JPEG data" in said[0] and str(bad) in said[0], err
    assert not [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("livebokeh")], err  # no native lines


def test_only_a_pictures_data_counts_as_damage_not_its_metadata():
    from livebokeh.sources.image import DAMAGE

    for line in ("Corrupt JPEG data: premature end of data segment", "libpng warning: IDAT: invalid distance too far back",
                 "libpng warning: Too much image data"):
        assert DAMAGE.search(line), line
    for line in ("libpng warning: tIME: CRC error", "libpng warning: iCCP: profile 'x': 0h: length too short",
                 "libpng warning: gAMA: invalid"):  # a whole picture with a malformed metadata chunk
        assert not DAMAGE.search(line), line


@pytest.mark.parametrize("damaged", [_damaged_png, _damaged_webp])
@pytest.mark.parametrize("role", ["input", "background", "mask"])
def test_a_damaged_picture_is_one_line_without_native_lines(tmp_path, damaged, role):
    """'libpng error: ...' and OpenCV's '[ERROR:0@...] ... grfmt_webp.cpp' blocks were printed
    beside livebokeh's own line."""
    bad = damaged(tmp_path / ("bad.png" if damaged is _damaged_png else "bad.webp"))
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((48, 64, 3), 90, np.uint8))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    args = {"input": ["--input", str(bad), "--mask", str(mask)],
            "background": ["--input", str(good), "--mask", str(mask), "--effect", "replace", "--background", str(bad)],
            "mask": ["--input", str(good), "--mask", str(bad)]}[role]
    out = tmp_path / ("o.mp4" if role == "input" and damaged is _damaged_webp else "o.png")
    code, err = run_cli(*args, "--output", str(out))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert not [ln for ln in lines if not ln.startswith("livebokeh: ")], err  # no native library's lines
    if role == "input" and damaged is _damaged_webp:  # its frames before the cut are kept, and said so
        partial = tmp_path / "o.partial.mp4"
        kept = f"livebokeh: kept the {probe_video(partial)['frames']} frames written so far in {partial}"
        assert code == 1 and lines[-2:] == [kept, error_line(err)], err
        assert "truncated" in lines[-1] and probe_video(partial)["frames"] >= 5
    elif role == "background" and damaged is _damaged_webp:  # its first frame is whole: the background
        assert code == 0 and cv2.imread(str(out)) is not None, err
    else:  # livebokeh's one line only
        assert code == 1 and lines == [error_line(err)], err


@pytest.mark.parametrize("closed", [(2,), (0, 1, 2)])
def test_a_run_with_its_standard_streams_closed_works(tmp_path, closed, selfie_models):
    """``livebokeh ... 2>&-`` (launchers and cron wrappers do it): 'internal error: AttributeError:
    'NoneType' object has no attribute 'isatty'', nothing written. The closed streams are the null
    device, so the next file opened does not become fd 2 either."""
    import av

    src = tmp_path / "in.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(6):
            for p in s.encode(av.VideoFrame.from_ndarray(synthetic_frame(i), format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "o.mp4"
    closing = " ".join(f"{fd}>&-" if fd else "<&-" for fd in closed)  # the shell closes them (no fork of ours)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(["sh", "-c", f'exec "$@" {closing}', "sh", sys.executable, "-m", "livebokeh",
                           "-i", str(src), "-o", str(out), "--backend", "mediapipe"], env=env, timeout=300, check=False)
    assert proc.returncode == 0
    assert probe_video(out)["frames"] == 6


def test_control_characters_in_file_names_never_reach_the_terminal(tmp_path, selfie_models):
    """A folder of someone else's pictures, one named ``z<ESC>[2J.jpg`` (clear the screen), or an
    input named with an OSC title sequence: printed as text (``\\x1b``), never as the terminal's commands."""
    (tmp_path / "in").mkdir(), (tmp_path / "out").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.jpg"), synthetic_frame(0))
    (tmp_path / "in" / "z\x1b[2J.jpg").write_bytes(b"not a picture")
    code, err = run_cli("--backend", "mediapipe", "-i", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out"))
    assert code == 1 and "\x1b" not in err and "z\\x1b[2J.jpg" in err, err
    code, err = run_cli("--backend", "mediapipe", "-i", str(tmp_path / "nope\x1b]0;pwned\x07.jpg"), "-o",
                        str(tmp_path / "o.jpg"))
    assert code == 1 and "\x1b" not in err and "\x07" not in err and "nope\\x1b]0;pwned\\x07.jpg" in error_line(err)


@pytest.mark.parametrize("command", [["bench", "render", "--data"], ["models", "download", "rvm", "--url"]])
def test_the_commands_log_lines_escape_control_characters_too(tmp_path, command):
    """`bench` and `models download` set up their own logging: a name with ESC in it was printed raw."""
    name = str(tmp_path / "d\x1b[2J")
    env = {k: v for k, v in os.environ.items() if k != "LIVEBOKEH_RVM_WEIGHTS"}  # else nothing is downloaded
    proc = subprocess.run([sys.executable, "-m", "livebokeh", *command,
                           name if command[0] == "bench" else f"http://127.0.0.1:9/{name}"],
                          capture_output=True, text=True, timeout=300, check=False, env=dict(env, PYTHONPATH=str(REPO)))
    said = proc.stdout + proc.stderr  # a bench's report on stdout, the log lines on stderr
    assert "\x1b" not in said and "\\x1b[2J" in said, said


@pytest.mark.parametrize("command", [[], ["doctor"], ["ctl"], ["models"], ["service"], ["bench"]])
def test_every_commands_argument_errors_are_one_escaped_line(command):
    code, err = run_cli(*command, "--q\x1b]0;t\x07z")
    prog = " ".join(["livebokeh", *command])
    assert code == 2 and "\x1b" not in err and err.startswith(f"{prog}: error: ") and err.count("\n") == 1, err


def test_a_log_line_cannot_be_split_by_a_name_holding_a_line_break():
    import logging

    from livebokeh.errors import PrintableFormatter

    record = logging.LogRecord("livebokeh", logging.INFO, __file__, 1, "%s: 160x120", ("a\nlivebokeh: wrote 9 frames",),
                               None)
    assert PrintableFormatter("livebokeh: %(message)s").format(record) == \
        "livebokeh: a\\x0alivebokeh: wrote 9 frames: 160x120"


def test_what_a_command_prints_holds_no_raw_control_characters(tmp_path):
    """`ctl list` printed the name of the clip played as a camera, `models list` and `doctor` the
    model folder, as they were: a name someone else chose could set the terminal's title."""
    folder = tmp_path / "m\x1b]0;pwned\x07d"
    env = dict(os.environ, PYTHONPATH=str(REPO), LIVEBOKEH_MODEL_DIR=str(folder))
    for args in (["models", "list"], ["doctor", "--no-devices"]):
        proc = subprocess.run([sys.executable, "-m", "livebokeh", *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)
        assert "\x1b" not in proc.stdout + proc.stderr and "m\\x1b]0;pwned\\x07d" in proc.stdout, proc.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
@pytest.mark.parametrize("args", [["--print-config"], ["doctor", "--no-devices"], ["models", "list"],
                                  ["models", "path", "rvm"], ["--help"], ["--version"], ["ctl", "--help"]])
@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"])
def test_output_that_cannot_be_written_is_one_line(args, redirect):
    """`--print-config > my.toml` on a full disk printed a traceback (doctor) or an internal
    error; with standard output closed the command said nothing and exited 0."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "livebokeh", *args],
                          env=env, capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    why = "No space left on device" if "full" in redirect else "it is closed"
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("livebokeh")]
    said = (f"livebokeh: error: cannot write to standard output ({why}); what was not printed is lost: send it to a "
            "file or pipe that can take it (on a full disk, free some space)")
    assert proc.returncode == 1 and lines == [said], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["models", "list"], ["--print-config"]])
def test_a_closed_pipe_ends_the_command_quietly(args):
    """`livebokeh models list | head` said 'livebokeh: error: [Errno 32] Broken pipe'."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        proc = subprocess.run([sys.executable, "-m", "livebokeh", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, env=env, timeout=120, check=False)
    finally:
        os.close(write)
    assert proc.stderr == ""
    assert proc.returncode == 141  # as a command that SIGPIPE ends


def test_a_damaged_packet_midway_keeps_every_frame_after_it(tmp_path, capsys):
    """A packet the decoder refuses stopped the run there ('ends after 25 frames ... truncated');
    FFmpeg decodes on. The run completes with every other frame and says once that the file is
    corrupt there."""
    from tests.sources.test_decoding import damage_packets

    src = damage_packets(av_clip(tmp_path / "in.mp4", seconds=3, size=(64, 48), pattern=True), [25])
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    out = tmp_path / "o.mp4"
    assert main(["--input", str(src), "--mask", str(mask), "--output", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("corrupt") == 1 and "truncated" not in err and "error" not in err, err
    assert 88 <= len(video_times(out)) <= 89 and abs(sound_seconds(out) - sound_seconds(src)) < 0.05
