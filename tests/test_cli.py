"""End to end through the ``livebokeh`` command, on real clips and photos from ../shared/data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from livebokeh.cli import build_parser, main
from livebokeh.threads import cpu_cores
from tests.conftest import REPO, iou, probe_video


def run_cli(*args: str) -> tuple[int, str]:
    """The command in a fresh process (as a user runs it): exit code and stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "livebokeh", *args], capture_output=True, text=True, env=env, timeout=240)
    return proc.returncode, proc.stderr


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("livebokeh: error")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_help_is_instant_and_imports_nothing_heavy():
    code = (
        "import sys, time; t = time.perf_counter(); from livebokeh import cli; cli.build_parser().format_help();"
        "heavy = [m for m in ('cv2', 'av', 'numpy', 'tensorflow', 'mediapipe', 'ai_edge_litert') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.stdout.strip() == "[]", out


def test_video_in_portrait_video_out(clip, tmp_path):
    out, masks = tmp_path / "talk_portrait.mp4", tmp_path / "masks.mkv"
    stats = tmp_path / "stats.json"
    code, err = run_cli("--input", str(clip), "--output", str(out), "--save-mask", str(masks),
                        "--stats", "--stats-json", str(stats))
    assert code == 0, err
    src, dst, m = probe_video(clip), probe_video(out), probe_video(masks)
    assert dst["codec"] == "h264"
    assert (dst["frames"], dst["width"], dst["height"], dst["fps"]) == (src["frames"], src["width"], src["height"], src["fps"])
    assert (m["codec"], m["frames"]) == ("ffv1", src["frames"])
    report = json.loads(stats.read_text())
    assert report["frames_in"] == report["frames_out"] == src["frames"] and report["dropped"] == 0
    # the sound is kept, as long as the video (within 50 ms)
    from tests.sinks.test_video import _audio_info

    (codec, seconds), = _audio_info(out)
    (_, src_seconds), = _audio_info(clip)
    assert codec == "aac" and abs(seconds - src_seconds) < 0.05
    assert "latency capture->sink" in err
    # the output differs from the input in the background only: mean mask covers a head and shoulders
    coverage = np.mean([g.mean() / 255 for g in m["gray"]])
    assert 0.1 < coverage < 0.8


def test_deeplab_backend_offline_with_shared_weights(clip, deeplab_weights, tmp_path):
    out, masks = tmp_path / "dl.mp4", tmp_path / "dl_masks.mkv"
    code, err = run_cli("--backend", "deeplab", "--deeplab-weights", str(deeplab_weights),
                        "--input", str(clip), "--output", str(out), "--save-mask", str(masks), "--max-frames", "30")
    assert code == 0, err
    assert "deeplab: DeepLab-v3+, tflite on the CPU, input 257x257" in err  # the shipped decoder on the release
    assert ("model runs on 2 threads side by side" in err) == (cpu_cores() >= 2)  # a file, a heavy model
    assert probe_video(out)["frames"] == 30
    coverage = np.mean([g.mean() / 255 for g in probe_video(masks)["gray"]])
    assert 0.1 < coverage < 0.8


def test_rvm_backend_offline_for_a_clip_and_a_photo(clip, data_dir, rvm_weights, tmp_path):
    """RVM in files: every frame through the model, in order, on one worker; its soft matte
    kept (no stretch); a photo from a fresh memory. And the same masks on every run."""
    out, masks, stats = tmp_path / "rvm.mp4", tmp_path / "rvm_masks.mkv", tmp_path / "s.json"
    code, err = run_cli("--backend", "rvm", "--rvm-weights", str(rvm_weights), "--input", str(clip),
                        "--output", str(out), "--save-mask", str(masks), "--max-frames", "20",
                        "--stats-json", str(stats), "-v")
    assert code == 0, err
    assert "rvm: CPU, input long side 640, backbone 384" in err and "side by side" not in err
    report = json.loads(stats.read_text())
    assert report["frames_out"] == 20 and report["dropped"] == 0 and report["propagated"] == 0
    assert next(s for s in report["stages"] if s["name"] == "inference")["frames"] == 20
    gray = np.stack(probe_video(masks)["gray"])
    assert gray.shape[0] == 20 and 0.1 < gray.mean() / 255 < 0.8
    soft = ((gray > 12) & (gray < 243)).mean()
    assert soft > 0.003  # a matte: hair and edges partly transparent
    again = tmp_path / "again.mkv"
    assert main(["--backend", "rvm", "--rvm-weights", str(rvm_weights), "--input", str(clip),
                 "--save-mask", str(again), "--max-frames", "20", "-q"]) == 0
    np.testing.assert_array_equal(np.stack(probe_video(again)["gray"]), gray)
    photo = sorted((data_dir / "portraits").glob("p_*.jpg"))[0]
    ref = cv2.imread(str(photo.with_suffix(".png")), cv2.IMREAD_GRAYSCALE) > 127
    mask = tmp_path / "p_mask.png"
    assert main(["--backend", "rvm", "--rvm-weights", str(rvm_weights), "--input", str(photo),
                 "--output", str(tmp_path / "p.jpg"), "--save-mask", str(mask), "-q"]) == 0
    assert iou(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 127, ref) > 0.9


def test_rvm_without_weights_or_network_says_what_to_do(clip, tmp_path, monkeypatch, capsys, no_rvm_weights):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["--backend", "rvm", "--input", str(clip), "--output", str(tmp_path / "o.mp4")]) == 1
    line = error_line(capsys.readouterr().err)
    assert "livebokeh models download rvm" in line and "--rvm-weights FILE" in line and "LIVEBOKEH_RVM_WEIGHTS" in line
    assert list(tmp_path.iterdir()) == []  # nothing half-made is left


def test_masks_are_identical_on_every_run(clip, tmp_path):
    runs = []
    for i in range(2):
        path = tmp_path / f"m{i}.mkv"
        assert main(["--input", str(clip), "--save-mask", str(path), "--max-frames", "40", "-q"]) == 0
        runs.append(np.stack(probe_video(path)["gray"]))
    assert runs[0].shape[0] == 40
    np.testing.assert_array_equal(runs[0], runs[1])


def _laplacian_var(img: np.ndarray, region: np.ndarray) -> float:
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    return float(lap[region].var())


def test_photo_keeps_the_person_sharp_and_blurs_the_background(data_dir, tmp_path):
    ratios = []
    for photo in sorted((data_dir / "portraits").glob("p_*.jpg"))[:4]:
        ref = cv2.imread(str(photo.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
        out = tmp_path / f"{photo.stem}_portrait.jpg"
        assert main(["--input", str(photo), "--output", str(out), "-q"]) == 0
        src, dst = cv2.imread(str(photo)), cv2.imread(str(out))
        assert dst.shape == src.shape
        inside = cv2.erode((ref > 230).astype(np.uint8), np.ones((15, 15))) > 0
        outside = cv2.erode((ref < 25).astype(np.uint8), np.ones((25, 25))) > 0
        keep_in = _laplacian_var(dst, inside) / _laplacian_var(src, inside)
        keep_out = _laplacian_var(dst, outside) / _laplacian_var(src, outside)
        assert keep_in > 0.8, (photo.name, keep_in)  # JPEG re-encoding costs a little
        ratios.append(keep_out)
    assert max(ratios) < 0.35, ratios


def test_save_mask_iou_on_half_body_stills(half_body_stills, tmp_path):
    """IoU of --save-mask (alpha > 0.5) against the reference masks of the half-body subset."""
    scores = []
    for photo, ref in half_body_stills:
        out = tmp_path / f"{photo.stem}.png"
        assert main(["--input", str(photo), "--save-mask", str(out), "-q"]) == 0
        mask = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
        gt = cv2.imread(str(ref), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == gt.shape
        scores.append(iou(mask > 127, gt > 127))
    mean = float(np.mean(scores))
    print(f"\nhalf-body stills: {len(scores)} photos, mean IoU {mean:.4f}, median {np.median(scores):.4f}")
    assert mean > 0.90


def test_replace_background_with_a_colour(data_dir, tmp_path):
    photo = sorted((data_dir / "portraits").glob("p_*.jpg"))[0]
    ref = cv2.imread(str(photo.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
    out = tmp_path / "green.png"
    assert main(["--input", str(photo), "--output", str(out), "--effect", "replace", "--background", "#00ff00", "-q"]) == 0
    img = cv2.imread(str(out)).astype(int)
    bg = cv2.erode((ref < 10).astype(np.uint8), np.ones((31, 31))) > 0
    green = (img[..., 1] > 200) & (img[..., 0] < 60) & (img[..., 2] < 60)
    assert green[bg].mean() > 0.95
    person = cv2.erode((ref > 245).astype(np.uint8), np.ones((31, 31))) > 0
    assert green[person].mean() < 0.02


def test_rerender_from_saved_masks(clip, tmp_path):
    masks = tmp_path / "m" / "%04d.png"
    masks.parent.mkdir()
    first, second = tmp_path / "a.mp4", tmp_path / "b.mkv"
    assert main(["--input", str(clip), "--output", str(first), "--save-mask", str(masks), "--max-frames", "12", "-q"]) == 0
    assert len(list(masks.parent.glob("*.png"))) == 12
    # the same masks, other settings: no segmenter runs
    assert main(["--input", str(clip), "--mask", str(masks), "--output", str(second), "--save-mask",
                 str(tmp_path / "again.mkv"), "--max-frames", "12", "--blur", "0.06", "-q"]) == 0
    again = probe_video(tmp_path / "again.mkv")["gray"]
    for i, g in enumerate(again):
        saved = cv2.imread(str(masks).replace("%04d", f"{i + 1:04d}"), cv2.IMREAD_GRAYSCALE)  # counted from 1
        assert np.abs(g.astype(int) - saved.astype(int)).max() <= 1  # taken as the final alpha
    assert probe_video(second)["frames"] == 12
    # a mask video works the same way
    assert main(["--input", str(clip), "--mask", str(tmp_path / "again.mkv"), "--save-mask",
                 str(tmp_path / "third.mkv"), "--max-frames", "12", "-q"]) == 0
    third = probe_video(tmp_path / "third.mkv")["gray"]
    assert all(np.array_equal(a, b) for a, b in zip(again, third))


def _laplacian(img: np.ndarray) -> np.ndarray:
    return cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F)


def test_live_path_into_a_virtual_camera(clip, memory_vcam, tmp_path, monkeypatch):
    """A video without --output is played like a camera (paced) into the live outputs. Live, a
    frame may be dropped wherever a stage is behind (how many depends on the machine's load),
    so the camera gets the newest frames: every one captured is sent or counted as dropped,
    those sent go in order, unchanged, each the blurred picture of its own frame, and the
    last frame always arrives."""
    from livebokeh.bench.common import video_frames
    from livebokeh.sinks import decoupled

    made = []

    class Recorded(decoupled.Decoupled):
        """The virtual camera's own thread, noting each composite it hands to the camera."""

        def __init__(self, inner):
            self.sent, send = [], inner.write

            def write(item):
                send(item)
                self.sent.append(item)

            inner.write = write
            super().__init__(inner)
            made.append(self)

    monkeypatch.setattr(decoupled, "Decoupled", Recorded)
    stats = tmp_path / "s.json"
    assert main(["--input", str(clip), "--vcam-backend", "memory", "--no-preview", "--max-frames", "20", "-q",
                 "--stats-json", str(stats)]) == 0
    report = json.loads(stats.read_text())
    (cam,), (vcam,) = memory_vcam, made
    assert cam.closed
    # every captured frame reached the camera or was counted as dropped: in the pipeline, or
    # replaced by a newer one before the camera's thread took it
    # (frames the clip, played as a camera, passed over while the reader was busy count as dropped)
    assert report["frames_in"] >= 20 and report["frames_out"] + report["dropped"] == report["frames_in"]
    assert len(cam.frames) == len(vcam.sent) == report["frames_out"] - vcam.dropped >= 1
    indexes = [c.frame.index for c in vcam.sent]
    # in order, once each, numbered as the clip numbers them; the end never dropped
    assert indexes == sorted(set(indexes)) and indexes[-1] == report["frames_in"] - 1
    source = video_frames(clip, 20)
    for sent, picture in zip(vcam.sent, cam.frames):
        assert picture.shape == (512, 512, 3)
        np.testing.assert_array_equal(picture, sent.image)  # the rendered picture, as it was
        original = source[sent.frame.index]
        assert np.abs(sent.frame.image.astype(int) - original).max() <= 8  # its own frame of the clip
        # blurred where the mask says background (all of it before the model's first mask)
        background = cv2.erode((sent.alpha.data < 0.02).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        assert background.mean() > 0.1
        blurred = _laplacian(picture)[background].var() / _laplacian(original)[background].var()
        assert blurred < 0.5, (sent.frame.index, blurred)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        # a file or device that fails: 1
        (["--camera", "/dev/video-none", "--no-preview", "--no-virtual-camera"], "camera /dev/video-none could not be opened", 1),
        (["--input", "missing.mp4", "--output", "o.mp4"], "input missing.mp4 does not exist", 1),
        (["--effect", "replace", "--background", "green", "--input", "x.jpg", "--output", "y.jpg"], "does not exist", 1),
        # what the command line asks cannot be done: 2, as argparse's own errors
        (["--config", "nope"], "neither a file nor a preset", 2),
        (["--effect", "replace", "--input", "x.jpg", "--output", "y.jpg"], "effect 'replace' needs a background", 2),
        # a flag's value is named by the flag the user typed
        (["--blur", "5"], "error: --blur must be a number from 0 to 0.25, got 5.0", 2),
        (["--backend", "yolo"], "error: --backend must be one of: mediapipe, deeplab", 2),
        (["--max-frames", "0"], "--max-frames must be at least 1", 2),
        (["--effect", "sparkle"], "error: --effect must be one of: blur, replace, none", 2),
        (["--mask-low", "0.7", "--mask-high", "0.3"], "error: --mask-low (0.7) must be smaller than --mask-high (0.3)", 2),
        # one of them given, the other automatic for the backend: named by the flags, before a model loads
        (["--mask-high", "0.2", "--backend", "mediapipe"], ("error: --mask-high 0.2 must be above --mask-low, which is "
         "0.4 for the mediapipe backend (automatic); give --mask-low as well, or a --mask-high above 0.4"), 2),
        (["--mask-low", "0.9", "--backend", "deeplab", "--print-config"], ("error: --mask-low 0.9 must be below "
         "--mask-high, which is 0.6 for the deeplab backend (automatic)"), 2),
        (["--mask", "m.png", "--mask-low", "1", "--input", "x.jpg", "--output", "y.jpg"], ("--mask-low 1 must be "
         "below --mask-high, which is 1 for masks given with --mask (automatic)"), 2),
        # only -1 is automatic
        (["--mask-high", "-0.5"], "error: --mask-high (-0.5) must be from 0 to 1, or -1 for automatic", 2),
        (["--mask-low", "-0.01", "--print-config"], "error: --mask-low (-0.01) must be from 0 to 1, or -1", 2),
        (["--fourcc", "ab"], "error: --fourcc must be 4 characters", 2),
        (["--no-roi", "--quality", "best", "--lookahead", "9"], "error: --lookahead must be a number from -1 to 8", 2),
        # RVM's backbone: 0 (automatic) or what the network can use
        (["--backbone", "1"], "error: --backbone must be 0 or a number from 64 to 2048, got 1", 2),
        (["--backbone", "63"], "error: --backbone must be 0 or a number from 64 to 2048, got 63", 2),
        # a background given is meant to be seen: beside another effect it is refused
        (["--background", "red", "--effect", "blur"], "--background red is shown only with --effect replace", 2),
        (["--background", "red", "--effect", "none"], "not --effect none; leave out --effect", 2),
        # a virtual camera backend this system lacks is a wrong setting, told before the camera opens
        (["--vcam-backend", "obs", "--no-preview"], "virtual camera backend 'obs' (--vcam-backend, "
                                                    "virtual_camera.backend) is not available on", 2),
        (["--vcam-backend", "unitycapture", "--on-demand", "--no-preview"], "backend 'unitycapture'", 2),
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(args, message, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == code
    assert message in error_line(capsys.readouterr().err)


def test_unknown_config_key_is_named(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[render]\nstrength = 3\n")
    assert main(["--config", str(cfg)]) == 2
    assert "unknown key 'render.strength'; allowed keys in [render]: effect, blur" in error_line(capsys.readouterr().err)


def test_a_settings_file_value_is_named_by_its_key_a_flag_value_by_its_flag(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[render]\nblur = 5\n[mask]\nhigh = 0.3\n[rvm]\nbackbone = 1\n")
    assert main(["--config", str(cfg), "--print-config"]) == 2
    assert f"error: {cfg}: render.blur must be a number from 0 to 0.25, got 5" in error_line(capsys.readouterr().err)
    cfg.write_text("[mask]\nhigh = 0.3\n")
    assert main(["--config", str(cfg), "--mask-low", "0.7", "--print-config"]) == 2  # one from each
    assert "error: --mask-low (0.7) must be smaller than mask.high (0.3)" in error_line(capsys.readouterr().err)
    cfg.write_text('[segmenter]\nbackend = "mediapipe"\n[mask]\nhigh = 0.3\n')
    assert main(["--config", str(cfg), "--print-config"]) == 2  # the automatic low is 0.4 for it
    assert "error: mask.high 0.3 must be above mask.low, which is 0.4 for the mediapipe backend" in error_line(
        capsys.readouterr().err)
    assert main(["--config", str(cfg), "--backend", "rvm", "--print-config"]) == 0  # 0 for RVM's alpha
    capsys.readouterr()
    cfg.write_text("[rvm]\nbackbone = 1\n")
    assert main(["--config", str(cfg), "--print-config"]) == 2
    assert f"{cfg}: rvm.backbone must be 0 or a number from 64 to 2048, got 1" in error_line(capsys.readouterr().err)
    # the flag wins over the file, so the file's value is never checked against the flag's name
    cfg.write_text("[render]\nblur = 0.1\n")
    assert main(["--config", str(cfg), "--blur", "-1", "--print-config"]) == 2
    assert "error: --blur must be a number from 0 to 0.25, got -1.0" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize(("flags", "effect", "background"), [
    (["--background", "red"], "replace", "red"),  # given: used
    (["--background", "red", "--effect", "replace"], "replace", "red"),
    (["--config", "call", "--background", "#00ff00"], "replace", "#00ff00"),  # over a preset's effect
    (["--background", ""], "blur", ""),  # emptied: nothing to show
    (["--effect", "none"], "none", ""),
])
def test_a_background_given_on_the_command_line_is_used(flags, effect, background, capsys):
    import tomllib

    assert main([*flags, "--print-config"]) == 0
    render = tomllib.loads(capsys.readouterr().out)["render"]
    assert (render["effect"], render["background"]) == (effect, background)


def test_a_background_from_a_settings_file_waits_for_the_e_key(tmp_path, capsys):
    """In a settings file a background beside effect blur is the one the preview's e key brings."""
    import tomllib

    cfg = tmp_path / "c.toml"
    cfg.write_text('[render]\neffect = "blur"\nbackground = "red"\n')
    assert main(["--config", str(cfg), "--print-config"]) == 0
    render = tomllib.loads(capsys.readouterr().out)["render"]
    assert (render["effect"], render["background"]) == ("blur", "red")


def test_file_mistakes(clip, data_dir, tmp_path, capsys):
    assert main(["--input", str(clip), "--output", str(tmp_path / "r.mp4"), "--effect", "replace"]) == 2
    assert "needs a background" in error_line(capsys.readouterr().err)
    photo = next((data_dir / "stills").glob("*.jpg"))
    assert main(["--input", str(photo)]) == 2
    assert "an image input needs --output" in error_line(capsys.readouterr().err)
    assert main(["--input", str(clip), "--output", str(clip)]) == 2
    assert "would replace the input" in error_line(capsys.readouterr().err)
    assert main(["--input", str(clip), "--output", str(tmp_path / "x.png")]) == 2
    assert "--output " in (line := error_line(capsys.readouterr().err)) and ".png is not one of the videos" in line
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n" * 20)
    assert main(["--input", str(bad), "--output", str(tmp_path / "o.mp4")]) == 1
    assert "cannot read" in error_line(capsys.readouterr().err)


def test_no_virtual_camera_says_how_to_load_one(clip):
    # this machine has no v4l2loopback device: found before anything opens (exit 3), or, where
    # sysfs does not say, when the real backend fails (exit 1)
    code, err = run_cli("--input", str(clip), "--no-preview", "--max-frames", "5")
    line = error_line(err)
    assert code == (3 if os.path.isdir("/sys/module") else 1), err
    assert "no virtual camera" in line and "--no-virtual-camera" in line
    if sys.platform.startswith("linux"):
        assert "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=livebokeh" in line


#: ``livebokeh`` as a user runs it, but its input cannot end before the stop signal: the read of
#: frame HELD says so and waits until the pipeline is asked to stop, however slowly the signal lands.
HELD_RUN = """
import sys, time
from pathlib import Path
from livebokeh.cli import main
from livebokeh.sources.video import VideoFileSource

HELD, GO = {held}, Path({go!r})
read = VideoFileSource.read

def held_read(self):  # a slow input: frame HELD comes once the test says so
    if self._index == HELD:
        print("held at frame", HELD, file=sys.stderr, flush=True)
        while not GO.exists():
            time.sleep(0.01)
    return read(self)

VideoFileSource.read = held_read
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT])  # SIGQUIT: Ctrl-\\, next to Ctrl-C
def test_interrupt_finalises_the_recording(data_dir, tmp_path, sig):
    """The first Ctrl-C (or SIGTERM, or Ctrl-\\) stops reading the input; every frame read is still written
    and the recording is finalised, under a name that says it is partial. The input holds frame
    5 back until the command has said it is stopping, so the frames read are exactly 0..5 on any
    machine."""
    clip = data_dir / "videos" / "office720p.mp4"
    held = 5
    out, go = tmp_path / "cut.mp4", tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", HELD_RUN.format(held=held, go=str(go)), "--input", str(clip),
                             "--output", str(out), "-v"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        for line in proc.stderr:  # the read of frame 5 is under way: the pipeline runs
            seen.append(line)
            if "held at frame" in line:
                break
        proc.send_signal(sig)
        for line in proc.stderr:  # the command took the signal: only then does frame 5 come
            seen.append(line)
            if "stopping: finishing the frames read" in line:
                break
        go.touch()
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    finally:
        go.touch()
        if proc.poll() is None:
            proc.kill()
    said = re.search(r"(?:interrupted|stopped) after (\d+) frames", rest)
    assert said and int(said[1]) == held + 1, rest
    # what was done is kept, playable, under a name that says it is partial
    partial = tmp_path / "cut.partial.mp4"
    assert not out.exists() and partial.exists()
    p = probe_video(partial)
    assert p["frames"] == held + 1  # every frame read, none after the signal
    assert p["codec"] == "h264" and (p["width"], p["height"]) == (1280, 720)


def test_corrupt_inputs_fail_in_one_line_and_keep_what_was_done(clip, tmp_path, capsys):
    full = tmp_path / "full.mkv"
    assert main(["--input", str(clip), "--output", str(full), "--max-frames", "90", "-q"]) == 0
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    assert main(["--input", str(cut), "--output", str(out)]) == 1
    assert "truncated" in error_line(capsys.readouterr().err)
    assert not out.exists() and 0 < probe_video(tmp_path / "out.partial.mp4")["frames"] < 90
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert main(["--input", str(empty), "--output", str(tmp_path / "e.mp4")]) == 1
    assert "is empty (0 bytes)" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "image",
    [np.full((1, 1, 3), 90, np.uint8), np.full((3000, 4000, 3), 90, np.uint8),
     np.full((50, 70), 90, np.uint8), np.full((50, 70, 4), 90, np.uint8)],
    ids=["1x1", "4000x3000", "gray", "rgba"],
)
def test_odd_images_work(tmp_path, image):
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    cv2.imwrite(str(src), image)
    assert main(["--input", str(src), "--output", str(out), "-q"]) == 0
    assert cv2.imread(str(out)).shape[:2] == image.shape[:2]


def test_several_inputs_and_an_image_folder(clip, data_dir, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sorted((data_dir / "stills").glob("hs_0[0-1]*.jpg"))[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    assert main(["--input", str(clip), str(folder), "--output-dir", str(out), "--max-frames", "10", "-q"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{clip.stem}_portrait.mp4"] + [f"{p.stem}_portrait.jpg" for p in folder.iterdir()])
    assert main(["--input", str(clip), str(folder)]) == 2
    assert "several inputs need --output-dir" in error_line(capsys.readouterr().err)


def test_existing_output_is_kept_without_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    assert main(["--input", str(clip), "--output", str(out), "--max-frames", "3"]) == 2
    assert "exists; pass --overwrite" in error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"keep me"
    assert main(["--input", str(clip), "--output", str(out), "--max-frames", "3", "--overwrite", "--no-audio",
                 "--quality", "best", "-q"]) == 0
    p = probe_video(out)
    assert p["frames"] == 3
    from tests.sinks.test_video import _audio_info

    assert _audio_info(out) == []


def test_alpha_output_for_editors(clip, tmp_path):
    alpha = tmp_path / "alpha" / "%03d.png"
    alpha.parent.mkdir()
    assert main(["--input", str(clip), "--alpha-output", str(alpha), "--max-frames", "4", "-q"]) == 0
    png = cv2.imread(str(alpha).replace("%03d", "002"), cv2.IMREAD_UNCHANGED)
    assert png.shape == (512, 512, 4)
    assert png[..., 3].max() == 255 and png[..., 3].min() == 0  # person opaque, background clear


def test_print_config_round_trips(tmp_path, capsys):
    assert main(["--config", "call", "--blur", "0.05", "--print-config"]) == 0
    text = capsys.readouterr().out
    p = tmp_path / "c.toml"
    p.write_text(text)
    from livebokeh.config import load_config

    assert load_config(p) == load_config("call", {"render.blur": 0.05})


def test_print_config_refuses_a_value_a_settings_file_cannot_hold(tmp_path, capsys):
    """A non-UTF-8 file name (held with surrogate escapes) cannot be written as TOML: --print-config
    says so, naming the flag, instead of writing a file that --config then refuses."""
    name = os.fsdecode(b"v\xff.mp4")
    assert main(["--camera", name, "--print-config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    line = error_line(captured.err)
    assert "--camera" in line and "not UTF-8" in line and "rename it" in line
    assert main(["--camera", "v\u00e9.mp4", "--print-config"]) == 0  # UTF-8 names are written as they are
    assert 'device = "v\u00e9.mp4"' in capsys.readouterr().out
    assert main(["--camera", "a\x85b\x1bc", "--print-config"]) == 0  # control characters (C1 too) as TOML escapes
    assert 'device = "a\\u0085b\\u001bc"' in capsys.readouterr().out


def test_readme_documents_every_option_and_preset():
    readme = (REPO / "README.md").read_text()
    for action in build_parser()._actions:
        for opt in action.option_strings:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in readme, f"README does not document {opt}"
    for preset in ("call", "stream", "record", "default"):
        assert f"`{preset}`" in readme


def test_quality_best_sets_what_each_backend_needs_and_flags_still_win(capsys):
    def printed(*args):
        assert main([*args, "--print-config"]) == 0
        import tomllib

        return tomllib.loads(capsys.readouterr().out)

    mp = printed("--quality", "best", "--backend", "mediapipe")
    assert mp["mask"]["lookahead"] == 4 and mp["segmenter"]["roi"] is True and mp["mediapipe"]["model"] == "general"
    dl = printed("--quality", "best", "--backend", "deeplab")
    assert (dl["deeplab"]["size"], dl["deeplab"]["aspect"]) == (513, "frame")
    rvm = printed("--quality", "best")  # the default backend
    assert (rvm["segmenter"]["backend"], rvm["rvm"]["backbone"], rvm["rvm"]["size"]) == ("rvm", 512, 0)
    assert rvm["mask"]["lookahead"] == -1  # look-ahead measured no gain on RVM
    assert printed("--quality", "best", "--backend", "rvm", "--backbone", "448")["rvm"]["backbone"] == 448
    assert printed("--quality", "fast", "--lookahead", "3")["mask"]["lookahead"] == 3


def test_settings_flags_take_help_type_and_default_from_the_schema():
    """A flag that sets a settings key says what the key's schema says (meaning, accepted values,
    default): written once, in livebokeh.config, so --help cannot go stale."""
    from livebokeh.cli import _shown
    from livebokeh.config import describe_key

    settings = [a for a in build_parser()._actions if "." in a.dest]
    assert len(settings) > 40
    for action in settings:
        info = describe_key(action.dest)
        text = action.help.replace("%%", "%")
        assert text.startswith(info.doc), action.dest
        if _shown(info.default):
            assert text.endswith(f"default {_shown(info.default)}"), action.dest
        if isinstance(info.default, (int, float)) and not isinstance(info.default, bool):
            assert action.type is type(info.default), action.dest
    help_text = build_parser().format_help()
    assert "default 0.03" in help_text and "one of: blur, replace, none" in help_text


def test_depth_for_a_photo_and_a_clip_offline_with_the_model_given(clip, data_dir, depth_weights, tmp_path):
    """--depth on a photo (the person as without it, the background otherwise blurred) and on a
    clip (every frame, the same on every run), the model found through --depth-weights."""
    photo = data_dir / "portraits" / "p_0865636e.jpg"
    outs = {}
    for label, args in (("depth", ["--depth", "--depth-weights", str(depth_weights)]), ("plain", ["--no-depth"])):
        outs[label] = tmp_path / f"{label}.png"
        assert main(["--input", str(photo), "--output", str(outs[label]), "--backend", "mediapipe", "--light-wrap", "0",
                     "--save-mask", str(tmp_path / f"{label}_mask.png"), "-q", *args]) == 0
    depth, plain = cv2.imread(str(outs["depth"])), cv2.imread(str(outs["plain"]))
    mask = cv2.imread(str(tmp_path / "depth_mask.png"), cv2.IMREAD_GRAYSCALE)
    inside = cv2.erode((mask == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    np.testing.assert_array_equal(depth[inside], plain[inside])
    assert not np.array_equal(depth, plain)
    runs = []
    for i in range(2):
        out = tmp_path / f"clip{i}.mkv"
        assert main(["--input", str(clip), "--output", str(out), "--depth", "--max-frames", "12", "-q",
                     "--backend", "mediapipe", "--crf", "0"]) == 0
        runs.append(np.stack(probe_video(out)["gray"]))
    assert runs[0].shape[0] == 12
    np.testing.assert_array_equal(runs[0], runs[1])


def test_depth_live_into_a_virtual_camera(clip, depth_weights, memory_vcam, tmp_path):
    stats = tmp_path / "s.json"
    assert main(["--input", str(clip), "--vcam-backend", "memory", "--no-preview", "--max-frames", "20", "-q",
                 "--depth", "--backend", "mediapipe", "--stats-json", str(stats)]) == 0
    report = json.loads(stats.read_text())
    (cam,) = memory_vcam
    assert cam.closed and len(cam.frames) == report["frames_out"] >= 1
    assert report["frames_out"] + report["dropped"] == 20


def test_depth_without_its_model_or_network_says_what_to_do(clip, tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["--depth", "--backend", "mediapipe", "--input", str(clip), "--output", str(tmp_path / "o.mp4")]) == 1
    line = error_line(capsys.readouterr().err)
    assert "livebokeh models download depth" in line and "--depth-weights FILE" in line
    assert "LIVEBOKEH_DEPTH_WEIGHTS" in line and "--no-depth" in line
    assert list(tmp_path.iterdir()) == []  # nothing half-made is left


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_while_the_command_loads_is_its_one_line(monkeypatch, capsys, how):
    """Ctrl-C in the first moments (while livebokeh.cli and its imports load) was a KeyboardInterrupt
    traceback; SIGTERM, SIGHUP, Ctrl-\\ a silent 143/129/131. The entry point takes them in hand
    before the command loads."""
    import os
    import signal
    import sys

    from livebokeh import entry

    class Interrupting:  # the signal comes while livebokeh.cli is imported
        def find_spec(self, name, path=None, target=None):
            if name == "livebokeh.cli":
                os.kill(os.getpid(), getattr(signal, how))
            return None

    monkeypatch.delitem(sys.modules, "livebokeh.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert entry.main() == 130
    assert capsys.readouterr().err == "livebokeh: interrupted\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handed back


def test_a_sighup_as_the_command_loads_stops_a_files_run_but_not_a_live_one(tmp_path, capsys, monkeypatch):
    """A SIGHUP in a run's first moments (`systemctl --user reload` as the service starts) ended a
    live run (129, or 130 'interrupted'): it is kept until the command knows what it runs; a live
    run reads its settings as it starts anyway, a file's run stops (a closed terminal)."""
    from livebokeh import interrupts
    from livebokeh.cli import main

    monkeypatch.setattr(interrupts, "_hup_pending", [1])
    assert main(["--print-config"]) == 0  # live (no input): not stopped
    assert interrupts.take_hup() is False  # (taken)
    monkeypatch.setattr(interrupts, "_hup_pending", [1])
    assert main(["--input", str(tmp_path / "in.mp4"), "--output", str(tmp_path / "o.mp4")]) == 130
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(interrupts, "_hup_pending", [1])
    assert main(["models", "list"]) == 130  # another command: stopped, as on any SIGHUP


@pytest.mark.parametrize(("argv", "code"), [(["--print-config"], 0), (["models", "list"], 130)])
def test_a_signal_while_the_command_parses_its_flags_is_handled(monkeypatch, capsys, argv, code):
    """The entry point handed the signals back once livebokeh.cli had loaded, and the command took
    them only after parsing its flags: a SIGHUP or SIGTERM 55-70 ms in killed any run (129/143, no
    line). Its handling lasts until the command's own takes over: a SIGHUP is kept for a live run
    (it reads its settings anyway), and stops another command."""
    import os
    import signal
    import sys

    from livebokeh import cli, entry

    real = cli.build_parser

    def slow():  # the signal comes while the flags are parsed
        os.kill(os.getpid(), signal.SIGHUP)
        return real()

    monkeypatch.setattr(cli, "build_parser", slow)
    monkeypatch.setattr(sys, "argv", ["livebokeh", *argv])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):  # as a fresh process has them
        # (run as the command, a run leaves them ignored to its exit: put back after the test)
        monkeypatch.setattr(signal, "_saved_" + sig.name, signal.getsignal(sig), raising=False)
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    if argv[0] == "models":  # (its own parser: the signal as it starts)
        monkeypatch.setattr(cli, "COMMANDS", {**cli.COMMANDS})
        from livebokeh.commands import models as models_command

        real_main = models_command.main

        def hup_first(args):
            os.kill(os.getpid(), signal.SIGHUP)
            return real_main(args)

        monkeypatch.setattr(models_command, "main", hup_first)
    try:
        assert entry.main() == code
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, getattr(signal, "_saved_" + sig.name))
    if code == 130:
        assert "interrupted" in capsys.readouterr().err
