"""Configuration: frozen dataclasses, loaded from TOML, validated once, overridden by CLI flags.

A file holds any subset of the sections and keys below; what it leaves out keeps its default.
Unknown sections or keys, wrong types and out-of-range values raise :class:`ConfigError` with a
one-line message naming the key and what it accepts. ``configs/default.toml`` lists every key
with its default and meaning. ``configs/quality/*.toml`` are the ``--quality`` presets: the same
sections, plus ``[backend.NAME]`` tables for one backend (see :func:`quality_preset`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livebokeh.errors import ConfigError
from livebokeh.schema import choice as _choice
from livebokeh.schema import choices_of as _choices
from livebokeh.schema import coerce as _coerce
from livebokeh.schema import describe as _describe
from livebokeh.schema import number as _num
from livebokeh.schema import path as _path
from livebokeh.schema import plain as _plain
from livebokeh.segment.options import BACKEND_OPTIONS, MATTE_BACKENDS, DeepLabOptions, MediaPipeOptions, RVMOptions

#: The segmentation backends (the names ``livebokeh.segment.SEGMENTERS`` registers; a test keeps
#: them equal), each with its own settings section (:mod:`livebokeh.segment.options`).
BACKENDS: tuple[str, ...] = tuple(BACKEND_OPTIONS)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CameraConfig:
    device: str = _path(
        "0", "camera index (0, 1, ...), device path such as /dev/video2, or a video file played as a camera in real "
        "time at its own frame rate (frames the pipeline has no time for are dropped, as from a webcam)"
    )
    width: int = _num(1280, 16, 7680, "requested capture width in pixels")
    height: int = _num(720, 16, 4320, "requested capture height in pixels")
    fps: float = _num(30.0, 1.0, 240.0, "requested capture frame rate")
    fourcc: str = _plain("MJPG", "requested pixel format: MJPG (most webcams need it for 720p and 1080p at 30 fps), YUYV (raw), ...; empty keeps the camera's")
    watchdog: float = _num(2.0, 0.1, 60.0, "seconds without a frame after which the camera counts as lost")
    loop: bool = _plain(False, "a video file as the camera: play it again from the start when it ends")

    def __post_init__(self) -> None:
        if self.fourcc and len(self.fourcc) != 4:
            raise ConfigError(
                f"camera.fourcc must be 4 characters such as MJPG or YUYV (or empty), got {self.fourcc!r}"
            )


@dataclass(frozen=True)
class SegmenterConfig:
    """What every backend shares; each backend's own options are its section (``[rvm]``, ...)."""

    backend: str = _choice(
        "rvm", BACKENDS,
        "segmentation backend: rvm (matting, hair included; GPL-3.0 weights downloaded on first use), "
        "mediapipe (lightest; a 0.25 MB model downloaded on first use) or deeplab; its own options are in its section: "
        "[rvm], [mediapipe], [deeplab]"
    )
    threads: int = _num(
        0, 0, 64, "CPU threads for inference; 0 = automatic (1 on machines with up to 4 cores, where the "
        "pipeline's stages already fill them, else 2; a recurrent model reading a file, which runs one frame "
        "at a time while the rest waits on it, every core up to 4)"
    )
    rate: float = _num(
        0.0, 0.0, 240.0, "live: most model runs a second, masks moved by optical flow to the frames between "
        "(0 = automatic: RVM on the CPU runs at most 60% of the time, about 12 a second here; the others as fast as they go)"
    )
    roi: bool = _plain(True, "second model pass on the region around the person: sharper edges, up to 2x inference")
    tta: str = _choice(
        "auto", ("auto", "on", "off"),
        "also segment the mirrored picture and average (2x inference); auto = on for single images only",
    )


#: Keys that ``[segmenter]`` held before each backend had its own section: old key -> the new
#: keys it sets. Still read (with a warning) from settings files and presets.
MOVED_SEGMENTER_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("mediapipe.model",),
    "size": ("deeplab.size", "rvm.size"),  # the one size meant the chosen backend's
    "backbone": ("rvm.backbone",),
    "aspect": ("deeplab.aspect",),
    "runtime": ("deeplab.runtime",),
    "precision": ("deeplab.precision",),
    "weights": ("deeplab.weights",),
    "rvm_weights": ("rvm.weights",),
}


@dataclass(frozen=True)
class MaskConfig:
    low: float = _num(
        -1.0, -1.0, 1.0, "model output at or below which a pixel is pure background (-1 = automatic: 0.4 for "
        "probability models, 0 for matting models such as RVM, whose output is already an alpha)"
    )
    high: float = _num(
        -1.0, -1.0, 1.0, "model output at or above which a pixel is pure person (-1 = automatic: 0.6 for "
        "probability models, 1 for matting models)"
    )
    feather: float = _num(0.0015, 0.0, 0.1, "edge softness: Gaussian sigma as a fraction of frame height")
    smoothing: float = _num(
        1.0, 0.0, 1.0, "temporal smoothing of the mask (0 = off, 1 = strongest, the default)"
    )
    flow: bool = _plain(True, "move the mask history with optical flow before smoothing (no lag on motion)")
    lookahead: int = _num(
        -1, -1, 8, "files only: frames ahead that also smooth each mask (0 = causal, as live; -1 = automatic: "
        "2 for DeepLab, 0 for MediaPipe, where it measured no gain)"
    )
    guided: str = _choice(
        "auto", ("auto", "on", "off"),
        "upsample the mask guided by the frame so edges follow the picture; auto = on for coarse models (DeepLab)",
    )
    guided_radius: float = _num(0.03, 0.001, 0.1, "guided filter radius as a fraction of frame height")
    guided_eps: float = _num(0.0001, 1e-6, 0.1, "guided filter regularisation (larger = softer, closer to plain)")
    islands: float = _num(0.05, 0.0, 1.0, "drop person blobs smaller than this share of the largest (0 = off)")

    def __post_init__(self) -> None:
        for key in ("low", "high"):
            value = getattr(self, key)
            if value < 0 and value != -1:  # only -1 means automatic
                raise ConfigError(f"mask.{key} ({value:g}) must be from 0 to 1, or -1 for automatic")
        if self.low >= 0 and self.high >= 0 and self.low >= self.high:
            raise ConfigError(f"mask.low ({self.low}) must be smaller than mask.high ({self.high})")


#: ``[mask] low`` and ``high`` when automatic (-1), for a matting model (its output is an alpha
#: already) and for a probability model (:func:`livebokeh.mask.resolve_auto`).
AUTO_MASK_RANGE = {True: (0.0, 1.0), False: (0.4, 0.6)}


def check_mask_range(mask: MaskConfig, backend: str, names: Mapping[str, str] | None = None) -> None:
    """Refuse a ``[mask]`` low or high that leaves no room for the other's automatic value with
    ``backend`` (``--mask-high 0.2`` with MediaPipe, whose automatic low is 0.4), before a model
    loads; ``backend`` ``given``: the masks of ``--mask`` (alpha mattes). ``names``: how to call
    ``mask.low`` and ``mask.high`` (the flags that set them).

    Raises:
        ConfigError: one line naming both, the automatic value and what to do.
    """
    if (mask.low < 0) == (mask.high < 0) or backend not in (*BACKEND_OPTIONS, "given"):
        return  # both automatic, or both given (MaskConfig checks those)
    auto_low, auto_high = AUTO_MASK_RANGE[backend in MATTE_BACKENDS or backend == "given"]
    low, high = (auto_low if mask.low < 0 else mask.low), (auto_high if mask.high < 0 else mask.high)
    if low < high:
        return
    names = names or {}
    given, auto = ("low", "high") if mask.low >= 0 else ("high", "low")
    g, a = (names.get(f"mask.{k}") or f"mask.{k}" for k in (given, auto))
    side = "below" if given == "low" else "above"
    value, other = (low, high) if given == "low" else (high, low)
    what = "masks given with --mask" if backend == "given" else f"the {backend} backend"
    raise ConfigError(f"{g} {value:g} must be {side} {a}, which is {other:g} for {what} (automatic); "
                      f"give {a} as well, or a {g} {side} {other:g}")


@dataclass(frozen=True)
class RenderConfig:
    effect: str = _choice("blur", ("blur", "replace", "none"), "background effect")
    blur: float = _num(0.03, 0.0, 0.25, "background blur radius as a fraction of frame height (0.015 subtle, 0.06 strong)")
    fstop: float = _num(
        0.0, 0.0, 32.0, "f-number-like strength (1.4 strong ... 8 subtle): radius = 0.06 / fstop; 0 = use blur"
    )
    focus_distance: float = _num(
        1.0, 0.3, 100.0, "with fstop: metres from the camera to the person, where the lens focuses (a 50 mm "
        "full-frame lens): nearer blurs the background more, as a real lens does"
    )
    depth: bool = _plain(
        False, "blur grows with the distance from the person's depth, from a depth model beside the matte (what "
        "is near them, such as the floor at their feet, stays near focus; the far end gets blur or fstop's blur)"
    )
    max_blur: float = _num(
        0.0, 0.0, 0.25, "with depth: largest blur radius, as a fraction of frame height, for what is in front of "
        "the person (0 = no more than the far end's)"
    )
    depth_weights: str = _path(
        "", "depth model file (.onnx); empty = LIVEBOKEH_DEPTH_WEIGHTS, the cache or a download"
    )
    aperture: str = _choice("disc", ("disc", "polygon", "gaussian"), "bokeh shape")
    blades: int = _num(6, 3, 12, "aperture blades for the polygon shape")
    linear: bool = _plain(True, "blur in linear light (lens-like; false = on the encoded pixels)")
    highlights: float = _num(2.0, 0.0, 10.0, "boost of clipped highlights into bokeh discs (0 = off)")
    light_wrap: float = _num(0.3, 0.0, 1.0, "background light spilling over the person's edge (0 = off)")
    light_wrap_size: float = _num(0.008, 0.0, 0.1, "light wrap width as a fraction of frame height")
    background: str = _path(
        "", "new background for effect replace: an image, a video (looped) or a colour (#00ff00, green, chroma-green)"
    )
    unmix: bool = _plain(
        True, "effect replace: take the old background's colour out of the person's partly transparent edge "
        "(hair) before the new one goes behind"
    )
    mirror: bool = _plain(False, "flip the output left to right, as a mirror shows you (what the virtual camera sends too)")


@dataclass(frozen=True)
class VirtualCameraConfig:
    enabled: bool = _plain(True, "send live output to a virtual camera")
    device: str = _path("", "virtual camera device (e.g. /dev/video10); empty = first free one")
    backend: str = _plain("", "pyvirtualcam backend (v4l2loopback, obs, unitycapture); empty = any")
    fps: float = _num(0.0, 0.0, 240.0, "frame rate announced to the virtual camera; 0 = the source's")
    on_demand: bool = _plain(
        False, "run the camera and the model only while an app has the virtual camera open (Linux); "
        "idle otherwise, the webcam released"
    )


@dataclass(frozen=True)
class PreviewConfig:
    enabled: bool = _plain(True, "show a preview window for live sources")
    overlay: bool = _plain(False, "draw settings, fps and latency over the preview (key o toggles)")


@dataclass(frozen=True)
class OutputConfig:
    crf: int = _num(18, 0, 63, "video quality: lower is better and bigger (H.264 and VP9)")
    preset: str = _choice(
        "veryfast",
        ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"),
        "x264 speed preset: slower presets give smaller files at the same quality",
    )
    audio: bool = _plain(True, "keep the input's audio (copied, or re-encoded to AAC when the container needs it)")


@dataclass(frozen=True)
class FramingConfig:
    enabled: bool = _plain(False, "auto-framing: a virtual camera operator follows the person with pan and zoom")
    zoom_max: float = _num(2.0, 1.0, 4.0, "the most it zooms in (2 = half the picture's height)")
    share: float = _num(0.85, 0.3, 1.0, "share of the crop's height the person fills, head to the mask's bottom")
    headroom: float = _num(0.12, 0.0, 0.4, "space above the head, as a share of the crop's height")
    dead_zone: float = _num(0.06, 0.0, 0.3, "moves smaller than this (a share of the picture) do not move the frame")
    response: float = _num(0.6, 0.1, 5.0, "seconds the frame takes to follow a move (critically damped)")
    speed: float = _num(0.6, 0.05, 5.0, "fastest pan or zoom, as a share of the picture a second")
    lookahead: float = _num(0.5, 0.0, 3.0, "files: seconds of look-ahead each side (the path smoothed both ways, no lag)")


@dataclass(frozen=True)
class LiveConfig:
    adapt: bool = _plain(
        True, "keep the camera's frame rate first: under load the model runs less often, then smaller, then "
        "the fallback backend takes over, then the render gets lighter; back up when there is room again"
    )
    fallback: str = _choice(
        "mediapipe", ("",) + BACKENDS, "backend the live controller falls back to as its last resort (empty: none)"
    )


@dataclass(frozen=True)
class PipelineConfig:
    queue_size: int = _num(4, 1, 64, "frames buffered between stages when processing files")


@dataclass(frozen=True)
class ControlConfig:
    enabled: bool = _plain(
        True, "live runs serve a control page on this computer only (127.0.0.1) and answer `livebokeh ctl`"
    )
    port: int = _num(0, 0, 65535, "the control page's port on 127.0.0.1; 0 = any free one (`livebokeh ctl status` tells)")
    backgrounds: str = _path(
        "", "a folder of pictures and videos the control page offers as backgrounds; empty = only those uploaded "
        "there (kept in the user's data folder, livebokeh/backgrounds)"
    )


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    mediapipe: MediaPipeOptions = field(default_factory=MediaPipeOptions)
    deeplab: DeepLabOptions = field(default_factory=DeepLabOptions)
    rvm: RVMOptions = field(default_factory=RVMOptions)
    mask: MaskConfig = field(default_factory=MaskConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    virtual_camera: VirtualCameraConfig = field(default_factory=VirtualCameraConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    framing: FramingConfig = field(default_factory=FramingConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    control: ControlConfig = field(default_factory=ControlConfig)

    def backend_options(self) -> Any:
        """The chosen backend's own options (its section)."""
        return getattr(self, self.segmenter.backend)


def with_backend(cfg: Config, backend: str) -> Config:
    """``cfg`` with ``backend`` chosen (its section as ``cfg`` has it)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown segmenter backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    return dataclasses.replace(cfg, segmenter=dataclasses.replace(cfg.segmenter, backend=backend))


# ---------------------------------------------------------------------------------------------
# Loading and overriding.


def sections() -> dict[str, type]:
    """Section name -> dataclass, in file order."""
    defaults = Config()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(Config)}


@dataclass(frozen=True)
class KeyInfo:
    """What the schema says of one settings key: the single source of a flag's help, type and
    default (``livebokeh --help``) and of the comments of ``--print-config``."""

    key: str
    doc: str
    default: Any
    accepts: str  # "a number from 0 to 0.25", "one of: blur, replace, none", ...
    choices: tuple[str, ...] = ()


#: ``model.KEY`` (the command line's ``--model-size``) is the chosen backend's ``KEY``.
CHOSEN = "model"


def describe_key(dotted: str) -> KeyInfo:
    """The schema's description of ``section.key`` (KeyError for an unknown key); ``model.KEY``
    describes the key of that name that the backends which have one share."""
    section, _, name = dotted.partition(".")
    if section == CHOSEN:
        owners = [(b, f) for b in BACKENDS for f in dataclasses.fields(BACKEND_OPTIONS[b]) if f.name == name]
        if not owners:
            raise KeyError(dotted)
        doc = "the chosen backend's " + name + ": " + "; ".join(f"{b}: {f.metadata.get('doc', '')}" for b, f in owners)
        return KeyInfo(dotted, doc, owners[0][1].default, _describe(owners[0][1]))
    fields = {f.name: f for f in dataclasses.fields(sections()[section])}
    f = fields[name]
    choices = _choices(f) if "choices" in f.metadata else ()
    return KeyInfo(dotted, f.metadata.get("doc", ""), f.default, _describe(f), choices)


def field_of(dotted: str) -> dataclasses.Field:
    """The schema's field of ``section.key`` (ConfigError naming the keys there for an unknown one)."""
    section, _, name = dotted.partition(".")
    known = sections()
    if section not in known:
        raise ConfigError(f"unknown settings key {dotted!r}; sections: {', '.join(known)}")
    fields = {f.name: f for f in dataclasses.fields(known[section])}
    if name not in fields:
        raise ConfigError(f"unknown key '{dotted}'; allowed keys in [{section}]: {', '.join(fields)}")
    return fields[name]


def _moved(updates: Mapping[str, Any], origin: str) -> Mapping[str, Any]:
    """``updates`` with ``[segmenter]``'s old keys moved to the backends' sections (a warning
    says where each now lives); a key the same layer also sets at its new place keeps that one."""
    seg = updates.get("segmenter")
    if not isinstance(seg, Mapping) or not MOVED_SEGMENTER_KEYS.keys() & seg.keys():
        return updates
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in updates.items()}
    for old in [k for k in seg if k in MOVED_SEGMENTER_KEYS]:
        value = out["segmenter"].pop(old)
        new_keys = MOVED_SEGMENTER_KEYS[old]
        for new in new_keys:
            section, _, key = new.partition(".")
            target = out.setdefault(section, {})
            if isinstance(target, Mapping):
                target.setdefault(key, value)
        where = " and ".join(f"[{n.partition('.')[0]}] {n.partition('.')[2]}" for n in new_keys)
        log.warning("%s: segmenter.%s has moved to %s (each backend has its own section now); it still works "
                    "for now: move it there (`livebokeh --print-config` writes every key where it lives)", origin, old, where)
    return out


def _apply(cfg: Config, updates: Mapping[str, Mapping[str, Any]], origin: str,
           flags: Mapping[str, str] | None = None) -> Config:
    """``cfg`` with ``updates`` (section -> key -> value) checked and applied; errors name
    ``origin`` and the key, or for a key in ``flags`` (``{"render.blur": "--blur"}``) the flag
    that gave the value."""
    flags = flags or {}
    known = sections()
    new_sections = {}
    for section_name, values in _moved(updates, origin).items():
        if section_name not in known:
            raise ConfigError(
                f"{origin}: unknown section [{section_name}]; allowed sections: {', '.join(known)}"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"{origin}: [{section_name}] must be a table of keys")
        section = new_sections.get(section_name, getattr(cfg, section_name))
        fields = {f.name: f for f in dataclasses.fields(section)}
        changes = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"{origin}: unknown key '{section_name}.{key}'; allowed keys in "
                    f"[{section_name}]: {', '.join(fields)}"
                )
            dotted = f"{section_name}.{key}"
            changes[key] = _coerce(flags.get(dotted) or f"{origin}: {dotted}", fields[key], value)
        try:
            new_sections[section_name] = dataclasses.replace(section, **changes)
        except ConfigError as err:
            # a check across keys (mask.low < mask.high): named by the flags that gave them
            message = str(err)
            given = {f"{section_name}.{k}": flags[f"{section_name}.{k}"] for k in changes if f"{section_name}.{k}" in flags}
            for dotted, flag in given.items():
                message = message.replace(dotted, flag)
            raise ConfigError(message if given else f"{origin}: {message}") from None
    return dataclasses.replace(cfg, **new_sections)


def _nested(overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    return nested


def apply_keys(cfg: Config, keys: Mapping[str, Any], origin: str) -> Config:
    """``cfg`` with the dotted keys of ``keys`` set, each checked by the schema (any backend's
    section, chosen or not: the benchmarks give every backend its weights)."""
    return _apply(cfg, _nested(keys), origin) if keys else cfg


def override(cfg: Config, overrides: Mapping[str, Any], origin: str = "command line",
             flags: Mapping[str, str] | None = None) -> Config:
    """``cfg`` with the dotted keys of ``overrides`` (``{"render.blur": 0.05}``) over it, checked.

    A key of a backend's section applies only when that backend is the one chosen (by these
    overrides or by ``cfg``): another backend's key is an error naming the keys that apply, not
    silence. ``model.KEY`` is the chosen backend's ``KEY``. ``flags`` names each key's
    command-line flag, for the messages.
    """
    nested = _nested(overrides)
    chosen = nested.get("segmenter", {}).get("backend", cfg.segmenter.backend)
    if chosen not in BACKENDS:  # the schema's message
        _apply(cfg, {"segmenter": {"backend": chosen}}, origin, flags)

    def named(key: str) -> str:
        flag = (flags or {}).get(key) or (flags or {}).get(f"{CHOSEN}.{key.partition('.')[2]}")
        return f"{flag} ({key})" if flag else key

    def takes() -> str:
        keys = [f"{chosen}.{f.name}" for f in dataclasses.fields(BACKEND_OPTIONS[chosen])]
        own = ", ".join(named(k) for k in keys) if keys else "no options of its own"
        return f"{chosen} takes {own}"

    flags = dict(flags or {})
    for key, value in nested.pop(CHOSEN, {}).items():
        names = {f.name for f in dataclasses.fields(BACKEND_OPTIONS[chosen])}
        if key not in names:
            flag = flags.get(f"{CHOSEN}.{key}", f"{CHOSEN}.{key}")
            raise ConfigError(f"{origin}: {flag} does not apply to the {chosen} backend; {takes()}")
        nested.setdefault(chosen, {})[key] = value
        if f"{CHOSEN}.{key}" in flags:  # a bad value is named by the flag typed
            flags.setdefault(f"{chosen}.{key}", flags[f"{CHOSEN}.{key}"])
    for section, values in nested.items():
        if section in BACKENDS and section != chosen:
            key = f"{section}.{next(iter(values))}"
            choose = f"{(flags or {}).get('segmenter.backend', 'segmenter.backend =')} {section}"
            raise ConfigError(f"{origin}: {named(key)} does not apply to the {chosen} backend (it is {section}'s); "
                              f"{takes()}; leave it out, or choose {choose}")
    return _apply(cfg, nested, origin, flags) if nested else cfg


def load_config(
    path: str | Path | Sequence[str | Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
    quality: str | None = None,
    flags: Mapping[str, str] | None = None,
) -> Config:
    """Build a :class:`Config`: the defaults, then each file in turn, then the quality preset, then
    the overrides (each layer above the ones before it).

    Args:
        path: a TOML file or a preset name (see :func:`preset_names`), a sequence of them (a later
            file wins over an earlier one), or None for the defaults.
        overrides: dotted keys such as ``{"render.blur": 0.05}`` applied last (these come from
            command-line flags and are checked the same way, see :func:`override`: a key of a
            backend other than the chosen one is an error).
        quality: the name of a quality preset (see :func:`quality_names`), applied between the
            files and the overrides; its per-backend tables follow the backend the other layers
            choose.
        flags: each override's command-line flag, for the messages.

    A file's section of a backend other than the chosen one is kept (it applies when that
    backend is chosen): one settings file may hold every backend's options.
    """
    cfg = Config()
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    for item in paths:
        file = resolve_config_path(item)
        cfg = _apply(cfg, _read_toml(file), str(file))
    overrides = overrides or {}
    if quality is not None:
        cfg = _apply_quality(cfg, quality, _nested(overrides))
    return override(cfg, overrides, "command line", flags)


def parse_settings(text: str, origin: str, base: Config | None = None) -> Config:
    """The settings a TOML text gives over ``base`` (default: the defaults), checked as a file's."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{origin}: not valid TOML ({err})") from None
    return _apply(base or Config(), data, origin)


def toml_value(value: Any) -> str:
    """``value`` (a bool, number or string) as TOML writes it."""
    return _toml_value(value)


def with_implied(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line overrides with what they imply: a background given on the command line is
    meant to be seen, so ``--background`` without ``--effect`` means ``--effect replace`` (over
    any settings file); beside ``--effect blur`` or ``none`` it is refused (the preview's e key
    switches effects live)."""
    out = dict(overrides)
    background, effect = out.get("render.background"), out.get("render.effect")
    if background and effect is None:
        out["render.effect"] = "replace"
    elif background and effect != "replace":
        raise ConfigError(f"--background {background} is shown only with --effect replace, not --effect {effect}; "
                          "leave out --effect (or --background)")
    return out


def _read_toml(file: Path, flag: str = "--config") -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_bytes().decode("utf-8-sig"))  # a BOM (Windows editors) is fine
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not UTF-8 text; save it as UTF-8 (plain text) or pass another {flag}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML ({err}); fix the file or pass another {flag}") from None
    except OSError as err:
        raise ConfigError(f"cannot read config {file}: {err.strerror}") from None


def presets_dir() -> Path:
    """Folder of the shipped presets: inside the installed package, else the repository's."""
    installed = Path(__file__).resolve().parent / "configs"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "configs"


def preset_names() -> tuple[str, ...]:
    """The ``--config`` presets: the TOML files directly in :func:`presets_dir`."""
    return tuple(sorted(p.stem for p in presets_dir().glob("*.toml")))


def resolve_config_path(name: str | Path) -> Path:
    """A path to an existing file, or the file of a preset name such as ``call``."""
    p = Path(name)
    if p.is_file():
        return p
    if p.suffix == "" and str(name) in preset_names():
        return presets_dir() / f"{name}.toml"
    if os.path.lexists(p):  # something there that is no file: named, not taken for a mistyped preset
        from livebokeh.errors import file_kind

        try:
            what = file_kind(p.stat().st_mode)
        except (OSError, RuntimeError):
            what = "a link to nothing it can read (missing, or a loop)"
        raise ConfigError(f"config {str(name)!r} is {what}, not a settings file; give a TOML file or a preset")
    raise ConfigError(
        f"config {str(name)!r} is neither a file nor a preset; presets: {', '.join(preset_names())}"
    )


# ---------------------------------------------------------------------------------------------
# Quality presets (``--quality``): configs/quality/NAME.toml. Top-level sections apply whatever the
# backend; ``[backend.NAME]`` holds sections (``mask.lookahead = 4`` or ``[backend.NAME.mask]``)
# that apply, over the top-level ones, only when NAME is the chosen backend.


def quality_dir() -> Path:
    """Folder of the ``--quality`` presets (a subfolder, so they are no ``--config`` presets)."""
    return presets_dir() / "quality"


def quality_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in quality_dir().glob("*.toml")))


def quality_preset(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str]:
    """The preset ``name``, read and checked against the schema (every backend's tables, chosen or
    not): its top-level sections, its sections per backend, and its file (for messages)."""
    if name not in quality_names():
        raise ConfigError(f"--quality {name!r} is not a quality preset; presets: {', '.join(quality_names())}")
    file = quality_dir() / f"{name}.toml"
    data = _read_toml(file, "--quality")
    per_backend = data.pop("backend", {})
    if not isinstance(per_backend, Mapping):
        raise ConfigError(f"{file}: [backend] must be a table of backend names such as [backend.rvm]")
    _apply(Config(), data, str(file))
    for backend, sections_ in per_backend.items():
        origin = f"{file} [backend.{backend}]"
        if backend not in BACKENDS:
            raise ConfigError(f"{file}: unknown backend [backend.{backend}]; backends: {', '.join(BACKENDS)}")
        if not isinstance(sections_, Mapping):
            raise ConfigError(f"{origin} must be a table of sections such as mask.lookahead = 4")
        if isinstance(sections_.get("segmenter"), Mapping) and "backend" in sections_["segmenter"]:
            raise ConfigError(f"{origin}: cannot set segmenter.backend (it is what chooses this table)")
        others = [s for s in sections_ if s in BACKENDS and s != backend]
        if others:
            raise ConfigError(f"{origin}: sets [{others[0]}], another backend's options; a [backend.{backend}] "
                              f"table sets {backend}'s own ({backend}.KEY) and the shared sections")
        _apply(Config(), sections_, origin)
    return data, dict(per_backend), str(file)


def _apply_quality(cfg: Config, name: str, overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """``cfg`` with quality preset ``name`` over it, for the backend the preset's top level and the
    command line (``overrides``, applied by the caller afterwards) choose."""
    common, per_backend, file = quality_preset(name)
    cfg = _apply(cfg, common, file)
    chosen = overrides.get("segmenter", {}).get("backend", cfg.segmenter.backend)
    if chosen in per_backend:
        cfg = _apply(cfg, per_backend[chosen], f"{file} [backend.{chosen}]")
    return cfg


def to_toml(cfg: Config, names: Mapping[str, str] | None = None) -> str:
    """The configuration as TOML text, with each key's meaning as a comment. ``names``: the flag
    that set a key (``{"camera.device": "--camera"}``), to name it in the error for a value that
    TOML cannot hold."""
    lines: list[str] = []
    for section_name in sections():
        section = getattr(cfg, section_name)
        lines.append(f"[{section_name}]")
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, str) and not _utf8(value):  # a path from a non-UTF-8 file name
                key = f"{section_name}.{f.name}"
                raise ConfigError(
                    f"{(names or {}).get(key, key)} {value.encode('utf-8', 'surrogateescape')!r} is not UTF-8 text, "
                    "which a settings file cannot hold; rename it, or give it as a flag beside --config"
                )
            lines.append(f"# {f.metadata.get('doc', '')} ({_describe(f)})")
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a TOML basic string: control characters (C0, DEL, C1) as \uXXXX
        return '"' + "".join(f"\\{c}" if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F
                             else c for c in value) + '"'
    return repr(value)
