"""The backend, and its options, changed while the camera runs: the new model is built off the
camera's threads and swapped into the pipeline (Pipeline.swap_segmenter), the old one closed;
frames keep going out; a model that cannot be built changes nothing."""

from __future__ import annotations

import json

import pytest

from livebokeh.errors import ModelError
from tests.conftest import FakeSource, until
from tests.control.conftest import Client, ClosingSegmenter, live_settings, started

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def swapping(memory_vcam):
    made: list = []
    with started(live_settings(), source=FakeSource(count=10**7, live=True, fps=60), segmenters=made) as (run, server):
        until(lambda: memory_vcam and len(memory_vcam[0].frames) > 2, "the first frames")
        if not hasattr(run.pipeline, "swap_segmenter"):
            pytest.skip("the pipeline cannot swap models")
        yield run, server, memory_vcam[0], made


def test_the_backend_is_swapped_while_the_camera_runs(swapping):
    run, server, cam, made = swapping
    c = Client(server)
    first = made[0]
    done = c.json("POST", "/api/settings", {"changes": {"segmenter.backend": "rvm"}})
    assert done["applied"] == {"segmenter.backend": "rvm"}
    assert made[-1].backend == "rvm" and run.pipeline.segmenter is made[-1]  # in use when the answer came
    until(lambda: first.closed >= 1, "the old model closed by the pipeline")
    assert c.json("GET", "/api/state")["backend"] == "rvm" and run.settings().segmenter.backend == "rvm"
    sent = len(cam.frames)
    until(lambda: len(cam.frames) > sent + 10, "frames after the swap")
    calls = made[-1].calls
    until(lambda: made[-1].calls > calls, "the new model at work")


def test_a_backend_option_swaps_a_model_with_it(swapping):
    run, server, cam, made = swapping
    options = []
    run._make_segmenter = lambda backend, opts: options.append(opts) or ClosingSegmenter(backend)
    c = Client(server)
    c.json("POST", "/api/settings", {"changes": {"mediapipe.model": "landscape"}})
    assert options[-1].own.model == "landscape" and run.settings().mediapipe.model == "landscape"
    # another backend with its own option, in one change
    c.json("POST", "/api/settings", {"changes": {"segmenter.backend": "rvm", "rvm.backbone": 320}})
    assert options[-1].own.backbone == 320 and run.settings().segmenter.backend == "rvm"


def test_a_model_that_cannot_be_built_changes_nothing(swapping):
    run, server, cam, made = swapping

    def broken(backend, opts):
        raise ModelError("rvm weights could not be downloaded; run `livebokeh models download rvm`")

    run._make_segmenter = broken
    before = (run.settings(), run.pipeline.segmenter, run.controls.changes)
    status, _, body = Client(server).post("/api/settings", {"changes": {"segmenter.backend": "rvm",
                                                                         "render.blur": 0.1}})
    assert status == 400 and "livebokeh models download rvm" in json.loads(body)["error"]
    assert (run.settings(), run.pipeline.segmenter, run.controls.changes) == before  # all or nothing


def test_the_state_says_what_the_live_controller_does(swapping):
    run, server, cam, made = swapping
    state = Client(server).json("GET", "/api/state")
    controller = state["controller"]
    assert {"level", "name", "why"} <= set(controller) and controller["level"] >= 0
