"""Settings that change while the pipeline runs (keys in the preview window)."""

from __future__ import annotations

import dataclasses
import threading

from livebokeh.config import RenderConfig

#: Key -> what it does, for the help line and the README.
KEYS = {
    "+": "stronger blur",
    "-": "weaker blur",
    "d": "blur by depth on or off (when started with --depth)",
    "[": "focus nearer (with --fstop: a nearer focus blurs the background more)",
    "]": "focus farther",
    "e": "next effect (blur, replace when a background is set, none)",
    "f": "auto-framing on or off (the frame follows the person with pan and zoom)",
    "m": "show the mask instead of the output",
    "o": "show or hide the overlay (settings, fps, latency)",
    "q": "quit (also Esc)",
}

_STEP = 1.25


class LiveControls:
    """Thread-safe holder of the render settings and view flags.

    The render stage reads :attr:`render` and :attr:`show_mask` for every frame; the preview
    window changes them from the main thread through :meth:`handle_key`.
    """

    def __init__(self, render: RenderConfig, can_replace: bool = False, overlay: bool = False,
                 framing: bool = False, can_depth: bool | None = None) -> None:
        self._lock = threading.Lock()
        self._render = render
        self.can_replace = can_replace
        #: the depth model is loaded (the run started with depth on), so depth can be turned on
        self.can_depth = render.depth if can_depth is None else can_depth
        self.show_mask = False
        self.overlay = overlay
        self.framing = framing
        #: what the framing does now, for the overlay (written by the rendering thread)
        self.framing_state = "on" if framing else "off"
        #: live: the controller asks for a lighter render (the machine is short of CPU)
        self.light = False

    @property
    def render(self) -> RenderConfig:
        """The render settings asked for (the keys change them)."""
        return self._render

    @property
    def rendered(self) -> RenderConfig:
        """The render settings in effect: :attr:`render`, lighter while :attr:`light` is on (no
        linear light, light wrap or highlight boost: a fifth of the renderer's CPU time; and no
        blur by depth, whose model then rests too)."""
        r = self._render
        if self.light:
            return dataclasses.replace(r, linear=False, light_wrap=0.0, highlights=0.0, depth=False)
        return r

    def effects(self) -> tuple[str, ...]:
        return ("blur", "replace", "none") if self.can_replace else ("blur", "none")

    def handle_key(self, key: str) -> str | None:
        """Apply one key; returns a short description of the change, or None if the key is not ours."""
        with self._lock:
            r = self._render
            if key in ("+", "="):
                r = _scaled(r, _STEP)
            elif key in ("-", "_"):
                r = _scaled(r, 1 / _STEP)
            elif key == "d":
                if not self.can_depth:
                    return "depth: start with --depth to use it"
                r = dataclasses.replace(r, depth=not r.depth)
            elif key in ("[", "]"):
                step = 1 / _STEP if key == "[" else _STEP
                r = dataclasses.replace(r, focus_distance=min(100.0, max(0.3, r.focus_distance * step)))
            elif key == "e":
                effects = self.effects()
                nxt = effects[(effects.index(r.effect) + 1) % len(effects)] if r.effect in effects else effects[0]
                r = dataclasses.replace(r, effect=nxt)
            elif key == "m":
                self.show_mask = not self.show_mask
                return f"view: {'mask' if self.show_mask else 'output'}"
            elif key == "o":
                self.overlay = not self.overlay
                return f"overlay: {'on' if self.overlay else 'off'}"
            elif key == "f":
                self.framing = not self.framing
                return f"framing: {'on' if self.framing else 'off'}"
            else:
                return None
            self._render = r
            return describe(r)


def _scaled(r: RenderConfig, factor: float) -> RenderConfig:
    if r.fstop > 0:
        return dataclasses.replace(r, fstop=min(32.0, max(0.25, r.fstop / factor)))
    return dataclasses.replace(r, blur=min(0.25, max(0.002, r.blur * factor)))


def describe(r: RenderConfig) -> str:
    strength = f"f/{r.fstop:.2g} at {r.focus_distance:.2g} m" if r.fstop > 0 else f"blur {r.blur:.3f}"
    return f"effect {r.effect}, {strength}, {r.aperture}{', by depth' if r.depth else ''}"
