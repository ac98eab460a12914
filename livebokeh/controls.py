"""Settings that change while a run goes on: the one place every live change goes through.

The preview window's keys, the control page and ``livebokeh ctl`` (:mod:`livebokeh.control`), and
SIGHUP (the settings file read again) all change a run through :meth:`LiveControls.change`, in
the settings file's keys (``render.blur``, ``framing.enabled``). The render stage reads the
settings in effect for every frame, so a change shows in the next frame rendered:

- ``[render]`` (effect, blur, f-stop, aperture, light wrap, background, mirror ...) and
  ``[framing]`` (on or off, zoom ...) change at once; a new background is opened (decoded) before
  it replaces the old one, off the render thread;
- ``preview.overlay`` shows or hides the preview's overlay;
- the backend and its options (``segmenter.backend``, ``segmenter.roi``, ``segmenter.tta``,
  ``[mediapipe]``, ``[deeplab]``, ``[rvm]``) need a new model: the run builds it off the camera's
  threads and swaps it in without stopping the camera (see :attr:`LiveControls.swap`);
- everything else (the camera, the virtual camera, outputs, threads, mask settings) cannot change
  while running: :class:`NotLive` says so.

A privacy pause (:meth:`LiveControls.pause`) sends a still (the last picture before it) or a
blank frame instead of the camera until :meth:`LiveControls.resume`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from livebokeh.config import BACKENDS, Config, FramingConfig, RenderConfig, apply_keys, sections
from livebokeh.errors import ConfigError

if TYPE_CHECKING:
    from livebokeh.render import Background
    from livebokeh.types import Composite

log = logging.getLogger(__name__)

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

#: Sections every key of which changes at once.
LIVE_SECTIONS = frozenset({"render", "framing"})
#: Single keys that change at once.
LIVE_KEYS = frozenset({"preview.overlay"})
#: Sections and keys a new model applies (swapped in while the camera runs).
SWAP_SECTIONS = frozenset(BACKENDS)
SWAP_KEYS = frozenset({"segmenter.backend", "segmenter.roi", "segmenter.tta"})
#: What a privacy pause sends.
PAUSE_MODES = ("still", "blank")


class NotLive(ConfigError):
    """A setting that cannot change while the run goes on (a restart applies it)."""


def live_kind(key: str) -> str:
    """``"now"`` (applied at once), ``"swap"`` (a new model) or ``"restart"`` for ``section.key``."""
    section = key.partition(".")[0]
    if section in LIVE_SECTIONS or key in LIVE_KEYS:
        return "now"
    if section in SWAP_SECTIONS or key in SWAP_KEYS:
        return "swap"
    return "restart"


def changeable() -> dict[str, str]:
    """Every settings key and how it changes while running (:func:`live_kind`)."""
    return {f"{name}.{f.name}": live_kind(f"{name}.{f.name}")
            for name, cls in sections().items() for f in dataclasses.fields(cls)}


class LiveControls:
    """Thread-safe holder of the settings in effect, the view flags and the pause.

    The render stage reads :attr:`render`, :attr:`framing_cfg`, :attr:`background` and
    :attr:`show_mask` for every frame and passes each composite through :meth:`present`; every
    change goes through :meth:`change` (or :meth:`handle_key`, :meth:`pause`, :meth:`resume`).

    Args:
        render: the render settings (when ``settings`` is not given).
        can_replace: a background is there, so the ``e`` key offers ``replace`` (also true when
            ``background`` is given).
        overlay, framing: the preview's overlay and auto-framing at the start (when ``settings``
            is not given).
        settings: the run's whole settings (their render, framing and overlay are used).
        background: the replacement background in use (it is closed when another replaces it).
        open_background: opens a background from ``render.background``'s value (default
            :func:`livebokeh.render.open_background`).
    """

    def __init__(self, render: RenderConfig | None = None, can_replace: bool = False, overlay: bool = False,
                 framing: bool = False, *, settings: Config | None = None, background: Background | None = None,
                 open_background: Callable[[str], Background] | None = None, can_depth: bool | None = None) -> None:
        if settings is None:
            base = Config()
            settings = dataclasses.replace(
                base, render=render or base.render, preview=dataclasses.replace(base.preview, overlay=overlay),
                framing=dataclasses.replace(base.framing, enabled=framing))
        self._lock = threading.RLock()
        self._cfg = settings
        self.background = background
        self._can_replace = can_replace
        self._open_background = open_background
        #: the depth model is loaded (the run started with depth on), so depth can be turned on
        self.can_depth = settings.render.depth if can_depth is None else can_depth
        self.show_mask = False
        self.overlay = settings.preview.overlay
        #: what the framing does now, for the overlay (written by the rendering thread)
        self.framing_state = "on" if settings.framing.enabled else "off"
        #: builds and swaps in a model for new settings, given by the run (None: the backend cannot change)
        self.swap: Callable[[Config], None] | None = None
        self.changes = 0  # changes applied so far (the control page polls it)
        self._pause: str | None = None
        self._held: Composite | None = None  # the still a pause sends
        self._last: Composite | None = None  # the last composite of the camera presented
        self._sent: Composite | None = None  # the last composite presented (a pause's too)
        self.presented = 0  # composites presented so far
        self._blank: dict[tuple[int, int], Any] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        #: live: the controller asks for a lighter render (the machine is short of CPU)
        self.light = False

    # -- what the render stage reads ---------------------------------------------------------

    @property
    def render(self) -> RenderConfig:
        """The render settings asked for (the keys, the page, ctl change them)."""
        return self._cfg.render

    @property
    def framing_cfg(self) -> FramingConfig:
        return self._cfg.framing

    @property
    def framing(self) -> bool:
        return self._cfg.framing.enabled

    @property
    def can_replace(self) -> bool:
        return self._can_replace or self.background is not None

    @property
    def paused(self) -> str | None:
        """``"still"`` or ``"blank"`` while paused, else None."""
        return self._pause

    def settings(self) -> Config:
        """The settings in effect (the run's, with every live change)."""
        cfg = self._cfg
        if cfg.preview.overlay != self.overlay:
            cfg = dataclasses.replace(cfg, preview=dataclasses.replace(cfg.preview, overlay=self.overlay))
        return cfg

    @property
    def rendered(self) -> RenderConfig:
        """The render settings in effect: :attr:`render`, lighter while :attr:`light` is on (no
        linear light, light wrap or highlight boost: about 3 ms of the renderer's 13 a 720p frame; and no
        blur by depth, whose model then rests too)."""
        r = self._cfg.render
        if self.light:
            return dataclasses.replace(r, linear=False, light_wrap=0.0, highlights=0.0, depth=False)
        return r

    def effects(self) -> tuple[str, ...]:
        return ("blur", "replace", "none") if self.can_replace else ("blur", "none")

    def on_change(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(applied)`` after every change (keys and values applied)."""
        self._listeners.append(listener)

    # -- changes -----------------------------------------------------------------------------

    def change(self, changes: Mapping[str, Any], origin: str = "change") -> dict[str, Any]:
        """Apply settings keys (``{"render.blur": 0.05}``), all or none: each is checked by the
        schema, then applied at once, or by a new model for the backend's keys. Returns what
        changed (keys whose value was already in effect are left out).

        Raises:
            ConfigError: an unknown key or a bad value (nothing applied).
            NotLive: a key that cannot change while running (nothing applied).
        """
        with self._lock:
            current = self.settings()
            try:
                new = apply_keys(current, changes, origin)
            except ConfigError as err:
                raise ConfigError(str(err).removeprefix(f"{origin}: ")) from None
            applied = {k: v for k, v in _flat(new).items() if _flat(current).get(k) != v}
            if not applied:
                return {}
            kinds = {k: live_kind(k) for k in applied}
            fixed = sorted(k for k, kind in kinds.items() if kind == "restart")
            if fixed:
                raise NotLive(f"{', '.join(fixed)} cannot change while livebokeh runs: restart it to apply "
                              f"{'them' if len(fixed) > 1 else 'it'} (keep the setting in your settings file)")
            chosen = new.segmenter.backend
            strays = sorted(k for k in applied if k.partition(".")[0] in BACKENDS and k.partition(".")[0] != chosen)
            if strays:
                raise ConfigError(f"{strays[0]} does not apply to the {chosen} backend in use; change "
                                  f"{chosen}'s own options, or segmenter.backend with it")
            if "swap" in kinds.values() and self.swap is None:
                raise NotLive(f"{', '.join(k for k, kind in kinds.items() if kind == 'swap')} cannot change in "
                              "this run (it has no model to swap); restart livebokeh to apply it")
            r = new.render
            background = self.background
            if r.background != current.render.background:
                background = self._opened(r.background) if r.background else None
            if r.effect == "replace" and background is None and not self._can_replace:
                raise ConfigError("render.effect replace needs a background: set render.background to a picture, "
                                  "a video or a colour first (or with it)")
            try:
                if "swap" in kinds.values():
                    self.swap(new)  # type: ignore[misc]  (raises when the new model cannot be built)
            except BaseException:
                if background is not None and background is not self.background:
                    background.close()
                raise
            self._set(new, background)
            log.info("%s: %s", origin, ", ".join(f"{k} = {v!r}" for k, v in applied.items()))
        for listener in self._listeners:
            listener(applied)
        return applied

    def _opened(self, spec: str) -> Background:
        if self._open_background is not None:
            return self._open_background(spec)
        from livebokeh.render import open_background

        return open_background(spec)

    def _set(self, new: Config, background: Background | None) -> None:
        old = self.background
        self.overlay = new.preview.overlay
        self._cfg = new
        self.background = background
        self.changes += 1
        if old is not None and old is not background:
            old.close()  # a render under way with it finishes on its last picture

    def handle_key(self, key: str) -> str | None:
        """Apply one key; returns a short description of the change, or None if the key is not ours."""
        with self._lock:
            r = self.render
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
                self.change({"preview.overlay": not self.overlay}, "key o")
                return f"overlay: {'on' if self.overlay else 'off'}"
            elif key == "f":
                self.change({"framing.enabled": not self.framing}, "key f")
                return f"framing: {'on' if self.framing else 'off'}"
            else:
                return None
            self.change({f"render.{k}": v for k, v in dataclasses.asdict(r).items()}, f"key {key}")
            return describe(self.render)

    def pause(self, mode: str = "still") -> None:
        """Send ``mode`` (:data:`PAUSE_MODES`): the last picture before the pause, or a blank
        frame, instead of the camera, until :meth:`resume`."""
        if mode not in PAUSE_MODES:
            raise ConfigError(f"pause must be one of: {', '.join(PAUSE_MODES)}, got {mode!r}")
        with self._lock:
            if self._pause is None or mode != self._pause:
                self._held = self._last if mode == "still" else None
                self._pause = mode
                self.changes += 1
                log.info("paused: sending %s", "the last picture" if mode == "still" else "a blank picture")

    def resume(self) -> None:
        with self._lock:
            if self._pause is not None:
                self._pause, self._held = None, None
                self.changes += 1
                log.info("resumed: sending the camera again")

    # -- what every composite goes through ---------------------------------------------------

    def present(self, composite: Composite) -> Composite:
        """``composite`` as the outputs get it: mirrored when ``render.mirror`` is on; while
        paused, the held still or a blank picture in its place (its mask and picture too, so no
        output shows the camera), with the frame's number and time."""
        from livebokeh.types import Composite, Frame, Mask

        self.presented += 1
        if self._cfg.render.mirror:
            composite = _mirrored(composite)
        mode = self._pause
        if mode is None:
            self._last = self._sent = composite
            return composite
        frame = composite.frame
        held = self._held if mode == "still" else None
        if held is None or held.image.shape != composite.image.shape:
            image, mask = self._blank_image(composite.image.shape[:2]), Mask(np.zeros((8, 8), np.float32))
        else:
            image, mask = held.image, held.mask
        self._sent = out = Composite(Frame(image, frame.index, frame.capture_ns, frame.time_s, frame.cut), image, mask)
        return out

    def _blank_image(self, shape: tuple[int, int]) -> Any:
        image = self._blank.get(shape)
        if image is None:
            image = np.zeros((*shape, 3), np.uint8)
            image.flags.writeable = False
            self._blank = {shape: image}
        return image

    def last_sent(self) -> Composite | None:
        """The last composite the outputs got (a pause's still or blank while paused; None before the first)."""
        return self._sent

    def close(self) -> None:
        """Close the background in use (the run's end)."""
        if self.background is not None:
            self.background.close()


def _mirrored(c: Composite) -> Composite:
    from livebokeh.types import Composite, Frame, Mask

    f = c.frame
    shown = None
    if c.shown is not None:
        x, y, w, h = c.shown
        shown = (f.width - x - w, y, w, h)
    return Composite(Frame(np.ascontiguousarray(f.image[:, ::-1]), f.index, f.capture_ns, f.time_s, f.cut),
                     np.ascontiguousarray(c.image[:, ::-1]), Mask(np.ascontiguousarray(c.mask.data[:, ::-1])), shown)


def _flat(cfg: Config) -> dict[str, Any]:
    return {f"{name}.{f.name}": getattr(getattr(cfg, name), f.name)
            for name in sections() for f in dataclasses.fields(getattr(cfg, name))}


def _scaled(r: RenderConfig, factor: float) -> RenderConfig:
    if r.fstop > 0:
        return dataclasses.replace(r, fstop=min(32.0, max(0.25, r.fstop / factor)))
    return dataclasses.replace(r, blur=min(0.25, max(0.002, r.blur * factor)))


def describe(r: RenderConfig) -> str:
    strength = f"f/{r.fstop:.2g} at {r.focus_distance:.2g} m" if r.fstop > 0 else f"blur {r.blur:.3f}"
    return f"effect {r.effect}, {strength}, {r.aperture}{', by depth' if r.depth else ''}"
