"""Make the README's before/after pictures with livebokeh itself.

The photo is scikit-image's ``astronaut`` (Eileen Collins, a NASA portrait in the public domain),
which ships inside the scikit-image package. Run from the repository root:

    pip install '.[docs]'
    python docs/make_pictures.py

It writes ``docs/before_after.jpg`` (original | blurred background | replaced background) and
``docs/mask.png``, and prints the variance of the Laplacian inside and outside the person, so the
picture's claim is checked by numbers too; and ``docs/framing.jpg``: the same portrait small in a
wide, generated room, as a 3-second clip through ``livebokeh --framing`` (the clip's last frame,
before | after), with the person's share of the picture's height printed for both; and
``docs/depth.jpg``: the portrait in front of the generated room of ``livebokeh bench depth`` (a
plank floor receding to a brick wall), through ``--no-depth`` and ``--depth`` at the same f-stop,
with the detail kept on the floor near and far printed for both. ``--depth`` needs the depth
model: downloaded on first use, or ``LIVEBOKEH_DEPTH_WEIGHTS=FILE``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from livebokeh.cli import main as livebokeh


def laplacian_var(img: np.ndarray, region: np.ndarray) -> float:
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    return float(lap[region].var())


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (len(text) * 11 + 16, 30), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def make(out_dir: Path) -> None:
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        src = t / "astronaut.png"
        cv2.imwrite(str(src), photo)
        blur, repl, mask = t / "blur.png", t / "replace.png", t / "mask.png"
        for args in (["--output", str(blur), "--save-mask", str(mask), "--fstop", "1.4"],
                     ["--output", str(repl), "--effect", "replace", "--background", "#2f6f4f"]):
            if livebokeh(["--input", str(src), "-q", *args]) != 0:
                sys.exit("livebokeh failed")
        b, r, m = cv2.imread(str(blur)), cv2.imread(str(repl)), cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    inside = cv2.erode((m > 240).astype(np.uint8), np.ones((15, 15))) > 0
    outside = cv2.erode((m < 15).astype(np.uint8), np.ones((25, 25))) > 0
    print(f"Laplacian variance inside the person: {laplacian_var(photo, inside):.0f} -> {laplacian_var(b, inside):.0f}")
    print(f"Laplacian variance outside:           {laplacian_var(photo, outside):.0f} -> {laplacian_var(b, outside):.0f}")
    row = np.hstack([label(photo, "original"), label(b, "livebokeh --fstop 1.4"),
                     label(r, "--effect replace --background #2f6f4f")])
    out_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_dir / "before_after.jpg"), row, [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(str(out_dir / "mask.png"), m)
    print(f"wrote {out_dir / 'before_after.jpg'} and {out_dir / 'mask.png'}")
    make_framing(photo, m, out_dir)
    make_depth(photo, m, out_dir)


def make_framing(photo: np.ndarray, mask: np.ndarray, out_dir: Path) -> None:
    """The portrait at a third of the height of a generated 1280x720 room, left of centre, for 3 s."""
    import av

    rng = np.random.default_rng(0)
    room = cv2.resize(rng.integers(90, 170, (3, 5, 3), dtype=np.uint8), (1280, 720), interpolation=cv2.INTER_CUBIC)
    cv2.rectangle(room, (820, 120), (1120, 330), (60, 90, 140), -1)  # a picture on the wall
    cv2.rectangle(room, (0, 560), (1280, 720), (70, 80, 90), -1)  # a desk
    side = 300
    person = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA)[:, :, None].astype(np.float32) / 255
    frame = room.copy()
    x0, y0 = 300, 720 - side
    region = frame[y0:, x0:x0 + side].astype(np.float32)
    frame[y0:, x0:x0 + side] = (alpha * person + (1 - alpha) * region).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        clip, out = Path(tmp) / "room.mp4", Path(tmp) / "framed.mp4"
        with av.open(str(clip), "w") as container:
            stream = container.add_stream("libx264", rate=30, options={"crf": "12"})
            stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
            for i in range(90):
                vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
                vf.pts = i
                container.mux(stream.encode(vf))
            container.mux(stream.encode())
        if livebokeh(["--input", str(clip), "--output", str(out), "--framing", "--backend", "mediapipe", "-q"]) != 0:
            sys.exit("livebokeh --framing failed")
        with av.open(str(out)) as container:
            last = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)][-1]
    before = (alpha[:, :, 0] > 0.5).any(axis=1).sum() / 720
    print(f"framing: the person fills {100 * before:.0f}% of the picture's height before")
    row = np.hstack([label(frame, "input: a wide room"), label(last, "livebokeh --framing (after 3 s)")])
    row = cv2.resize(row, (row.shape[1] // 2, row.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out_dir / "framing.jpg"), row, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {out_dir / 'framing.jpg'} (the output {last.shape[1]}x{last.shape[0]}, the input's size)")


def make_depth(photo: np.ndarray, mask: np.ndarray, out_dir: Path) -> None:
    """The portrait close to the camera (1 m, cut by the frame's bottom edge) in front of the
    generated room, through --no-depth and --depth at f/1.4 focused at 1 m."""
    from livebokeh.bench.depth_scene import room

    image, depth, floor, _ = room()
    frame = image.copy()
    side = 560
    person = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA)[:, :, None].astype(np.float32) / 255
    x0, y0 = 180, 720 - side
    region = frame[y0:, x0:x0 + side].astype(np.float32)
    frame[y0:, x0:x0 + side] = (alpha * person + (1 - alpha) * region).astype(np.uint8)
    outs = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "room.png"
        cv2.imwrite(str(src), frame)
        for name in ("no-depth", "depth"):
            out = Path(tmp) / f"{name}.png"
            if livebokeh(["--input", str(src), "--output", str(out), "--fstop", "1.4", f"--{name}", "-q"]) != 0:
                sys.exit(f"livebokeh --{name} failed (--depth needs the depth model: LIVEBOKEH_DEPTH_WEIGHTS=FILE)")
            outs[name] = cv2.imread(str(out))
    clear = np.zeros(floor.shape, bool)
    clear[:, x0 + side + 40:] = True  # away from the person
    near = floor & clear & (depth < 2.6)
    far = ~floor & clear & (depth > depth[~floor].mean())
    for region, what in ((near, "the floor from 1.9 to 2.6 m"), (far, "the far wall")):
        kept = [laplacian_var(outs[n], region) / laplacian_var(frame, region) for n in ("no-depth", "depth")]
        print(f"depth: detail kept on {what}: --no-depth {100 * kept[0]:.1f}%, --depth {100 * kept[1]:.1f}%")
    row = np.hstack([label(outs["no-depth"], "livebokeh --fstop 1.4 --no-depth"),
                     label(outs["depth"], "livebokeh --fstop 1.4 --depth")])
    row = cv2.resize(row, (row.shape[1] // 2, row.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out_dir / "depth.jpg"), row, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out_dir / 'depth.jpg'}")


if __name__ == "__main__":
    make(Path(__file__).resolve().parent)
