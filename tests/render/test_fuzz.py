"""Random frame shapes and random render settings never raise an unhandled exception."""

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from livebokeh.config import MaskConfig, RenderConfig
from livebokeh.mask import refine_alpha, resolve_auto
from livebokeh.render import render_bokeh
from livebokeh.types import SegmenterTraits

render_cfgs = st.builds(
    RenderConfig,
    effect=st.sampled_from(["blur", "none", "replace"]),
    blur=st.floats(0.0, 0.25),
    fstop=st.one_of(st.just(0.0), st.floats(0.5, 32.0)),
    aperture=st.sampled_from(["disc", "polygon", "gaussian"]),
    blades=st.integers(3, 12),
    linear=st.booleans(),
    highlights=st.floats(0.0, 10.0),
    light_wrap=st.floats(0.0, 1.0),
    light_wrap_size=st.floats(0.0, 0.1),
    unmix=st.booleans(),
)


@settings(max_examples=120, deadline=None)
@given(h=st.integers(1, 300), w=st.integers(1, 300), cfg=render_cfgs, seed=st.integers(0, 2**16),
       guided=st.sampled_from(["on", "off"]), mh=st.integers(1, 64), mw=st.integers(1, 64), matte=st.booleans())
def test_any_shape_and_settings_render(h, w, cfg, seed, guided, mh, mw, matte):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prob = rng.random((mh, mw)).astype(np.float32)
    mask_cfg = resolve_auto(dataclasses.replace(MaskConfig(), guided=guided), SegmenterTraits(matte=matte))
    alpha = refine_alpha(prob, img, mask_cfg)
    assert alpha.shape == (h, w) and np.isfinite(alpha).all() and 0 <= alpha.min() and alpha.max() <= 1
    plate = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = render_bokeh(img, alpha, cfg, plate)
    assert out.shape == img.shape and out.dtype == np.uint8
