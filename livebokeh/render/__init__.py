"""Rendering: pure functions ``(image, alpha, settings) -> new image``, and replacement backgrounds."""

from livebokeh.render.background import Background, cover, open_background, parse_colour
from livebokeh.render.bokeh import (
    background_weight,
    blur_background,
    blur_radius,
    composite,
    far_and_max_radius,
    light_wrap,
    render_bokeh,
)
from livebokeh.render.defocus import circle_of_confusion, defocus_background, level_radii
from livebokeh.render.lens import aperture_kernel, from_linear, to_linear
from livebokeh.render.unmix import background_estimate, unmix, unmix_foreground

__all__ = [
    "Background",
    "aperture_kernel",
    "background_estimate",
    "background_weight",
    "blur_background",
    "blur_radius",
    "circle_of_confusion",
    "composite",
    "defocus_background",
    "far_and_max_radius",
    "cover",
    "from_linear",
    "level_radii",
    "light_wrap",
    "open_background",
    "parse_colour",
    "render_bokeh",
    "to_linear",
    "unmix",
    "unmix_foreground",
]
