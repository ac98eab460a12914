"""The control page in a real browser: headless Chromium from the system's packages, driven by
Playwright (no browser download). A clip played as the camera, the in-memory virtual camera; the
page moves the blur, switches to a background picture, pauses; the frames the virtual camera
got say, by numbers, that each change arrived. Pages of other origins, and the page under
another host name (DNS rebinding), get nothing and change nothing.

Skipped, with the reason, where Playwright or a Chromium cannot be had (``.ci/run`` installs both).
With ``LIVEBOKEH_DOCS_SCREENSHOT=1`` the page's screenshot with the public-domain portrait of
scikit-image (the docs extra) is also written to ``docs/control_page.png`` (the README shows it).
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from livebokeh.app import Job
from tests.conftest import REPO, until
from tests.control.conftest import live_settings, outside_variance, person_of, started, write_clip

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # a browser started: not in the quick loop

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--host-resolver-rules=MAP rebound.test 127.0.0.1"]


def chromium_path() -> str | None:
    for name in (os.environ.get("LIVEBOKEH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser: Playwright is not installed (pip install playwright; .ci/run does)")
    path = chromium_path()
    if path is None:
        pytest.skip("no browser: no chromium here (apt-get install chromium; .ci/run does)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except Exception as err:  # noqa: BLE001 - any reason the browser cannot start is a skip
            pytest.skip(f"no browser: {path} does not start headless ({' '.join(str(err).split())[:200]})")
        yield b
        b.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """40 s of a synthetic camera (a bright 'person' over a textured room), 320x240 at 30 fps."""
    return write_clip(tmp_path_factory.mktemp("clip") / "camera.mp4", frames=1200)


@pytest.fixture
def page_run(memory_vcam, clip, browser, tmp_path):
    """A run fed by the clip as its camera (played at its pace), its control page open."""
    cfg = live_settings()
    with started(cfg, Job(input=str(clip))) as (run, server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames at the virtual camera")
        context = browser.new_context(viewport={"width": 1180, "height": 860})
        page = context.new_page()
        page.goto(server.url())
        yield run, server, memory_vcam[0], page
        context.close()


def _slide(page, selector: str, value: float) -> None:
    page.locator(selector).evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); el.dispatchEvent(new Event('change')); }",
        str(value))


def _away(image: np.ndarray) -> np.ndarray:
    return cv2.erode((~person_of(image)).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0


def test_the_page_steers_the_camera(page_run, tmp_path):
    run, server, cam, page = page_run
    assert page.url == f"http://127.0.0.1:{server.port}/"  # the key left the address bar for the tab's storage
    assert page.context.cookies() == []  # and is in no cookie
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    page.wait_for_function("() => document.querySelectorAll('#status dd').length > 4")

    # the effect off, then the blur moved: the room behind the person goes smooth
    page.check("input[name=effect][value=none]")
    until(lambda: run.settings().render.effect == "none", "effect none")
    frames = len(cam.frames)
    until(lambda: len(cam.frames) > frames + 2, "frames after the change")
    sharp = outside_variance(cam.frames[-1], person_of(cam.frames[-1]))
    page.check("input[name=effect][value=blur]")
    _slide(page, "#blur", 0.1)
    until(lambda: run.settings().render.blur == 0.1 and run.settings().render.effect == "blur", "the blur moved")
    until(lambda: outside_variance(cam.frames[-1], person_of(cam.frames[-1])) < 0.25 * sharp, "a blurred room")
    assert page.inner_text("#blur-out") == "0.100"

    # a background picture uploaded from the page: outside the person the frames are the picture
    picture = np.zeros((240, 320, 3), np.uint8)
    picture[:, :160] = (200, 60, 20)
    picture[:, 160:] = (20, 160, 240)
    upload = tmp_path / "beach.png"
    cv2.imwrite(str(upload), picture)
    page.set_input_files("#upload", str(upload))

    def shows_the_picture() -> bool:
        img = cam.frames[-1]
        away = _away(img)
        return float(np.abs(img[away].astype(int) - picture[away]).mean()) < 4.0

    until(shows_the_picture, "the uploaded picture behind the person")
    assert run.settings().render.effect == "replace"
    page.wait_for_selector(".pick.current")
    # its thumbnail is fetched with the key (no cookie carries it)
    page.wait_for_function("() => document.querySelector('.pick.current img').naturalWidth > 0")

    # pause: the same still picture, frame after frame; resume: the camera again
    page.click("#pause-still")
    until(lambda: run.controls.paused == "still", "paused")
    page.wait_for_selector("#paused-badge:not([hidden])")
    start = len(cam.frames)
    until(lambda: len(cam.frames) > start + 8, "frames while paused")
    held = cam.frames[start + 2:]
    assert all(np.array_equal(f, held[0]) for f in held)
    page.click("#resume")
    until(lambda: run.controls.paused is None, "resumed")
    start = len(cam.frames)
    until(lambda: len(cam.frames) > start + 40, "frames after resuming")
    assert not np.array_equal(cam.frames[start + 2], cam.frames[-1])  # the person moves again

    # the page's status shows what runs
    page.wait_for_function("() => document.getElementById('status').textContent.includes('memory0')")
    shot = tmp_path / "control_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert cv2.imread(str(shot)).shape[1] == 1180


FOREIGN = """<!doctype html><html><body>
<form id=f method=POST action="http://127.0.0.1:{port}/api/settings" enctype="text/plain">
<input name='{{"changes": {{"render.blur": 0.2, "x": "' value='"}}}}'></form>
<img id=i src="http://127.0.0.1:{port}/api/frame.jpg">
<iframe id=frame src="http://127.0.0.1:{port}/"></iframe>
<script>
window.results = [];
async function tryFetch(what, init) {{
  try {{
    const r = await fetch("http://127.0.0.1:{port}/api/settings", init);
    window.results.push(what + ": " + r.status);
  }} catch (e) {{ window.results.push(what + ": blocked"); }}
}}
(async () => {{
  await tryFetch("json", {{method: "POST", credentials: "include", headers: {{"Content-Type": "application/json"}},
                         body: JSON.stringify({{changes: {{"render.blur": 0.2}}}})}});
  await tryFetch("text", {{method: "POST", credentials: "include", mode: "no-cors",
                         body: JSON.stringify({{changes: {{"render.blur": 0.2}}}})}});
  await tryFetch("get", {{credentials: "include"}});
  window.done = true;
}})();
</script></body></html>"""


def _foreign_site(port: int):
    """Another web site on this machine (another origin: another port)."""
    body = FOREIGN.format(port=port).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_other_sites_and_rebound_names_get_nothing(page_run):
    run, server, cam, page = page_run
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")  # the key is in use
    before = (run.settings(), run.controls.changes)
    refused = server.refused
    foreign = _foreign_site(server.port)
    try:
        other = page.context.new_page()
        other.goto(f"http://127.0.0.1:{foreign.server_address[1]}/")
        other.wait_for_function("() => window.done === true", timeout=60000)
        results = other.evaluate("window.results")
        assert not any(r.endswith(": 200") for r in results), results
        with other.expect_navigation() as nav:  # a plain form POST
            other.evaluate("document.getElementById('f').submit()")
        assert nav.value.status == 403
        # DNS rebinding: a name of the attacker's that resolves here
        response = other.goto(f"http://rebound.test:{server.port}/?key={server.secret}")
        assert response.status == 421
        other.close()
    finally:
        foreign.shutdown()
        foreign.server_close()
    assert (run.settings(), run.controls.changes) == before
    assert server.refused >= refused + 4


def test_the_page_on_a_portrait_with_the_real_model(memory_vcam, browser, tmp_path, selfie_models):
    """The README's picture: scikit-image's public-domain astronaut portrait played as the camera
    (the docs extra), MediaPipe for real, the f-stop set on the page: the frames sent are blurred
    outside the person and not inside it, by numbers."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (the docs extra) brings the portrait")
    import av

    from livebokeh.app import open_run
    from livebokeh.control.server import serve

    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    clip = tmp_path / "astronaut.mp4"
    with av.open(str(clip), "w") as c:  # the portrait as a 10 s camera clip
        s = c.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "14"})
        s.width, s.height, s.pix_fmt = 512, 512, "yuv420p"
        for _ in range(300):
            for p in s.encode(av.VideoFrame.from_ndarray(photo[:, :, ::-1].copy(), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    cfg = live_settings()
    cfg = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, loop=True))
    with open_run(cfg, Job(input=str(clip))) as run, serve(run) as server:
        run.start()
        cam = memory_vcam[0]
        until(lambda: len(cam.frames) > 30, "frames from the real model")
        context = browser.new_context(viewport={"width": 1180, "height": 820})
        page = context.new_page()
        page.goto(server.url())
        page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
        _slide(page, "#fstop", 1.4)
        until(lambda: run.settings().render.fstop == 1.4, "the f-stop set")
        start = len(cam.frames)
        until(lambda: len(cam.frames) > start + 5, "frames at f/1.4")
        sent = cam.frames[-1]
        mask = run.pipeline.processor.segmenter.segment(photo).data
        mask = cv2.resize(mask, (512, 512))
        inside = cv2.erode((mask > 0.9).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        outside = cv2.erode((mask < 0.1).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0

        def sharpness(img: np.ndarray, where: np.ndarray) -> float:
            return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_32F)[where].var())

        assert sharpness(sent, outside) < 0.2 * sharpness(photo, outside)  # the background blurred
        assert sharpness(sent, inside) > 0.5 * sharpness(photo, inside)  # the person kept sharp
        page.wait_for_function("() => document.querySelectorAll('#status dd').length > 4")
        page.wait_for_timeout(1500)  # a fresh preview and status
        shot = tmp_path / "control_page.png"
        page.screenshot(path=str(shot))
        context.close()
        run.request_stop()
        run.wait()
    if os.environ.get("LIVEBOKEH_DOCS_SCREENSHOT"):
        shutil.copy(shot, REPO / "docs" / "control_page.png")
