"""The control API of a running camera: every change shows in the virtual camera's frames (by
numbers), what cannot change live says so, state reads back, ``livebokeh ctl`` drives the same."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh.app import Job
from tests.conftest import FakeSource, synthetic_frame, until
from tests.control.conftest import Client, live_settings, outside_variance, person_of, started

pytestmark = pytest.mark.timeout(120)


def frames_after(cam, n: int = 3) -> list[np.ndarray]:
    """The next ``n`` frames the virtual camera gets from now on."""
    start = len(cam.frames)
    until(lambda: len(cam.frames) >= start + n, f"{n} more frames at the virtual camera")
    return cam.frames[start:start + n]


def test_state_reads_back_what_the_run_does(live):
    run, server, cam = live
    state = Client(server).json("GET", "/api/state")
    assert state["live"] is True and state["size"] == [160, 120] and state["backend"] == "mediapipe"
    assert state["virtual_camera"]["device"] == "memory0" and state["virtual_camera"]["readers"] is None
    assert state["paused"] is None and state["frames_out"] > 0
    assert {"fps", "cores", "model_rate", "controller", "dropped", "framing", "changes"} <= set(state)
    settings = Client(server).json("GET", "/api/settings")
    assert settings["settings"]["render.blur"] == 0.03
    assert settings["live"]["render.blur"] == "now" and settings["live"]["camera.width"] == "restart"
    assert settings["live"]["segmenter.backend"] == "swap" and settings["live"]["rvm.backbone"] == "swap"
    assert settings["schema"]["render.effect"]["choices"] == ["blur", "replace", "none"]


def test_blur_and_effect_change_the_frames_sent(live):
    run, server, cam = live
    c = Client(server)
    c.json("POST", "/api/settings", {"changes": {"render.effect": "none"}})
    sharp = frames_after(cam)[-1]
    base = outside_variance(sharp, person_of(sharp))
    done = c.json("POST", "/api/settings", {"changes": {"render.effect": "blur", "render.blur": 0.12}})
    assert done["applied"] == {"render.effect": "blur", "render.blur": 0.12}
    until(lambda: outside_variance(cam.frames[-1], person_of(cam.frames[-1])) < 0.2 * base, "a strongly blurred frame")
    assert run.settings().render.blur == 0.12


def test_background_colour_then_nothing_else_of_the_room_is_sent(live):
    run, server, cam = live
    c = Client(server)
    c.json("POST", "/api/settings", {"changes": {"render.background": "#ff0000", "render.effect": "replace"}})

    def red_outside() -> bool:
        img = cam.frames[-1]
        away = cv2.erode((~person_of(img)).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        return float(np.abs(img[away].astype(int) - [0, 0, 255]).mean()) < 3.0

    until(red_outside, "frames with the new background outside the person")


def test_pause_sends_a_still_or_a_blank_picture_then_the_camera_again(live):
    run, server, cam = live
    c = Client(server)
    state = c.json("POST", "/api/pause", {"mode": "still"})["state"]
    assert state["paused"] == "still"
    still = frames_after(cam, 6)
    assert all(np.array_equal(f, still[0]) for f in still)  # the square moves: a still is the same picture
    c.json("POST", "/api/pause", {"mode": "blank"})
    until(lambda: cam.frames[-1].max() == 0, "a blank frame")
    assert all(f.max() == 0 for f in frames_after(cam, 3))
    assert c.json("POST", "/api/resume", {})["state"]["paused"] is None
    until(lambda: cam.frames[-1].max() > 0, "the camera again")
    moving = frames_after(cam, 3)
    assert not np.array_equal(moving[0], moving[-1])


def test_mirror_flips_what_is_sent(live):
    run, server, cam = live
    c = Client(server)
    c.json("POST", "/api/settings", {"changes": {"render.effect": "none", "render.mirror": True}})
    room = synthetic_frame(0)[:, ::-1]
    rows = np.r_[0:25, 105:120]  # above and below the moving square: the room alone

    def mirrored() -> bool:
        return float(np.abs(cam.frames[-1][rows].astype(int) - room[rows]).mean()) < 1.0

    until(mirrored, "a mirrored frame")
    c.json("POST", "/api/settings", {"changes": {"render.mirror": False}})
    until(lambda: float(np.abs(cam.frames[-1][rows].astype(int) - synthetic_frame(0)[rows]).mean()) < 1.0,
          "an unmirrored frame")


def test_framing_and_zoom_change_live(live):
    run, server, cam = live
    c = Client(server)
    done = c.json("POST", "/api/settings", {"changes": {"framing.enabled": True, "framing.zoom_max": 3.0}})
    assert done["applied"] == {"framing.enabled": True, "framing.zoom_max": 3.0}
    until(lambda: c.json("GET", "/api/state")["framing"] != "off", "the operator at work")
    assert run.controls.framing_cfg.zoom_max == 3.0


def test_what_cannot_change_live_says_so_and_nothing_changes(live):
    run, server, cam = live
    c = Client(server)
    before = run.controls.changes
    status, _, body = c.post("/api/settings", {"changes": {"render.blur": 0.1, "camera.width": 640}})
    assert status == 409
    reply = json.loads(body)
    assert "camera.width cannot change while livebokeh runs: restart it" in reply["error"] and reply["restart"]
    assert run.settings().render.blur == 0.03 and run.controls.changes == before  # all or nothing
    status, _, body = c.post("/api/settings", {"changes": {"render.blurr": 0.1}})
    assert status == 400 and "allowed keys in [render]: effect, blur" in json.loads(body)["error"]
    status, _, body = c.post("/api/settings", {"changes": {"render.blur": 7}})
    assert status == 400 and "render.blur must be a number from 0 to 0.25, got 7" in json.loads(body)["error"]
    status, _, body = c.post("/api/settings", {"changes": {"render.effect": "replace"}})
    assert status == 400 and "needs a background" in json.loads(body)["error"]
    status, _, body = c.post("/api/settings", {"changes": {"rvm.backbone": 320}})
    assert status == 400 and "does not apply to the mediapipe backend in use" in json.loads(body)["error"]
    assert run.controls.changes == before


@pytest.mark.parametrize("key", ["rvm.weights", "deeplab.weights", "deeplab.decoder_weights", "render.depth_weights",
                                 "camera.device", "virtual_camera.device", "control.backgrounds"])
def test_no_request_names_a_file_the_run_opens(live, tmp_path, key):
    """A weights file, the depth model, a device or a folder over the API: refused before the run
    looks at it, with the same answer whether the path exists or not (no probe of the user's
    files), and nothing changes; emptied (the default), or the value it has, passes."""
    run, server, _cam = live
    c = Client(server)
    before = (run.controls.changes, run.settings())
    replies = set()
    for value in ("/etc/hostname", str(tmp_path / "none.onnx"), "/etc"):
        changes = {key: value, **({"segmenter.backend": "rvm"} if key == "rvm.weights" else {})}
        status, _, body = c.post("/api/settings", {"changes": changes})
        assert status == 400, body
        replies.add(json.loads(body)["error"])
    assert len(replies) == 1 and f"{key} names a file, which the control API does not set" in replies.pop()
    assert (run.controls.changes, run.settings()) == before
    old_names = {"rvm.weights": "segmenter.rvm_weights", "deeplab.weights": "segmenter.weights"}
    if key in old_names:  # [segmenter]'s old name for the key: no way around the check
        status, _, body = c.post("/api/settings", {"changes": {old_names[key]: "/etc/hostname"}})
        assert status == 400 and f"{old_names[key]} has moved to {key}; use that key" in json.loads(body)["error"]
        assert (run.controls.changes, run.settings()) == before
    section, _, name = key.partition(".")
    now = getattr(getattr(run.settings(), section), name)
    status, _, body = c.post("/api/settings", {"changes": {key: now}})  # the value it has is no new path
    assert "names a file" not in body.decode()


def test_the_settings_file_read_again_applies_what_changes_live(live, tmp_path):
    from livebokeh.config import load_config

    run, server, cam = live
    mine = tmp_path / "mine.toml"
    mine.write_text('[segmenter]\nbackend = "mediapipe"\n[render]\nblur = 0.08\nmirror = true\n'
                    '[camera]\nwidth = 640\n[virtual_camera]\nbackend = "memory"\n[preview]\nenabled = false\n')
    lines = run.reload(load_config(mine))
    assert run.settings().render.blur == 0.08 and run.settings().render.mirror is True
    assert lines == ["camera.width changed in the settings file: restart livebokeh to apply it"]


def test_a_run_of_given_masks_has_no_model_to_swap(memory_vcam, tmp_path):
    from tests.control.conftest import write_clip

    clip = write_clip(tmp_path / "camera.mp4", frames=300, size=(160, 120))
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.full((120, 160), 255, np.uint8))
    with started(live_settings(), Job(input=str(clip), mask=str(mask))) as (run, server):
        status, _, body = Client(server).post("/api/settings", {"changes": {"segmenter.backend": "rvm"}})
        assert status == 409 and "restart livebokeh to apply it" in json.loads(body)["error"]
        assert Client(server).json("POST", "/api/settings", {"changes": {"render.blur": 0.1}})["applied"]


def test_keep_as_defaults_edits_the_settings_file_and_asks_before_replacing_it(memory_vcam, tmp_path):
    mine = tmp_path / "mine.toml"
    text = '# my settings\n[segmenter]\nbackend = "mediapipe"  # light\n\n[render]\n# how much\nblur = 0.03\n'
    mine.write_text(text)
    cfg = live_settings()
    job = Job(config_files=(str(mine),))
    with started(cfg, job, source=FakeSource(count=10**7, live=True, fps=60)) as (run, server):
        c = Client(server)
        c.json("POST", "/api/settings", {"changes": {"render.blur": 0.07, "framing.enabled": True}})
        status, _, body = c.post("/api/defaults", {"overwrite": False})
        reply = json.loads(body)
        assert status == 409 and reply["exists"] and reply["path"] == str(mine)
        assert mine.read_text() == text  # not asked yet: untouched
        done = c.json("POST", "/api/defaults", {"overwrite": True})
        assert done["path"] == str(mine) and done["written"]["render.blur"] == 0.07
    new = mine.read_text()
    assert new.startswith("# my settings\n") and "# how much\nblur = 0.07\n" in new and "# light" in new
    assert "[framing]\nenabled = true\n" in new
    from livebokeh.config import load_config

    again = load_config(mine)
    assert again.render.blur == 0.07 and again.framing.enabled and again.segmenter.backend == "mediapipe"


def test_keep_as_defaults_edits_a_linked_settings_file_where_it_points(memory_vcam, tmp_path):
    """A settings file kept in a dotfiles repository and linked: the link was replaced by a new
    file (0644), the repository's file left as it was. It is edited where the link points, the
    link kept, its permissions kept."""
    import os
    import stat

    (tmp_path / "dotfiles").mkdir()
    real = tmp_path / "dotfiles" / "lb.toml"
    real.write_text("# kept in git\n[render]\nblur = 0.04\n")
    real.chmod(0o600)
    link = tmp_path / "link.toml"
    link.symlink_to(os.path.relpath(real, tmp_path))
    with started(live_settings(), Job(config_files=(str(link),)),
                 source=FakeSource(count=10**7, live=True, fps=60)) as (_run, server):
        c = Client(server)
        c.json("POST", "/api/settings", {"changes": {"render.blur": 0.08}})
        done = c.json("POST", "/api/defaults", {"overwrite": True})
        assert done["path"] == str(link) and done["written"]["render.blur"] == 0.08
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert "# kept in git" in real.read_text() and "blur = 0.08" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "dotfiles").iterdir() if p.name != "lb.toml"]  # no temporary file left


def test_keep_as_defaults_edits_a_hard_linked_settings_file_for_all_its_names(memory_vcam, tmp_path):
    import os

    (tmp_path / "dotfiles").mkdir()
    real = tmp_path / "dotfiles" / "lb.toml"
    real.write_text("# kept in git\n[render]\nblur = 0.04\n")
    hard = tmp_path / "hard.toml"
    os.link(real, hard)
    inode = real.stat().st_ino
    with started(live_settings(), Job(config_files=(str(hard),)),
                 source=FakeSource(count=10**7, live=True, fps=60)) as (_run, server):
        c = Client(server)
        c.json("POST", "/api/settings", {"changes": {"render.blur": 0.08}})
        c.json("POST", "/api/defaults", {"overwrite": True})
    assert hard.stat().st_ino == real.stat().st_ino == inode and real.stat().st_nlink == 2
    assert "# kept in git" in real.read_text() and "blur = 0.08" in real.read_text()


def test_keep_as_defaults_writes_the_users_settings_file_when_the_run_has_none(memory_vcam, tmp_path):
    from livebokeh.commands.service import settings_path

    with started(live_settings(), source=FakeSource(count=10**7, live=True, fps=60)) as (run, server):
        c = Client(server)
        assert c.json("POST", "/api/defaults", {})["written"] == {"segmenter.backend": "mediapipe"}
        c.json("POST", "/api/settings", {"changes": {"render.light_wrap": 0.5}})
        status, _, _ = c.post("/api/defaults", {})
        assert status == 409  # it exists now
    path = settings_path()
    assert path.is_file() and "light_wrap" not in path.read_text()


def test_keep_as_defaults_never_passes_over_a_settings_file_that_is_gone_for_the_users(memory_vcam, tmp_path):
    """The run's --config file became a pipe, a folder or a missing name: 'keep as defaults' wrote
    the user's own settings file instead (the one the service runs with), without a word."""
    import os

    from livebokeh.commands.service import settings_path

    mine = tmp_path / "mine.toml"
    mine.write_text("[render]\nblur = 0.04\n")
    with started(live_settings(), Job(config_files=(str(mine),)),
                 source=FakeSource(count=10**7, live=True, fps=60)) as (_run, server):
        c = Client(server)
        c.json("POST", "/api/settings", {"changes": {"render.blur": 0.08}})
        for what in ("gone", "a pipe", "a folder"):
            if mine.is_dir():
                mine.rmdir()
            else:
                mine.unlink(missing_ok=True)
            {"gone": lambda: None, "a pipe": lambda: os.mkfifo(mine), "a folder": mine.mkdir}[what]()
            status, _, body = c.post("/api/defaults", {"overwrite": True})
            assert status == 400 and f"is {what} now" in body.decode(), body
    assert not settings_path().exists()


def png_bytes(image: np.ndarray) -> bytes:
    return bytes(cv2.imencode(".png", image)[1])


def test_uploads_are_decoded_and_kept_in_the_users_data_folder(live, tmp_path):
    from livebokeh.control.backgrounds import uploads_dir

    run, server, cam = live
    c = Client(server)
    picture = np.zeros((90, 160, 3), np.uint8)
    picture[:, :, 0] = 255  # blue
    done = c.json("POST", "/api/background", {"upload": base64.b64encode(png_bytes(picture)).decode(), "apply": True})
    stored = Path(run.settings().render.background)
    assert stored.parent == uploads_dir() and stored.name.startswith("upload-") and stored.suffix == ".png"
    assert done["current"] == f"uploads:{stored.name}" and run.settings().render.effect == "replace"
    until(lambda: float(np.abs(cam.frames[-1][:20].astype(int) - [255, 0, 0]).mean()) < 3.0, "the picture behind")
    listed = c.json("GET", "/api/backgrounds")
    assert [i["id"] for i in listed["items"]] == [f"uploads:{stored.name}"] and "path" not in listed["items"][0]
    status, headers, thumb = c.get(f"/api/thumb?id=uploads:{stored.name}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and thumb[:3] == b"\xff\xd8\xff"


def test_the_picker_offers_the_users_folder_and_picks_by_id(memory_vcam, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    cv2.imwrite(str(folder / "green.png"), np.full((90, 160, 3), (0, 200, 0), np.uint8))
    (folder / "notes.txt").write_text("not a picture")
    import dataclasses

    cfg = live_settings()
    cfg = dataclasses.replace(cfg, control=dataclasses.replace(cfg.control, backgrounds=str(folder)))
    with started(cfg, source=FakeSource(count=10**7, live=True, fps=60)) as (run, server):
        cam = memory_vcam[0]
        c = Client(server)
        items = c.json("GET", "/api/backgrounds")["items"]
        assert items == [{"id": "folder:green.png", "name": "green.png", "kind": "image", "origin": "folder"}]
        c.json("POST", "/api/background", {"id": "folder:green.png", "apply": True})
        assert run.settings().render.background == str(folder / "green.png")
        until(lambda: len(cam.frames) and float(np.abs(cam.frames[-1][:20].astype(int) - [0, 200, 0]).mean()) < 3.0,
              "the picked picture behind")
        # the same path given as a value is one the run knows now (it is listed): accepted
        c.json("POST", "/api/settings", {"changes": {"render.background": str(folder / "green.png")}})


def test_snapshot_is_what_the_virtual_camera_sends(live):
    run, server, cam = live
    status, headers, body = Client(server).get("/api/snapshot.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (120, 160, 3)
    status, headers, body = Client(server).get("/api/frame.jpg?w=160")
    assert status == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160


# ---------------------------------------------------------------------------------------------
# livebokeh ctl


def ctl(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from livebokeh.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["ctl", *args])
    return code, out.getvalue(), err.getvalue()


def test_ctl_finds_the_run_and_drives_it(live, tmp_path):
    run, server, cam = live
    code, out, _ = ctl("status")
    state = json.loads(out)
    assert code == 0 and state["url"] == server.url() and state["pid"] == run.state()["pid"]
    assert ctl("set", "render.blur", "0.06")[:2] == (0, "render.blur = 0.06\n")
    assert ctl("get", "render.blur")[:2] == (0, "0.06\n")
    assert ctl("set", "render.effect", "none", "render.mirror", "on")[0] == 0
    assert run.settings().render.effect == "none" and run.settings().render.mirror is True
    code, _, err = ctl("set", "camera.width", "640")
    assert code == 2 and "cannot change while livebokeh runs" in err and err.count("\n") == 1
    code, _, err = ctl("set", "render.blur", "lots")
    assert code == 2 and "render.blur must be a number from 0 to 0.25" in err
    assert ctl("pause", "--blank")[0] == 0 and run.controls.paused == "blank"
    snap = tmp_path / "snap.png"
    assert ctl("snapshot", str(snap))[0] == 0
    assert cv2.imread(str(snap)).max() == 0  # what the camera sends: blank
    code, _, err = ctl("snapshot", str(snap))
    assert code == 2 and "exists; pass --overwrite" in err
    assert ctl("resume")[0] == 0 and run.controls.paused is None


def test_a_snapshot_never_replaces_an_input_of_the_run(memory_vcam, tmp_path):
    """``ctl snapshot --overwrite bg.jpg`` while bg.jpg is the run's background (or a hard link
    to it, or a name linked to its settings file): refused with one line, exit 2, the file as it
    was, whatever --overwrite says (compared by device and inode and by the resolved path)."""
    import os

    bg = tmp_path / "bg.jpg"
    cv2.imwrite(str(bg), np.full((120, 160, 3), (0, 200, 0), np.uint8))
    settings = tmp_path / "mine.toml"
    settings.write_text("[render]\nblur = 0.03\n")
    os.link(bg, tmp_path / "hard.jpg")
    (tmp_path / "soft.jpg").symlink_to(settings)
    cfg = live_settings(effect="replace", background=str(bg))
    with started(cfg, job=Job(config_files=(str(settings),)),
                 source=FakeSource(count=10**7, live=True, fps=60)) as (_run, _server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames at the virtual camera")
        before = {p: p.read_bytes() for p in (bg, settings)}
        for target, what in [(bg, "render.background"), (tmp_path / "hard.jpg", "render.background"),
                             (tmp_path / "soft.jpg", "--config")]:  # a .jpg name linked to the settings
            for extra in (["--overwrite"], []):
                code, out, err = ctl("snapshot", *extra, str(target))
                assert code == 2 and out == "" and err.count("\n") == 1, err
                assert "is this run's input" in err and what in err and "even with --overwrite" in err
        assert {p: p.read_bytes() for p in (bg, settings)} == before
        assert (tmp_path / "soft.jpg").read_bytes() == settings.read_bytes()
        assert ctl("snapshot", str(tmp_path / "new.jpg"))[0] == 0
        assert cv2.imread(str(tmp_path / "new.jpg")).shape == (120, 160, 3)


def test_a_snapshot_never_replaces_the_weights_the_environment_names(memory_vcam, tmp_path, monkeypatch):
    """Weights a LIVEBOKEH_ variable names, and the files in LIVEBOKEH_MODEL_DIR and the cache,
    are read by the run: a snapshot onto one (or a name linked to one) is refused like an input."""
    rvm, decoder = tmp_path / "rvm.jpg", tmp_path / "decoder.png"  # names a snapshot could take
    rvm.write_bytes(b"weights of mine")
    decoder.write_bytes(b"a decoder of mine")
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "rvm_mobilenetv3_fp32.onnx").write_bytes(b"the model folder's")
    (tmp_path / "link.png").symlink_to(folder / "rvm_mobilenetv3_fp32.onnx")
    monkeypatch.setenv("LIVEBOKEH_RVM_WEIGHTS", str(rvm))
    monkeypatch.setenv("LIVEBOKEH_DEEPLAB_DECODER", str(decoder))
    monkeypatch.setenv("LIVEBOKEH_MODEL_DIR", str(folder))
    monkeypatch.setenv("LIVEBOKEH_SELFIE_GENERAL_WEIGHTS", "x" * 5000)  # no name the system can look up
    with started(live_settings(), source=FakeSource(count=10**7, live=True, fps=60)) as (_run, _server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames at the virtual camera")
        for target, what in [(rvm, "LIVEBOKEH_RVM_WEIGHTS"), (decoder, "LIVEBOKEH_DEEPLAB_DECODER"),
                             (tmp_path / "link.png", "LIVEBOKEH_MODEL_DIR")]:
            code, out, err = ctl("snapshot", "--overwrite", str(target))
            assert code == 2 and out == "" and "is this run's input" in err and what in err, err
        assert rvm.read_bytes() == b"weights of mine" and decoder.read_bytes() == b"a decoder of mine"
        assert (folder / "rvm_mobilenetv3_fp32.onnx").read_bytes() == b"the model folder's"
        assert ctl("snapshot", str(tmp_path / "new.png"))[0] == 0


def test_a_snapshot_never_replaces_a_background_the_page_offers(memory_vcam, tmp_path):
    """The pictures of ``--backgrounds`` and the uploads are files the run reads (thumbnails, a
    pick; an upload is found again by its content's name): a snapshot onto one is refused."""
    import dataclasses

    from livebokeh.control import backgrounds

    folder = tmp_path / "pictures"
    folder.mkdir()
    cv2.imwrite(str(folder / "beach.jpg"), np.full((90, 160, 3), (200, 100, 0), np.uint8))
    cfg = live_settings()
    cfg = dataclasses.replace(cfg, control=dataclasses.replace(cfg.control, backgrounds=str(folder)))
    with started(cfg, source=FakeSource(count=10**7, live=True, fps=60)) as (_run, server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames at the virtual camera")
        Client(server).json("POST", "/api/background",
                            {"upload": base64.b64encode(png_bytes(np.full((60, 80, 3), 90, np.uint8))).decode()})
        Client(server).json("POST", "/api/settings", {"changes": {"render.background": "green"}})  # not in use
        (upload,) = [p for p in backgrounds.uploads_dir().iterdir() if p.is_file()]
        before = {p: p.read_bytes() for p in (folder / "beach.jpg", upload)}
        for target in before:
            code, out, err = ctl("snapshot", "--overwrite", str(target))
            assert code == 2 and out == "" and "a background the page offers" in err, err
        assert {p: p.read_bytes() for p in before} == before


def test_ctl_uploads_a_file_it_is_given_as_the_background(live, tmp_path):
    run, server, cam = live
    pic = tmp_path / "mine.png"
    cv2.imwrite(str(pic), np.full((90, 160, 3), (200, 0, 200), np.uint8))
    code, out, _ = ctl("set", "render.background", str(pic), "render.effect", "replace")
    assert code == 0
    kept = Path(run.settings().render.background)
    assert kept != pic and kept.read_bytes() == pic.read_bytes() and run.settings().render.effect == "replace"


def test_ctl_refuses_a_background_over_the_upload_limit_without_reading_it(live, tmp_path, monkeypatch):
    """`ctl set render.background` read the whole file first: a 50 GB sparse file was a MemoryError
    traceback, a 33 MB one 'did not answer ... Broken pipe' (exit 1) though the run had refused it."""
    import builtins

    from livebokeh.commands import ctl as ctl_module

    run, server, cam = live
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(50 * 2**30)  # sparse: takes no room
    reads = []

    class Counted:  # the file ctl opens, its reads counted
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def fileno(self):
            return self.fh.fileno()

        def read(self, n=-1):
            reads.append(n)
            return self.fh.read(n)

    monkeypatch.setattr(ctl_module, "open", lambda *a, **kw: Counted(builtins.open(*a, **kw)), raising=False)
    code, out, err = ctl("set", "render.background", str(big))
    assert code == 2 and out == "" and reads == []
    assert err.count("\n") == 1 and f"{big} is {50 * 2**30:,} bytes, and a background sent to a run is at most" in err
    for odd in (tmp_path / "folder.png", tmp_path / "gone.png"):  # named as what they are, not as a colour
        odd.mkdir() if odd.name == "folder.png" else odd.symlink_to(tmp_path / "nothing.png")
        code, out, err = ctl("set", "render.background", str(odd))
        assert code == 2 and ("is a folder, not a picture" in err or "is a link to a missing file" in err), err
    assert run.settings().render.background == ""


def test_ctl_takes_a_colour_as_a_colour_and_names_a_missing_file(live, tmp_path, monkeypatch):
    """With a file named `green` in the current folder, `ctl set render.background green` uploaded
    it; a missing file (a typo) got the run's advice to give a FILE, which the user did."""
    run, server, cam = live
    monkeypatch.chdir(tmp_path)
    (tmp_path / "green").write_text("not a picture")
    code, out, err = ctl("set", "render.background", "green")
    assert code == 0 and run.settings().render.background == "green", err
    code, out, err = ctl("set", "render.background", "~/Pictures/bech.jpg")
    assert code == 2 and "there is no such file" in err and "uploads it" not in err, err
    (tmp_path / "mybg").mkdir()  # named without a / or a suffix
    code, out, err = ctl("set", "render.background", "mybg")
    assert code == 2 and "mybg is a folder, not a picture or video file" in err, err


def test_ctl_without_a_run_or_with_several_says_what_to_do(live, monkeypatch, tmp_path):
    from livebokeh.control.runtime import RunFile, publish

    run, server, cam = live
    other = RunFile(pid=1, port=1, secret="x", source="cam\n1\tfake\x1b]0;t\x07.mp4", started=1.0)  # pid 1 lives
    publish(other)
    code, out, _ = ctl("list")  # a clip's name, chosen by anyone, is one line of text
    assert code == 0 and len(out.splitlines()) == 2 and "\x1b" not in out and "cam\\x0a1\\x09fake" in out, out
    assert [len(line.split("\t")) for line in out.splitlines()] == [3, 3]
    code, _, err = ctl("status")
    assert code == 2 and "2 livebokeh runs" in err and "--run PID" in err
    code, out, _ = ctl("--run", str(run.state()["pid"]), "get", "render.effect")
    assert (code, out) == (0, "blur\n")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    code, _, err = ctl("status")
    assert code == 1 and "no running livebokeh serves a control page" in err
