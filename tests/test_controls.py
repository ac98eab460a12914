from livebokeh.config import RenderConfig
from livebokeh.controls import LiveControls
from livebokeh.sinks import PreviewSink
from livebokeh.sinks.preview import draw_overlay


def test_keys_change_the_render_settings():
    c = LiveControls(RenderConfig(blur=0.04), can_replace=True)
    assert "blur 0.050" in c.handle_key("+")
    c.handle_key("-")
    c.handle_key("-")
    assert abs(c.render.blur - 0.032) < 1e-9
    assert [c.handle_key("e") and c.render.effect for _ in range(3)] == ["replace", "none", "blur"]
    assert c.handle_key("m") == "view: mask" and c.show_mask
    assert c.handle_key("o") == "overlay: on" and c.overlay
    assert c.handle_key("z") is None


def test_fstop_is_what_the_keys_change_when_set_and_replace_is_skipped_without_background():
    c = LiveControls(RenderConfig(fstop=2.8))
    c.handle_key("+")
    assert c.render.fstop < 2.8 and c.render.blur == RenderConfig().blur
    assert c.effects() == ("blur", "none")


def test_preview_keys_and_overlay(monkeypatch):
    import numpy as np

    monkeypatch.setenv("DISPLAY", ":99")
    c = LiveControls(RenderConfig())
    p = PreviewSink(controls=c, status=lambda: "30.0 fps, latency 40 ms, dropped 0")
    assert p.handle_key(ord("+")) and "blur" in p.message
    assert not p.handle_key(ord("q")) and not p.handle_key(27)
    lines = p.overlay_lines()
    assert lines[0].startswith("effect blur") and lines[1] == "framing: off" and "30.0 fps" in lines[2]
    assert p.handle_key(ord("f")) and p.message == "framing: on" and c.framing
    c.framing_state = "1.50x at (0.40, 0.45)"
    assert p.overlay_lines()[1] == "framing: 1.50x at (0.40, 0.45)"
    assert p.handle_key(ord("f")) and not c.framing and p.overlay_lines()[1] == "framing: off"
    img = np.zeros((360, 640, 3), np.uint8)
    out = draw_overlay(img, lines)
    assert out[5:60, 5:200].max() > 200 and img.max() == 0  # text drawn, on a copy


def test_depth_and_focus_keys():
    c = LiveControls(RenderConfig(fstop=2.0, depth=True))
    assert c.can_depth
    assert c.handle_key("d") == "effect blur, f/2 at 1 m, disc" and not c.render.depth
    assert c.handle_key("d").endswith(", by depth") and c.render.depth
    c.handle_key("[")
    assert c.render.focus_distance == 0.8
    c.handle_key("]")
    c.handle_key("]")
    assert c.render.focus_distance == 1.25
    for _ in range(40):
        c.handle_key("[")
    assert c.render.focus_distance == 0.3  # the schema's lower bound


def test_depth_key_without_the_model_loaded():
    c = LiveControls(RenderConfig())
    assert not c.can_depth and c.handle_key("d") == "depth: start with --depth to use it" and not c.render.depth
