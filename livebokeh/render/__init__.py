"""Rendering: pure functions ``(image, alpha, settings) -> new image``."""

from livebokeh.render.bokeh import background_weight, blur_background, composite, render_bokeh

__all__ = ["background_weight", "blur_background", "composite", "render_bokeh"]
