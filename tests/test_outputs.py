"""Nothing the user owns is lost: one output policy for every path a run writes, checked before
the first frame, and what each fault leaves on disk. Through the ``livebokeh`` command in-process;
most runs render with a given mask (``--mask``) so that no model is loaded."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh.cli import main
from livebokeh.sinks import VideoWriter
from tests.conftest import probe_video, until


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("livebokeh: error")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def video(tmp_path) -> Path:
    """A 12-frame 64x48 clip of our own."""
    path = tmp_path / "in.mp4"
    w = VideoWriter(path, 64, 48, Fraction(25))
    for i in range(12):
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.close()
    return path


@pytest.fixture
def mask(tmp_path) -> Path:
    path = tmp_path / "m.png"
    m = np.zeros((48, 64), np.uint8)
    m[10:40, 20:44] = 255
    cv2.imwrite(str(path), m)
    return path


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "p.jpg"
    cv2.imwrite(str(path), np.full((48, 64, 3), 90, np.uint8))
    return path


# -- every side output follows the policy --------------------------------------------------------


@pytest.mark.parametrize("flag", ["--stats-json", "--save-mask", "--alpha-output"])
def test_no_output_may_name_the_input(mask, tmp_path, capsys, flag):
    video = tmp_path / "in.mkv"  # an ending every one of these outputs can take
    w = VideoWriter(video, 64, 48, Fraction(25))
    for i in range(4):
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.close()
    before = _tree(tmp_path)
    args = ["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"), flag, str(video)]
    assert main(args + ["--overwrite"]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert _tree(tmp_path) == before


def test_no_output_may_name_a_hard_link_of_the_input(video, mask, tmp_path, capsys):
    os.link(video, tmp_path / "link.mp4")
    before = _tree(tmp_path)
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "link.mp4"), "--overwrite"]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(("flag", "name"), [
    ("--save-mask", "o.mp4"), ("--alpha-output", "o.mkv"), ("--stats-json", "o.mp4"), ("--save-mask", "o.mkv"),
])
def test_two_outputs_of_one_run_never_share_a_path(video, mask, tmp_path, capsys, flag, name):
    out = "o.mkv" if name == "o.mkv" and flag == "--save-mask" else "o.mp4"
    args = ["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / out), flag, str(tmp_path / name)]
    if flag == "--alpha-output" and name == "o.mkv":
        args[args.index("--output") + 1] = str(tmp_path / "o.mkv")
    assert main(args) == 2
    assert "name the same file" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mkv").exists()


def test_an_image_and_its_mask_never_share_a_path(photo, mask, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["--input", str(photo), "--mask", str(mask), "--output", str(out), "--save-mask", str(out)]) == 2
    assert "name the same file" in error_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output", "--stats-json"])
def test_existing_side_outputs_are_kept_unless_overwrite(video, mask, tmp_path, capsys, flag):
    name = {"--save-mask": "m.mkv", "--alpha-output": "a.mkv", "--stats-json": "s.json"}[flag]
    side = tmp_path / name
    side.write_bytes(b"precious")
    args = ["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"), flag, str(side), "-q"]
    assert main(args) == 2
    assert "exists; pass --overwrite" in error_line(capsys.readouterr().err)
    assert side.read_bytes() == b"precious" and not (tmp_path / "o.mp4").exists()
    assert main(args + ["--overwrite"]) == 0
    assert side.read_bytes() != b"precious"


def test_an_existing_mask_pattern_is_kept_unless_overwrite(video, mask, tmp_path, capsys):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "00003.png").write_bytes(b"precious")
    args = ["--input", str(video), "--mask", str(mask), "--save-mask", str(tmp_path / "masks" / "%05d.png"), "-q"]
    assert main(args) == 2
    assert "masks/00003.png exists (1 files match %05d.png); pass --overwrite" in error_line(capsys.readouterr().err)
    assert (tmp_path / "masks" / "00003.png").read_bytes() == b"precious"
    assert main(args + ["--overwrite"]) == 0
    assert len(list((tmp_path / "masks").glob("*.png"))) == 12


@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_patterns_file_another_program_writes_during_the_run_is_kept(video, mask, tmp_path, capsys, monkeypatch,
                                                                     flag, overwrite):
    """Frame 6's name is written by another program while frame 3 is read: without --overwrite
    its file is kept, this run's image goes to a partial name and the run says so (exit 1); with
    --overwrite the run replaces it, as asked."""
    from livebokeh.sources.video import VideoFileSource

    (tmp_path / "seq").mkdir()
    theirs = tmp_path / "seq" / "00006.png"
    real_read = VideoFileSource.read

    def read(self):
        frame = real_read(self)
        if frame is not None and frame.index == 3:
            theirs.write_bytes(b"the other program's")
        return frame

    monkeypatch.setattr(VideoFileSource, "read", read)
    args = ["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
            flag, str(tmp_path / "seq" / "%05d.png"), "-q"]
    code = main(args + (["--overwrite"] if overwrite else []))
    if overwrite:
        assert code == 0
        assert cv2.imread(str(theirs)) is not None and len(list((tmp_path / "seq").glob("*.png"))) == 12
        return
    assert code == 1
    line = error_line(capsys.readouterr().err)
    assert "00006.png appeared during the run (another program wrote it) and was kept" in line
    assert theirs.read_bytes() == b"the other program's"
    assert cv2.imread(str(tmp_path / "seq" / "00006.partial.png")) is not None
    assert probe_video(tmp_path / "o.partial.mp4")["frames"] >= 6  # the video is kept as a partial, not lost
    assert not (tmp_path / "o.mp4").exists()


_HOLDING_RUN = """
import sys
from livebokeh.cli import main
from livebokeh.sources.video import VideoFileSource

real_read = VideoFileSource.read

def read(self):
    frame = real_read(self)
    if frame is not None and frame.index == 2:
        print("running", flush=True)
        sys.stdin.readline()  # holds the run here until the test says go on
    return frame

VideoFileSource.read = read
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("flag", "first", "second"), [
    ("--save-mask", "%05d.png", "%05d.png"),
    ("--alpha-output", "%05d.png", "%d.png"),  # another spelling whose names meet the first's
])
def test_two_runs_writing_one_pattern_at_once_never_interleave(video, mask, tmp_path, capsys, flag, first, second):
    """A second run on the pattern a live run is writing is refused with one line (exit 1) and
    writes nothing; the first goes on and writes every frame."""
    import subprocess
    import sys

    from tests.conftest import REPO

    (tmp_path / "seq").mkdir()
    first_run = subprocess.Popen(
        [sys.executable, "-c", _HOLDING_RUN, "--input", str(video), "--mask", str(mask), "-q",
         "--output", str(tmp_path / "a.mp4"), flag, str(tmp_path / "seq" / first)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert first_run.stdout.readline().strip() == "running"
        lines = []
        for overwrite in ([], ["--overwrite"]):  # its files exist: the run, not --overwrite, is what is said
            code = main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "b.mp4"),
                         flag, str(tmp_path / "seq" / second), "-q", *overwrite])
            lines.append((code, error_line(capsys.readouterr().err)))
    finally:
        out, err = first_run.communicate("go on\n", timeout=120)
    for code, line in lines:
        assert code == 1
        assert f"another livebokeh run (process {first_run.pid}) is writing" in line and "choose another name" in line
    assert first_run.returncode == 0, err
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [f"{i:05d}.png" for i in range(1, 13)]
    assert not (tmp_path / "b.mp4").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_output_that_is_not_a_regular_file_is_refused(video, mask, tmp_path, capsys):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--stats-json", str(fifo), "--overwrite"]) == 2
    assert "is not a regular file" in error_line(capsys.readouterr().err)


def test_side_outputs_are_checked_before_the_first_frame(video, mask, tmp_path, capsys):
    for args, message in [
        (["--stats-json", str(tmp_path / "no" / "s.json")], "folder"),
        (["--alpha-output", str(tmp_path / "no" / "%05d.png")], "does not exist; create it first"),
        (["--alpha-output", str(tmp_path / "%03d.jpg")], "is not one of the images with transparency it can write"),
    ]:
        out = tmp_path / "o.mp4"
        assert main(["--input", str(video), "--mask", str(mask), "--output", str(out), *args]) == 2, args
        assert message in error_line(capsys.readouterr().err)
        assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_a_folder_at_a_patterns_name_is_called_a_folder(video, mask, tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "00002.png").mkdir()
    os.mkfifo(tmp_path / "m" / "00003.png")
    assert main(["--input", str(video), "--mask", str(mask), "--save-mask", str(tmp_path / "m" / "%05d.png"),
                 "--overwrite"]) == 2
    assert f"{tmp_path / 'm' / '00002.png'} is not a regular file (a folder)" in error_line(capsys.readouterr().err)
    (tmp_path / "m" / "00002.png").rmdir()
    assert main(["--input", str(video), "--mask", str(mask), "--save-mask", str(tmp_path / "m" / "%05d.png"),
                 "--overwrite"]) == 2
    assert "00003.png is not a regular file (a pipe)" in error_line(capsys.readouterr().err)


def test_a_folder_on_a_read_only_file_system_is_called_so(video, mask, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access, real_statvfs = os.access, os.statvfs

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real_access(p, mode))
    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly() if Path(p) == ro else real_statvfs(p))
    assert main(["--input", str(video), "--mask", str(mask), "--save-mask", str(ro / "%05d.png")]) == 2
    assert f"cannot write into folder {ro} (a read-only file system)" in error_line(capsys.readouterr().err)


def test_a_folder_that_cannot_be_written_is_named(video, mask, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))  # root passes chmod
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(ro / "o.mp4")]) == 2
    assert f"cannot write into folder {ro} (permission denied)" in error_line(capsys.readouterr().err)


# -- partial files never replace anything -----------------------------------------------------


def _masks(folder: Path, count: int) -> str:
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((48, 64), 200, np.uint8))
    return str(folder / "%05d.png")


def test_masks_running_out_keep_every_frame_before_and_replace_nothing(video, tmp_path, capsys):
    """An input called NAME.partial.mp4 processed to NAME.mp4 and a longer partial of an earlier
    run both stay; the frames before the fault are kept under the next free partial name."""
    talk = tmp_path / "talk.partial.mp4"
    shutil.copy(video, talk)
    (tmp_path / "talk.partial-2.mp4").write_bytes(b"an earlier run's partial")
    before = _tree(tmp_path)
    pattern = _masks(tmp_path / "masks", 5)
    assert main(["--input", str(talk), "--mask", pattern, "--output", str(tmp_path / "talk.mp4")]) == 1
    line = error_line(capsys.readouterr().err)
    # frames counted from 1, as numbered files are: the 6th frame has none (00000.png to 00004.png: 5 masks)
    assert "has no mask for frame 6 of the input" in line and "the frames before were kept" in line
    after = _tree(tmp_path)
    assert {k: after[k] for k in before} == before  # every file as it was
    assert set(after) - set(before) == {"talk.partial-3.mp4"}
    assert probe_video(tmp_path / "talk.partial-3.mp4")["frames"] == 5


def test_a_full_disk_keeps_a_playable_partial_and_says_so(video, mask, tmp_path, capsys, monkeypatch):
    written = []

    def mux(self, packet):
        if len(written) >= 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._container.mux(packet)
        self._muxed += 1
        written.append(packet)

    monkeypatch.setattr(VideoWriter, "_mux", mux)
    out = tmp_path / "o.mp4"
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(out), "--preset", "ultrafast"]) == 1
    line = error_line(capsys.readouterr().err)
    assert "No space left on device; free some space" in line
    assert not out.exists() and probe_video(tmp_path / "o.partial.mp4")["frames"] == 4
    assert not [p for p in tmp_path.iterdir() if ".livebokeh-tmp" in p.name]


def test_a_killed_runs_temporary_file_is_kept_and_reported(video, mask, tmp_path, caplog):
    stale = tmp_path / ".o.livebokeh-tmp-999999999.mp4"  # no such process
    stale.write_bytes(b"a killed run's frames")
    out = tmp_path / "o.mp4"
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(out)]) == 0
    assert (tmp_path / "o.partial.mp4").read_bytes() == b"a killed run's frames" and not stale.exists()
    assert probe_video(out)["frames"] == 12


def test_an_image_is_replaced_only_by_a_complete_new_one(photo, mask, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.png"
    out.write_bytes(b"the old portrait")

    class HalfWritten:
        """A file on a disk that fills half way through the image."""

        def __init__(self, fd, mode):
            self._fh = open(fd, mode)

        def write(self, data):
            self._fh.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    from livebokeh.sinks import files

    monkeypatch.setattr(files.os, "fdopen", HalfWritten)  # (the temporary file is written through its descriptor)
    assert main(["--input", str(photo), "--mask", str(mask), "--output", str(out), "--overwrite"]) == 1
    monkeypatch.undo()
    assert "No space left on device" in error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"the old portrait"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png", "o.png", "p.jpg"]


# -- batches ------------------------------------------------------------------------------------


def test_batch_names_never_collide(photo, mask, tmp_path, capsys):
    (tmp_path / "A").mkdir(), (tmp_path / "B").mkdir(), (tmp_path / "out").mkdir()
    shutil.copy(photo, tmp_path / "A" / "x.jpg")
    shutil.copy(photo, tmp_path / "B" / "x.jpg")
    args = ["--input", str(tmp_path / "A" / "x.jpg"), str(tmp_path / "B" / "x.jpg"), "--mask", str(mask),
            "--output-dir", str(tmp_path / "out"), "--overwrite"]
    assert main(args) == 2
    line = error_line(capsys.readouterr().err)
    assert "A/x.jpg and " in line and "B/x.jpg would both be written to" in line
    assert list((tmp_path / "out").iterdir()) == []


def test_a_batch_never_writes_over_one_of_its_inputs(photo, mask, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(photo, out / "a.jpg")
    shutil.copy(photo, out / "a_portrait.jpg")  # an input, and the name a.jpg's result would take
    before = _tree(out)
    assert main(["--input", str(out), "--mask", str(mask), "--output-dir", str(out), "--overwrite"]) == 2
    line = error_line(capsys.readouterr().err)  # named by the option the user gave
    assert line.startswith(f"livebokeh: error: --output-dir {out / 'a_portrait.jpg'} would replace the input"), line
    assert _tree(out) == before


def test_a_batch_writes_one_stats_entry_per_input(photo, mask, tmp_path):
    (tmp_path / "in").mkdir(), (tmp_path / "out").mkdir()
    for n in ("a", "b"):
        shutil.copy(photo, tmp_path / "in" / f"{n}.jpg")
    stats = tmp_path / "s.json"
    assert main(["--input", str(tmp_path / "in"), "--mask", str(mask), "--output-dir", str(tmp_path / "out"),
                 "--stats-json", str(stats), "-q"]) == 0
    assert [r["source"] for r in json.loads(stats.read_text())] == ["a.jpg", "b.jpg"]


def test_a_batch_whose_model_cannot_load_says_so_once_and_tries_no_other_input(video, tmp_path, capsys, monkeypatch):
    """Several inputs with bad weights: the same model error once per input (the model loaded again
    for each), a progress line naming an output never written, then '2 of 2 inputs failed'."""
    from livebokeh.segment import rvm

    second = tmp_path / "second.mp4"
    shutil.copy(video, second)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model" * 100)
    loads = []
    real = rvm.RVMSegmenter.__init__

    def counted(self, *a, **kw):
        loads.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(rvm.RVMSegmenter, "__init__", counted)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["--input", str(video), str(second), "--output-dir", str(out), "--backend", "rvm",
                 "--rvm-weights", str(bad)]) == 1
    err = capsys.readouterr().err
    line = error_line(err)
    assert "not a usable RVM model" in line and "none of the 2 inputs was processed" in line
    assert len(loads) == 1 and "->" not in err and list(out.iterdir()) == []


def test_every_kind_of_non_file_is_named_alike_for_inputs_outputs_and_weights(video, mask, tmp_path, capsys):
    """A socket was "a device or a socket" for weights and "a device" or "a socket" elsewhere: one
    namer (errors.file_kind) for the input, an output's name and a weights file."""
    import socket

    from livebokeh import models
    from livebokeh.errors import file_kind

    sock_path = tmp_path / "s.mp4"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert file_kind(os.stat(sock_path).st_mode) == "a socket"
        assert main(["--input", str(sock_path), "--mask", str(mask), "--output", str(tmp_path / "o.mp4")]) == 1
        assert "is not a regular file (a socket)" in error_line(capsys.readouterr().err)
        assert main(["--input", str(video), "--mask", str(mask), "--output", str(sock_path)]) == 2
        assert "a socket" in error_line(capsys.readouterr().err)
        assert "is not a regular file (a socket)" in models.find("rvm", sock_path).problem
    assert [file_kind(os.stat(p).st_mode) for p in (video, tmp_path, "/dev/null")] == ["a file", "a folder", "a device"]


@pytest.mark.timeout(120)
def test_an_image_input_that_is_a_pipe_is_refused_not_waited_on(mask, tmp_path, capsys):
    """``mkfifo f.png; livebokeh -i f.png``: opening a FIFO waits for a writer forever; it is
    refused with one line instead, as a video FIFO is."""
    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    assert main(["--input", str(fifo), "--mask", str(mask), "--output", str(tmp_path / "o.png")]) == 1
    assert f"input {fifo} is not a regular file (a pipe)" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.timeout(120)
def test_a_folder_input_takes_only_its_own_pictures(photo, mask, tmp_path, capsys):
    """A folder's FIFO is skipped with a warning (it would hang the batch), and another run's
    hidden temporary file, a hidden file and a partial result are not inputs; its videos are left
    out, and said to be. (An earlier run's ``b_portrait.jpg`` beside ``b.jpg`` stays an input: it
    may be a picture of the user's own, and an input is never replaced.)"""
    (tmp_path / "in").mkdir(), (tmp_path / "out").mkdir()
    shutil.copy(photo, tmp_path / "in" / "b.jpg")
    os.mkfifo(tmp_path / "in" / "fifo.png")
    for name in (".b.livebokeh-tmp-999.jpg", ".hidden.jpg", "c.partial.jpg", "c.partial-2.jpg", "talk.mp4",
                 "walk.mkv"):
        shutil.copy(photo, tmp_path / "in" / name)
    assert main(["--input", str(tmp_path / "in"), "--mask", str(mask), "--output-dir", str(tmp_path / "out"),
                 "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b_portrait.jpg"]
    err = capsys.readouterr().err
    assert "fifo.png: not a regular file (a pipe)" in err and "c.partial.jpg: a partial result" in err
    assert f"left out 2 videos in {tmp_path / 'in'} (talk.mp4, walk.mkv)" in err


@pytest.mark.parametrize(("flag", "name", "still"), [
    ("--output", "x.exr", True), ("--save-mask", "y.exr", True), ("--save-mask", "pp/%05d.exr", False),
    ("--save-mask", "pp/%05d.ppm", False), ("--alpha-output", "pp/%05d.jpg", False),
])
def test_an_image_ending_that_cannot_be_written_is_refused_before_reading(
        video, photo, mask, tmp_path, capsys, monkeypatch, flag, name, still):
    """.exr has no encoder in OpenCV's wheels and a gray mask cannot be a .ppm: exit 2 before
    anything is read, and the list of endings offered holds only those that can be written."""
    from livebokeh.sources import image
    from livebokeh.sources import video as video_source

    (tmp_path / "pp").mkdir()
    monkeypatch.setattr(image, "read_image", lambda *a, **k: pytest.fail("read before the check"))
    monkeypatch.setattr(video_source.VideoFileSource, "_open", lambda *a, **k: pytest.fail("read before the check"))
    source = photo if still else video
    assert main(["--input", str(source), "--mask", str(mask), flag, str(tmp_path / name)]) == 2
    line = error_line(capsys.readouterr().err)
    assert "is not one of the images" in line and ".png" in line
    assert not {".exr", ".jp2", ".hdr", ".pbm"} & set(line.split("use ", 1)[1].replace(",", " ").split())
    assert list((tmp_path / "pp").iterdir()) == []


# -- messages and exit codes --------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_named(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"[render]\nblur = 0.02 # \xff\xfe\n")
    assert main(["--config", str(cfg), "--print-config"]) == 2
    assert f"{cfg} is not UTF-8 text" in error_line(capsys.readouterr().err)


def test_a_corrupt_background_image_is_called_a_background(video, mask, tmp_path, capsys):
    bad = tmp_path / "bg.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--effect", "replace", "--background", str(bad)]) == 1
    assert f"cannot read background image {bad}" in error_line(capsys.readouterr().err)


# -- a video background from several threads ---------------------------------------------------


def test_a_video_background_on_a_video_gives_the_same_file_every_run(video, mask, tmp_path):
    """The pool's workers render side by side and ask for plates in any order: output frame i
    gets the background's frame i (looping), in whichever order they render."""
    bg = tmp_path / "bg.mkv"
    w = VideoWriter(bg, 64, 48, Fraction(25))
    for v in (30, 130, 230):
        w.write(np.full((48, 64, 3), v, np.uint8))
    w.close()
    outs = []
    for n in range(2):
        out = tmp_path / f"o{n}.mkv"
        m = np.zeros((48, 64), np.uint8)
        cv2.imwrite(str(mask), m)  # all background: each frame is its plate
        assert main(["--input", str(video), "--mask", str(mask), "--output", str(out), "--effect", "replace",
                     "--background", str(bg), "--crf", "0", "-q"]) == 0
        outs.append(probe_video(out)["gray"])
    assert len(outs[0]) == 12
    assert [round(float(f.mean()) / 10) for f in outs[0]] == [3, 13, 23] * 4
    assert all(np.array_equal(a, b) for a, b in zip(*outs))


# -- signals ------------------------------------------------------------------------------------


class _FakePipeline:
    def __init__(self):
        self.calls = []

    def request_stop(self):
        self.calls.append("stop")

    def abort(self):
        self.calls.append("abort")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_drain_then_abort_and_never_cut_the_finalising(sig):
    from livebokeh.cli import _StopSignals

    with _StopSignals() as signals:
        pipeline = _FakePipeline()
        with signals.stopping(pipeline):
            os.kill(os.getpid(), sig)
            assert pipeline.calls == ["stop"]  # the first: finish what is in flight
            os.kill(os.getpid(), sig)
            assert pipeline.calls == ["stop", "abort"]  # the second: stop now
        os.kill(os.getpid(), sig)  # while the outputs are finalised: recorded, nothing raised
        assert signals.received == [sig] * 3
    assert signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL)


def test_a_signal_before_the_pipeline_runs_interrupts():
    from livebokeh.cli import _StopSignals

    with _StopSignals(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGHUP)


# -- side outputs keep what they can hold -------------------------------------------------------


def test_alpha_video_keeps_the_sound(clip, tmp_path):
    from tests.sinks.test_video import _audio_info

    m = tmp_path / "m.png"
    cv2.imwrite(str(m), np.full((8, 8), 255, np.uint8))
    out = tmp_path / "a.mkv"
    assert main(["--input", str(clip), "--mask", str(m), "--alpha-output", str(out), "--max-frames", "15", "-q"]) == 0
    fps = probe_video(clip)["fps"]
    (codec, seconds), = _audio_info(out)
    assert abs(seconds - 15 / fps) < 0.1


def test_masks_of_another_size_or_count_are_said_once(video, tmp_path, capsys):
    pattern = _masks(tmp_path / "masks", 14)  # 64x48 masks, 14 of them for a 12-frame input
    small = tmp_path / "small"
    small.mkdir()
    for i in range(12):
        cv2.imwrite(str(small / f"{i:05d}.png"), np.full((24, 32), 200, np.uint8))
    assert main(["--input", str(video), "--mask", pattern, "--output", str(tmp_path / "a.mp4")]) == 0
    assert main(["--input", str(video), "--mask", str(small / "%05d.png"), "--output", str(tmp_path / "b.mp4")]) == 0
    text = capsys.readouterr().err.splitlines()
    assert sum("holds 14 masks for an input of 12 frames" in t for t in text) == 1
    assert sum("masks are 32x24, the frames 64x48" in t for t in text) == 1


# -- the progress bar -----------------------------------------------------------------------------


def test_the_progress_bar_reaches_the_end_and_leaves_the_line_clean(monkeypatch):
    import io
    import types

    from livebokeh.cli import Progress

    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    pipeline = types.SimpleNamespace(latency=types.SimpleNamespace(frames_out=0))
    with Progress(pipeline, total=8, limit=None, name="talk.mp4") as bar:
        for n in range(1, 11):  # the header said 8; the file held 10
            pipeline.latency.frames_out = n
            bar()
        shown = bar._bar
    assert shown.n == shown.total == 10
    text = err.getvalue()
    assert "talk.mp4" in text and text.endswith("\r")  # the next line starts at the left, not after the bar


# -- found by the adversarial trial ---------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["pm/%s.png", "pm/%i.png", "pm/%x.png", "pm/%5d.png", "pm%d/x.png",
                                     "pm/x%dy%d.png", "pm/%c.png", "pm/100%_%d.png", "pm/%d%.png"])
@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output"])
def test_only_frame_number_patterns_are_patterns(video, mask, tmp_path, capsys, flag, pattern):
    """Any other conversion replaced files the policy never looked at (even the input)."""
    (tmp_path / "pm").mkdir()
    (tmp_path / "pm0").mkdir()
    for name in ("pm/0.png", "pm/1.png", "pm0/x.png"):
        (tmp_path / name).write_bytes(b"the user's")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.png")}
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 flag, str(tmp_path / pattern), "--overwrite"]) == 2
    assert "not a valid pattern; put one %d or %05d in the file name" in error_line(capsys.readouterr().err)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.png")} == before
    assert not (tmp_path / "o.mp4").exists()


def test_a_frame_pattern_never_names_an_input_image(tmp_path, mask, capsys):
    (tmp_path / "fr").mkdir()
    cv2.imwrite(str(tmp_path / "fr" / "0.png"), np.zeros((48, 64, 3), np.uint8))
    before = (tmp_path / "fr" / "0.png").read_bytes()
    assert main(["--input", str(tmp_path / "fr" / "0.png"), "--mask", str(mask), "--output", str(tmp_path / "o.png"),
                 "--alpha-output", str(tmp_path / "fr" / "%d.png"), "--overwrite"]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert (tmp_path / "fr" / "0.png").read_bytes() == before


@pytest.mark.parametrize(("args", "message"), [
    (["--output", "o.gif"], "--output o.gif: .gif is not one of the videos"),
    (["--output", "o.mp4", "--save-mask", "m.jpg"], "--save-mask m.jpg: .jpg is not one of the videos"),
    (["--output", "o.mp4", "--alpha-output", "a.mp4"], "--alpha-output a.mp4: .mp4 is not one of the videos"),
    # the advice used to be "write a % in its name as %%", which then named a file o%%d.mp4
    (["--output", "o%d.mp4"], ("--output o%d.mp4 names one file, not one per frame; leave %d out of its name "
                               "(it would make a pattern of frame numbers)")),
    (["--output", "o.mp4", "--stats-json", "s%03d.json"], "one per frame; leave %03d out of its name"),
    (["--output", "o.mp4", "--stats-json", ""], "--stats-json needs a file name"),
    (["--output", "o.mp4", "--stats-json", "newdir/"], "names a folder; give a file name"),
    (["--output", "o.mp4/"], "names a folder; give a file name"),
])
def test_output_names_are_checked_before_anything_is_opened(video, mask, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["--input", str(video), "--mask", str(mask), *args]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file came and went either


def test_command_line_mistakes_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("x")
    for args, message in [
        (["--max-frames", "1e3"], "argument --max-frames: invalid int value: '1e3'; see livebokeh --help"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--x\x1b]0;t\x07"], "unrecognized arguments: --x\\x1b]0;t\\x07;"),  # a globbed name: as text
        (["--output", "rec.mp4", "--mask", "m.png"], "--mask needs --input"),
        (["--input", "a.jpg", "b.jpg", "--output-dir", "f"], "--output-dir f is a file, not a folder"),
    ]:
        with pytest.raises(SystemExit) if args[0].startswith(("--max-frames", "--bogus", "--x")) else _nothing() as exited:
            assert main(args) == 2
        if exited is not None and hasattr(exited, "value"):
            assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_a_config_file_with_a_bom_is_read(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes("\ufeff[render]\nblur = 0.02\n".encode())
    assert main(["--config", str(cfg), "--print-config"]) == 0
    assert "blur = 0.02" in capsys.readouterr().out


def test_a_link_to_a_pipe_is_not_replaced(video, mask, tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.json").symlink_to(tmp_path / "fifo")
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--stats-json", str(tmp_path / "link.json"), "--overwrite"]) == 2
    assert "is not a regular file" in error_line(capsys.readouterr().err)
    assert (tmp_path / "link.json").is_symlink()


def test_a_photo_with_transparency(photo, mask, tmp_path):
    out = tmp_path / "cut.png"
    assert main(["--input", str(photo), "--mask", str(mask), "--alpha-output", str(out), "-q"]) == 0
    rgba = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (48, 64, 4) and rgba[25, 30, 3] == 255 and rgba[2, 2, 3] == 0


def test_a_batch_lists_failed_inputs_in_its_stats(photo, mask, tmp_path):
    (tmp_path / "in").mkdir(), (tmp_path / "out").mkdir()
    shutil.copy(photo, tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "b.jpg").write_bytes(b"not a picture")
    stats = tmp_path / "s.json"
    assert main(["--input", str(tmp_path / "in"), "--mask", str(mask), "--output-dir", str(tmp_path / "out"),
                 "--stats-json", str(stats), "-q"]) == 1
    entries = json.loads(stats.read_text())
    assert [e["source"] for e in entries] == ["a.jpg", "b.jpg"]
    assert "error" not in entries[0] and "cannot read input" in entries[1]["error"]


def test_a_killed_recording_keeps_its_frames_and_sound(tmp_path):
    """SIGKILL mid-file: what was written is on disk (packets flushed, sound muxed beside the
    pictures, not held back for the end), and the next run keeps it as a playable partial."""
    import subprocess
    import sys
    import textwrap

    import av

    from tests.conftest import REPO

    src = tmp_path / "long.mkv"
    c = av.open(str(src), "w")
    v = c.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
    a = c.add_stream("aac", rate=48000)
    a.layout = "stereo"
    for i in range(400):
        for p in v.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), i % 250, np.uint8), format="bgr24")):
            c.mux(p)
    for i in range(400 * 48000 // 25 // 1024):
        f = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        f.sample_rate, f.pts = 48000, i * 1024
        for p in a.encode(f):
            c.mux(p)
    for s in (v, a):
        for p in s.encode(None):
            c.mux(p)
    c.close()
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((64, 96), 255, np.uint8))
    reached = tmp_path / "reached"
    # the writer stops for good after 300 frames (the process is killed there, not at an instant)
    script = textwrap.dedent(f"""
        import threading
        from pathlib import Path
        from livebokeh.sinks.video import VideoWriter
        from livebokeh.cli import main
        real = VideoWriter.write
        def write(self, image, time_s=None, capture_ns=None):
            if self.frames == 300:
                Path({str(reached)!r}).write_text("300")
                threading.Event().wait()
            real(self, image, time_s, capture_ns)
        VideoWriter.write = write
        main(["--input", {str(src)!r}, "--mask", {str(mask)!r}, "--output", {str(tmp_path / "r.mkv")!r}, "-q",
              "--preset", "ultrafast"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        until(lambda: reached.exists() or proc.poll() is not None, "the run to reach its frame", timeout=300)
        assert reached.exists(), f"the run ended first (status {proc.returncode})"
    finally:
        proc.kill()
        proc.wait()
    assert main(["--input", str(src), "--mask", str(mask), "--output", str(tmp_path / "r.mkv"), "--max-frames", "2",
                 "-q"]) == 0
    kept = probe_video(tmp_path / "r.partial.mkv")
    assert 100 <= kept["frames"] <= 300  # Matroska keeps whole clusters (a few seconds each)
    with av.open(str(tmp_path / "r.partial.mkv")) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        sound = sum(f.samples for f in c.decode(audio=0)) / 48000
    assert sound >= kept["frames"] / 25 - 1.0  # the sound came along with the pictures


# -- found by the second trial ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 252 + ".mp4", "é" * 126 + ".mp4"])
def test_a_name_too_long_for_the_file_system_is_refused_up_front(video, mask, tmp_path, capsys, name):
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / name)]) == 2
    assert "the file name is too long" in error_line(capsys.readouterr().err)


def test_a_pattern_whose_names_grow_too_long_is_refused_up_front(video, mask, tmp_path, capsys):
    pattern = tmp_path / ("é" * 124 + "%d.png")  # 253 bytes for frames 0-9, 256 from frame 100
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--save-mask", str(pattern)]) == 2
    assert "the file name is too long" in error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "m.png"]


def test_names_with_bytes_that_are_not_utf8_work(video, mask, tmp_path):
    out = tmp_path / os.fsdecode(b"bad\xff.mp4")
    side = tmp_path / os.fsdecode(b"m\xfe.mkv")
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(out), "--save-mask", str(side), "-q"]) == 0
    assert probe_video(out)["frames"] == 12 and probe_video(side)["frames"] == 12


def test_patterns_whose_names_meet_at_some_frame_are_refused(video, mask, tmp_path, capsys):
    (tmp_path / "e").mkdir()
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--save-mask", str(tmp_path / "e" / "a1%d.png"), "--alpha-output", str(tmp_path / "e" / "a%d.png")]) == 2
    assert "name the same file" in error_line(capsys.readouterr().err)  # a1%d at 0 is a%d at 10
    # names a pattern cannot give do not count: %d never writes n00015.png, and %05d never n15.png
    (tmp_path / "e" / "n00015.png").write_bytes(b"keep")
    (tmp_path / "e" / "w15.png").write_bytes(b"keep")
    assert main(["--input", str(video), "--mask", str(mask), "--save-mask", str(tmp_path / "e" / "n%d.png"),
                 "--alpha-output", str(tmp_path / "e" / "w%05d.png"), "-q"]) == 0
    assert (tmp_path / "e" / "n00015.png").read_bytes() == (tmp_path / "e" / "w15.png").read_bytes() == b"keep"


def test_a_mask_pattern_with_a_lone_percent_is_refused_before_reading(video, tmp_path, capsys):
    assert main(["--input", str(video), "--mask", str(tmp_path / "100%_%d.png"), "--output", str(tmp_path / "o.mp4")]) == 2
    assert "--mask" in (line := error_line(capsys.readouterr().err)) and "not a valid pattern" in line
    assert not (tmp_path / "o.mp4").exists()


def test_masks_numbered_from_one_are_taken_from_frame_zero(video, tmp_path):
    (tmp_path / "mk").mkdir()
    for i in range(1, 13):  # as ffmpeg numbers them
        cv2.imwrite(str(tmp_path / "mk" / f"{i:04d}.png"), np.full((48, 64), 20 * i, np.uint8))
    assert main(["--input", str(video), "--mask", str(tmp_path / "mk" / "%04d.png"), "--save-mask",
                 str(tmp_path / "again.mkv"), "-q"]) == 0
    got = probe_video(tmp_path / "again.mkv")["gray"]
    assert [int(round(float(g.mean()))) for g in got] == [20 * i for i in range(1, 13)]


def test_a_signal_after_the_run_ended_does_not_kill_the_command():
    """Run as the command, later signals are ignored to the process's exit: SIGTERM in the last
    moments (after the outputs were finalised) no longer ends it with 143 instead of its own status."""
    from livebokeh.cli import _StopSignals

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with _StopSignals(restore=False):
            pass
        assert all(signal.getsignal(s) == signal.SIG_IGN for s in previous)
        os.kill(os.getpid(), signal.SIGTERM)  # ignored, nothing raised
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_while_python_shuts_down_keeps_the_exit_status(sig):
    """A third signal that arrives while the interpreter shuts down (after Python put its
    default handlers back) left the command with 143 or 129 instead of 130 (trial 28c E1)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, sys, time
        from livebokeh.cli import _StopSignals
        with _StopSignals(restore=False):
            pass
        class Late:
            def __del__(self):  # runs during the interpreter's shutdown
                os.kill(os.getpid(), {int(sig)})
                time.sleep(0.2)
        sys.modules["late_object"] = Late()
        raise SystemExit(130)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert done.returncode == 130, done.stderr.decode()


@pytest.mark.slow
def test_a_live_recording_stopped_by_ctrl_c_is_whole_under_its_name(tmp_path, selfie_models):
    """Live, Ctrl-C is how a recording ends (a camera has no end of its own): the first one
    finalises it under the name asked for, with every frame that went out."""
    import subprocess
    import sys
    import textwrap

    from tests.conftest import REPO
    from tests.sources.test_clip import numbered_clip

    clip = numbered_clip(tmp_path / "c.mkv", frames=20, fps=20, size=(64, 48))
    mask = tmp_path / "m.png"
    cv2.imwrite(str(mask), np.full((48, 64), 255, np.uint8))
    reached, out = tmp_path / "reached", tmp_path / "rec.mkv"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from livebokeh.sinks.video import VideoWriter
        from livebokeh.cli import main
        real = VideoWriter.write
        def write(self, *a, **k):
            real(self, *a, **k)
            if self.frames == 10:
                Path({str(reached)!r}).write_text("10")
        VideoWriter.write = write
        raise SystemExit(main(["--camera", {str(clip)!r}, "--loop", "--backend", "mediapipe", "--output", {str(out)!r},
                               "--no-virtual-camera", "--no-preview", "-q"]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        until(lambda: reached.exists() or proc.poll() is not None, "the run to reach its frame", timeout=300)
        assert reached.exists(), f"the run ended first (status {proc.returncode})"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.is_file() and not list(tmp_path.glob("rec.partial*"))
    assert probe_video(out)["frames"] >= 10


# -- found by the second adversarial trial ---------------------------------------------------------


def _all_files(folder: Path) -> dict[str, tuple[bool, bytes]]:
    """Every name in ``folder``: whether it is a symbolic link, and the bytes it reads as."""
    return {p.name: (p.is_symlink(), p.read_bytes()) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output"])
def test_a_pattern_never_replaces_a_hard_link_of_the_input(mask, tmp_path, capsys, flag):
    """The input is link.png, the same file as 00001.png, which the pattern would replace (and,
    with --overwrite, remove at the start as an earlier run's image)."""
    hp = tmp_path / "hp"
    hp.mkdir()
    for i in range(1, 4):
        cv2.imwrite(str(hp / f"{i:05d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    os.link(hp / "00001.png", hp / "link.png")
    before = _all_files(hp)
    assert main(["--input", str(hp / "link.png"), "--mask", str(mask), flag, str(hp / "%05d.png"), "--overwrite"]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"would replace the input {hp / 'link.png'} ({hp / '00001.png'} is the same file)" in line
    assert _all_files(hp) == before and (hp / "00001.png").stat().st_nlink == 2


@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output"])
def test_a_pattern_never_replaces_a_symbolic_link_to_the_input(video, mask, tmp_path, capsys, flag):
    hp = tmp_path / "hp"
    hp.mkdir()
    cv2.imwrite(str(hp / "00001.png"), np.zeros((48, 64), np.uint8))
    (hp / "00003.png").symlink_to(video)
    before, clip = _all_files(hp), video.read_bytes()
    ending = "%05d.png"
    assert main(["--input", str(video), "--mask", str(mask), flag, str(hp / ending), "--overwrite"]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert _all_files(hp) == before and video.read_bytes() == clip  # nothing removed at the start either
    # another name for the same pattern's folder gives no way round it
    (tmp_path / "alias").symlink_to(hp)
    assert main(["--input", str(video), "--mask", str(mask), flag, str(tmp_path / "alias" / ending), "--overwrite"]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert _all_files(hp) == before
    # without the link the same run writes every frame
    (hp / "00003.png").unlink()
    assert main(["--input", str(video), "--mask", str(mask), flag, str(hp / ending), "--overwrite", "-q"]) == 0
    assert sorted(p.name for p in hp.iterdir()) == [f"{i:05d}.png" for i in range(1, 13)]


def test_a_pattern_and_a_file_output_that_is_one_of_its_images_collide(video, mask, tmp_path, capsys):
    hp = tmp_path / "hp"
    hp.mkdir()
    (hp / "00002.png").write_bytes(b"the user's")
    os.link(hp / "00002.png", tmp_path / "o.png")
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(tmp_path / "o.mp4"),
                 "--save-mask", str(hp / "%05d.png"), "--alpha-output", str(tmp_path / "o.mkv"), "--overwrite",
                 "--stats-json", str(tmp_path / "o.png")]) == 2
    assert "name the same file" in error_line(capsys.readouterr().err)
    assert (hp / "00002.png").read_bytes() == b"the user's"


def test_patterns_that_meet_past_any_frame_count_are_refused(video, mask, tmp_path, capsys):
    """%05d and %06d first give one name at frame 100000 (100000.png): the shapes tell, not a probe."""
    (tmp_path / "p").mkdir()
    assert main(["--input", str(video), "--mask", str(mask), "--save-mask", str(tmp_path / "p" / "%05d.png"),
                 "--alpha-output", str(tmp_path / "p" / "%06d.png")]) == 2
    assert "name the same file" in error_line(capsys.readouterr().err)
    assert list((tmp_path / "p").iterdir()) == []


@pytest.mark.parametrize(("a", "b", "name"), [
    ("%05d.png", "%06d.png", "100000.png"),
    ("%05d.png", "%d.png", "10000.png"),
    ("a1%d.png", "a%d.png", "a10.png"),
    ("%d.png", "%d.png", "0.png"),
    ("x%03d.png", "x1%03d.png", "x1000.png"),
    ("%d%%.png", "%05d%%.png", "10000%.png"),
    ("n%d.png", "w%05d.png", None),
    ("%d.png", "%d.jpg", None),
    ("%05d.png", "%05d.png.png", None),
    ("a%d.png", "%d.png", None),
    ("x%05d.png", "x0%05d.png", None),  # %05d's longer numbers never start with 0
    ("x%05d.png", "x0%04d.png", "x00000.png"),
    ("1%02d.png", "%04d.png", "1100.png"),  # not 1000: %02d never gives 000
    ("%02d1.png", "%03d.png", "001.png"),
])
def test_the_names_two_patterns_share_come_from_their_shapes(a, b, name):
    from livebokeh.sinks.files import _pattern_regex, shared_name

    for x, y in ((a, b), (b, a)):
        found = shared_name(Path(x), Path(y))
        assert (found is None) == (name is None)
        if found is not None:
            assert _pattern_regex(Path(x)).fullmatch(found) and _pattern_regex(Path(y)).fullmatch(found)
    assert shared_name(Path(a), Path(b)) == name  # the shortest, smallest such name


def test_two_patterns_meet_exactly_when_some_frame_gives_both_one_name():
    """Against every frame number up to 20000 for small shapes: any name both give is found, and
    the name found is one both give."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from livebokeh.sinks.files import _pattern_regex, shared_name

    text = st.text(alphabet="01a", max_size=2)
    conv = st.sampled_from(["%d", "%02d", "%03d", "%04d"])

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(text, conv, text, text, conv, text)
    def check(pa, ca, sa, pb, cb, sb):
        a, b = Path(pa + ca + sa + ".png"), Path(pb + cb + sb + ".png")
        found = shared_name(a, b)
        if found is not None:
            assert _pattern_regex(a).fullmatch(found) and _pattern_regex(b).fullmatch(found)
        rb = _pattern_regex(b)
        if any(rb.fullmatch(a.name % n) for n in range(20000)):
            assert found is not None

    check()


def test_a_virtual_camera_backend_that_is_not_there_is_refused_on_a_file_run_too(video, mask, tmp_path, capsys):
    """A live run refused it (exit 2); a file run took it silently (exit 0)."""
    out = tmp_path / "o.mp4"
    assert main(["--input", str(video), "--mask", str(mask), "--output", str(out), "--vcam-backend", "nonsense"]) == 2
    line = error_line(capsys.readouterr().err)
    assert "virtual camera backend 'nonsense' (--vcam-backend, virtual_camera.backend) is not available on" in line
    assert not out.exists()


@pytest.mark.parametrize("name", ["o.png", "o.mp4"])
def test_a_finished_file_that_cannot_be_moved_into_place_is_kept_under_a_partial_name(
        video, photo, mask, tmp_path, capsys, monkeypatch, name):
    """An immutable old file (chattr +i) with --overwrite: the finished result is kept, visible,
    as NAME.partial.EXT and the one line says where; no hidden temporary file stays."""
    out = tmp_path / name
    out.write_bytes(b"the old file, immutable")
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst) == out:
            raise PermissionError(errno.EPERM, "Operation not permitted", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    source = photo if name.endswith(".png") else video
    assert main(["--input", str(source), "--mask", str(mask), "--output", str(out), "--overwrite"]) == 1
    monkeypatch.undo()
    partial = tmp_path / name.replace(".", ".partial.")
    line = error_line(capsys.readouterr().err)
    assert "Operation not permitted" in line and str(partial) in line
    assert out.read_bytes() == b"the old file, immutable"
    if name.endswith(".png"):
        assert cv2.imread(str(partial)).shape == (48, 64, 3)
    else:
        assert probe_video(partial)["frames"] == 12
    assert not [p for p in tmp_path.iterdir() if ".livebokeh-tmp" in p.name]


@pytest.mark.parametrize("refused", [("unlink", "replace"), ("replace",)])
def test_an_old_numbered_file_that_cannot_be_replaced_is_named_and_the_claim_released(
        video, mask, tmp_path, capsys, monkeypatch, refused):
    """--overwrite onto a pattern whose 00002.png is immutable (chattr +i; here os.unlink and/or
    os.replace refuse it, as when the old files are removed first and as when each is replaced
    by its frame): one line naming the file, no internal error, and the pattern's claim file is
    gone, so the next run is not told another run writes these names."""
    folder = tmp_path / "pq"
    folder.mkdir()
    for n in range(1, 6):
        cv2.imwrite(str(folder / f"{n:05d}.png"), np.zeros((4, 4), np.uint8))
    stuck = folder / "00002.png"

    def refuse(real):
        def call(*args, **kwargs):
            if any(Path(a) == stuck for a in args[:2]):
                raise PermissionError(errno.EPERM, "Operation not permitted", str(stuck))
            return real(*args, **kwargs)
        return call

    for name in refused:
        monkeypatch.setattr(os, name, refuse(getattr(os, name)))
    code = main(["--input", str(video), "--mask", str(mask), "--save-mask", str(folder / "%05d.png"),
                 "--overwrite", "-q"])
    monkeypatch.undo()
    assert code == 1
    line = error_line(capsys.readouterr().err)
    assert str(stuck) in line and "Operation not permitted" in line
    assert not [p for p in folder.iterdir() if ".livebokeh-claim" in p.name or ".livebokeh-tmp" in p.name]


# -- found by the third adversarial trial ------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--save-mask", "--alpha-output"])
def test_overwrite_keeps_a_patterns_files_when_the_run_fails_before_its_first_frame(video, mask, tmp_path, capsys,
                                                                                    flag):
    """--overwrite on a pattern whose files an earlier run wrote: weights that cannot be loaded end
    the run before its first frame, and every earlier file stays as it was (they were removed at
    the start once); the same run that goes through leaves only its own images."""
    out = tmp_path / "m"
    out.mkdir()
    for i in range(1, 21):
        cv2.imwrite(str(out / f"{i:05d}.png"), np.full((48, 64), i, np.uint8))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    assert main(["--input", str(video), flag, str(out / "%05d.png"), "--overwrite", "--backend", "rvm",
                 "--rvm-weights", str(bad)]) == 1
    assert "not a usable RVM model" in error_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["--input", str(video), "--mask", str(mask), flag, str(out / "%05d.png"), "--overwrite", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(1, 13)]


@pytest.mark.parametrize("case", ["weights", "mask", "mask video"])
def test_a_model_or_mask_that_cannot_be_had_is_one_line_before_any_output_opens(video, tmp_path, capsys, case):
    """Weights that do not load and a --mask pattern with no files are told in the one error line:
    no output was opened first (no "writing ..." then "no frame was written" before the error)."""
    out = tmp_path / "o.mp4"
    if case == "weights":
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(b"not an onnx model" * 100)
        args = ["--backend", "rvm", "--rvm-weights", str(bad)]
        said = "not a usable RVM model"
    elif case == "mask":
        args = ["--mask", str(tmp_path / "mk" / "%03d.png")]
        said = "does not exist"
    else:  # a mask video: it was called "input"
        args = ["--mask", str(tmp_path / "masks.mkv")]
        said = f"--mask: {tmp_path / 'masks.mkv'} does not exist"
    assert main(["--input", str(video), "--output", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert said in error_line(err)
    assert [ln for ln in err.splitlines() if ln.strip()] == [error_line(err)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", *(["bad.onnx"] if case == "weights" else [])])


@pytest.mark.parametrize("flag", ["--output", "--save-mask", "--stats-json"])
def test_an_existing_folder_given_as_a_file_output_says_so(video, mask, tmp_path, capsys, flag):
    """A folder named without its slash is called a folder (it was "no ending is not one of the
    videos it can write"), exit 2, before anything is read."""
    folder = tmp_path / "odir"
    folder.mkdir()
    args = ["--input", str(video), "--mask", str(mask), flag, str(folder)]
    if flag != "--output":
        args += ["--output", str(tmp_path / "o.mp4")]
    assert main(args) == 2
    assert f"{flag} {folder} is a folder; give a file name" in error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", "m.png", "odir"])


def test_a_stop_signal_while_a_runtime_imports_is_an_interrupt_not_a_missing_package(monkeypatch):
    """A SIGTERM while ONNX Runtime imported came out of its C extension as "ImportError: import
    numpy failed", told as "the rvm backend needs ONNX Runtime: pip install onnxruntime" (exit 1)."""
    import importlib

    from livebokeh import interrupts
    from livebokeh.errors import ModelError
    from livebokeh.segment.rvm import import_onnxruntime

    def interrupted(name):
        interrupts.note_stop(signal.SIGTERM)  # the handler ran inside the import
        raise ImportError("import numpy failed")

    monkeypatch.setattr(importlib, "import_module", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_onnxruntime()

    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", missing)  # no signal this time: a missing package
    with pytest.raises(ModelError, match="needs ONNX Runtime"):
        import_onnxruntime()


def test_sighup_while_a_live_run_is_built_reloads_once_it_runs():
    """SIGHUP (`systemctl --user reload`) while a live run loaded its model stopped it (exit 130,
    the service then left stopped as a clean exit); once loaded it reloads. It reloads in both."""
    import threading

    from livebokeh.cli import _StopSignals
    from tests.conftest import until

    reloaded = threading.Event()
    with _StopSignals() as signals:
        signals.hup_waits = True  # (as _run_one sets it for a live run before open_run)
        os.kill(os.getpid(), signal.SIGHUP)  # no KeyboardInterrupt
        assert signals.received == []
        with signals.stopping(_FakePipeline(), reload=reloaded.set):
            until(reloaded.is_set, "the settings read again")
        assert signals.received == []
    with _StopSignals(), pytest.raises(KeyboardInterrupt):  # a file's run: SIGHUP stops it, as before
        os.kill(os.getpid(), signal.SIGHUP)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("what", ["fifo", "folder", "link"])
@pytest.mark.parametrize("flag", ["--output", "--save-mask"])
def test_odd_things_at_another_runs_temporary_names_are_left_alone(video, mask, tmp_path, capsys, what, flag):
    """A FIFO at `.NAME.livebokeh-tmp-PID.EXT` hung the run (its stale-file check opened it,
    blocking); a folder there was an internal error (IsADirectoryError) for a pattern, and a
    folder or a link was 'kept' as the run's partial ('a run that was killed left ...'). Only a
    regular file is a run's temporary file; anything else there is left alone, unopened."""
    from livebokeh.sinks.files import TEMP_TAG

    out = tmp_path / "out"
    out.mkdir()
    target = out / ("o.mp4" if flag == "--output" else "%03d.png")
    odd = out / (f".o{TEMP_TAG}-999999.mp4" if flag == "--output" else f".001{TEMP_TAG}-999999.png")
    if what == "fifo":
        os.mkfifo(odd)
    elif what == "folder":
        odd.mkdir()
    else:
        odd.symlink_to(video)
    assert main(["--input", str(video), "--mask", str(mask), flag, str(target), "-q"]) == 0
    err = capsys.readouterr().err
    assert "internal error" not in err and "killed" not in err
    assert os.path.lexists(odd) and not list(out.glob("*partial*"))


@pytest.mark.parametrize("bad", ["background", "mask"])
def test_a_batch_with_a_bad_background_or_missing_masks_says_so_once(video, tmp_path, capsys, bad):
    """A bad --background (or a missing --mask) in a batch was the same line for every input, exit 1,
    where a single input is refused with exit 2 (the background; the masks: 1, as a model's)."""
    second = tmp_path / "second.mp4"
    shutil.copy(video, second)
    out = tmp_path / "out"
    out.mkdir()
    args = (["--background", str(tmp_path / "nobg.png"), "--effect", "replace", "--mask", str(tmp_path / "in.mp4")]
            if bad == "background" else ["--mask", str(tmp_path / "masks" / "%03d.png")])
    code = main(["--input", str(video), str(second), "--output-dir", str(out), *args])
    err = capsys.readouterr().err
    assert code == (2 if bad == "background" else 1)
    assert "none of the 2 inputs was processed" in error_line(err) and list(out.iterdir()) == []
