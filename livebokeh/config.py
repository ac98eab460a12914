"""Configuration: frozen dataclasses, loaded from TOML, validated once, overridden by CLI flags.

A file holds any subset of the sections and keys below; what it leaves out keeps its default.
Unknown sections or keys, wrong types and out-of-range values raise :class:`ConfigError` with a
one-line message naming the key and what it accepts. ``configs/default.toml`` lists every key
with its default and meaning. ``configs/quality/*.toml`` are the ``--quality`` presets: the same
sections, plus ``[backend.NAME]`` tables for one backend (see :func:`quality_preset`).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livebokeh.errors import ConfigError

# ---------------------------------------------------------------------------------------------
# Field helpers: the metadata of each field says what values it accepts.


def _num(default: float, lo: float, hi: float, doc: str) -> Any:
    return field(default=default, metadata={"range": (lo, hi), "doc": doc})


def _choice(default: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]], doc: str) -> Any:
    return field(default=default, metadata={"choices": choices, "doc": doc})


def _plain(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


#: The segmentation backends (the names ``livebokeh.segment.SEGMENTERS`` registers; a test keeps
#: them equal). Named here so that the settings schema does not import the segmenters.
BACKENDS: tuple[str, ...] = ("mediapipe", "deeplab", "rvm")


@dataclass(frozen=True)
class CameraConfig:
    device: str = _plain("0", "camera index (0, 1, ...) or device path such as /dev/video2")
    width: int = _num(1280, 16, 7680, "requested capture width in pixels")
    height: int = _num(720, 16, 4320, "requested capture height in pixels")
    fps: float = _num(30.0, 1.0, 240.0, "requested capture frame rate")
    fourcc: str = _plain("MJPG", "requested pixel format: MJPG (most webcams need it for 720p and 1080p at 30 fps), YUYV (raw), ...; empty keeps the camera's")
    watchdog: float = _num(2.0, 0.1, 60.0, "seconds without a frame after which the camera counts as lost")

    def __post_init__(self) -> None:
        if self.fourcc and len(self.fourcc) != 4:
            raise ConfigError(
                f"camera.fourcc must be 4 characters such as MJPG or YUYV (or empty), got {self.fourcc!r}"
            )


@dataclass(frozen=True)
class SegmenterConfig:
    backend: str = _choice(
        "rvm", BACKENDS,
        "segmentation backend: rvm (matting, hair included; GPL-3.0 weights downloaded on first use), "
        "mediapipe (bundled, lightest) or deeplab"
    )
    model: str = _choice(
        "general", ("general", "landscape"), "MediaPipe model: general (256x256) or landscape (144x256, faster)"
    )
    threads: int = _num(
        0, 0, 64, "CPU threads for inference; 0 = automatic (1 on machines with up to 4 cores, where the "
        "pipeline's stages already fill them, else 2; a recurrent model reading a file, which runs one frame "
        "at a time while the rest waits on it, every core up to 4)"
    )
    size: int = _num(
        0, 0, 2049, "model input in pixels: DeepLab's height (0 = 257 on the CPU, 513 on a GPU); RVM's long side "
        "(0 = 640 for files, 512 live), where its refiner works"
    )
    backbone: int = _num(
        0, 0, 2048, "RVM: long side in pixels of the picture its backbone sees (0 = automatic: 384 for files, "
        "512 with --quality best, 256 live); larger is finer and slower"
    )
    rate: float = _num(
        0.0, 0.0, 240.0, "live: most model runs a second, masks moved by optical flow to the frames between "
        "(0 = automatic: RVM on the CPU runs at most 60% of the time, about 12 a second here; the others as fast as they go)"
    )
    aspect: str = _choice("square", ("square", "frame"), "DeepLab input shape: square, or the frame's aspect ratio")
    runtime: str = _choice(
        "auto", ("auto", "tflite", "keras"),
        "DeepLab runtime: tflite (CPU, 257x257 only), keras (TensorFlow graph, GPU when present), auto",
    )
    precision: str = _choice(
        "auto", ("auto", "float32", "mixed"), "DeepLab keras precision; auto = float32 (mixed float16 measured no faster at batch 1)"
    )
    weights: str = _plain("", "DeepLab weights file; empty = LIVEBOKEH_DEEPLAB_WEIGHTS, the cache or a download")
    decoder: str = _choice(
        "auto", ("auto", "on", "off"),
        "DeepLab-v3+ decoder (livebokeh's, trained for people): auto = on when its weights are there (they ship "
        "with livebokeh; LIVEBOKEH_DEEPLAB_DECODER names another file), off = DeepLab-v3 as Google released it",
    )
    rvm_weights: str = _plain("", "RVM weights file (.onnx); empty = LIVEBOKEH_RVM_WEIGHTS, the cache or a download")
    roi: bool = _plain(True, "second model pass on the region around the person: sharper edges, up to 2x inference")
    tta: str = _choice(
        "auto", ("auto", "on", "off"),
        "also segment the mirrored picture and average (2x inference); auto = on for single images only",
    )


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
        if self.low >= 0 and self.high >= 0 and self.low >= self.high:
            raise ConfigError(f"mask.low ({self.low}) must be smaller than mask.high ({self.high})")


@dataclass(frozen=True)
class RenderConfig:
    effect: str = _choice("blur", ("blur", "replace", "none"), "background effect")
    blur: float = _num(0.03, 0.0, 0.25, "background blur radius as a fraction of frame height (0.015 subtle, 0.06 strong)")
    fstop: float = _num(
        0.0, 0.0, 32.0, "f-number-like strength (1.4 strong ... 8 subtle): radius = 0.06 / fstop; 0 = use blur"
    )
    aperture: str = _choice("disc", ("disc", "polygon", "gaussian"), "bokeh shape")
    blades: int = _num(6, 3, 12, "aperture blades for the polygon shape")
    linear: bool = _plain(True, "blur in linear light (lens-like; false = on the encoded pixels)")
    highlights: float = _num(2.0, 0.0, 10.0, "boost of clipped highlights into bokeh discs (0 = off)")
    light_wrap: float = _num(0.3, 0.0, 1.0, "background light spilling over the person's edge (0 = off)")
    light_wrap_size: float = _num(0.008, 0.0, 0.1, "light wrap width as a fraction of frame height")
    background: str = _plain(
        "", "new background for effect replace: an image, a video (looped) or a colour (#00ff00, green, chroma-green)"
    )
    unmix: bool = _plain(
        True, "effect replace: take the old background's colour out of the person's partly transparent edge "
        "(hair) before the new one goes behind"
    )


@dataclass(frozen=True)
class VirtualCameraConfig:
    enabled: bool = _plain(True, "send live output to a virtual camera")
    device: str = _plain("", "virtual camera device (e.g. /dev/video10); empty = first free one")
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
class PipelineConfig:
    queue_size: int = _num(4, 1, 64, "frames buffered between stages when processing files")


@dataclass(frozen=True)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    virtual_camera: VirtualCameraConfig = field(default_factory=VirtualCameraConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    framing: FramingConfig = field(default_factory=FramingConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)


# ---------------------------------------------------------------------------------------------
# Loading and overriding.


def sections() -> dict[str, type]:
    """Section name -> dataclass, in file order."""
    defaults = Config()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(Config)}


def _describe(f: dataclasses.Field) -> str:
    md = f.metadata
    if "range" in md:
        lo, hi = md["range"]
        return f"a number from {lo:g} to {hi:g}"
    if "choices" in md:
        return "one of: " + ", ".join(_choices(f))
    return {bool: "true or false", str: "a string"}.get(type(f.default), "a value")


@dataclass(frozen=True)
class KeyInfo:
    """What the schema says of one settings key: the single source of a flag's help, type and
    default (``livebokeh --help``) and of the comments of ``--print-config``."""

    key: str
    doc: str
    default: Any
    accepts: str  # "a number from 0 to 0.25", "one of: blur, replace, none", ...
    choices: tuple[str, ...] = ()


def describe_key(dotted: str) -> KeyInfo:
    """The schema's description of ``section.key`` (KeyError for an unknown key)."""
    section, _, name = dotted.partition(".")
    fields = {f.name: f for f in dataclasses.fields(sections()[section])}
    f = fields[name]
    choices = _choices(f) if "choices" in f.metadata else ()
    return KeyInfo(dotted, f.metadata.get("doc", ""), f.default, _describe(f), choices)


def _choices(f: dataclasses.Field) -> tuple[str, ...]:
    ch = f.metadata["choices"]
    return ch() if callable(ch) else ch


def _coerce(key: str, f: dataclasses.Field, value: Any, origin: str) -> Any:
    """Check ``value`` for field ``f`` (named ``key``) and return it in the field's type."""
    expected = type(f.default)
    bad = ConfigError(f"{origin}: {key} must be {_describe(f)}, got {value!r}")
    if expected is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if expected in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if expected is int and (isinstance(value, float) and not value.is_integer()):
            raise bad
        value = expected(value)
        if not math.isfinite(value):
            raise bad
        lo, hi = f.metadata["range"]
        if not lo <= value <= hi:
            raise bad
        return value
    if expected is str:
        if not isinstance(value, str):
            raise bad
        if "choices" in f.metadata and value not in _choices(f):
            raise bad
        return value
    raise TypeError(f"unsupported config field type for {key}")  # programming error


def _apply(cfg: Config, updates: Mapping[str, Mapping[str, Any]], origin: str) -> Config:
    known = sections()
    new_sections = {}
    for section_name, values in updates.items():
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
            changes[key] = _coerce(f"{section_name}.{key}", fields[key], value, origin)
        try:
            new_sections[section_name] = dataclasses.replace(section, **changes)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from None
    return dataclasses.replace(cfg, **new_sections)


def load_config(
    path: str | Path | Sequence[str | Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
    quality: str | None = None,
) -> Config:
    """Build a :class:`Config`: the defaults, then each file in turn, then the quality preset, then
    the overrides (each layer above the ones before it).

    Args:
        path: a TOML file or a preset name (see :func:`preset_names`), a sequence of them (a later
            file wins over an earlier one), or None for the defaults.
        overrides: dotted keys such as ``{"render.blur": 0.05}`` applied last (these come from
            command-line flags and are checked the same way).
        quality: the name of a quality preset (see :func:`quality_names`), applied between the
            files and the overrides; its per-backend tables follow the backend the other layers
            choose.
    """
    cfg = Config()
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    for item in paths:
        file = resolve_config_path(item)
        cfg = _apply(cfg, _read_toml(file), str(file))
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    if quality is not None:
        cfg = _apply_quality(cfg, quality, nested)
    if nested:
        cfg = _apply(cfg, nested, "command line")
    return cfg


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


def to_toml(cfg: Config) -> str:
    """The configuration as TOML text, with each key's meaning as a comment."""
    lines: list[str] = []
    for section_name in sections():
        section = getattr(cfg, section_name)
        lines.append(f"[{section_name}]")
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            lines.append(f"# {f.metadata.get('doc', '')} ({_describe(f)})")
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
