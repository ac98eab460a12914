"""Make the README's before/after pictures with livebokeh itself.

The photo is scikit-image's ``astronaut`` (Eileen Collins, a NASA portrait in the public domain),
which ships inside the scikit-image package. Run from the repository root:

    pip install '.[docs]'
    python docs/make_pictures.py

It writes ``docs/before_after.jpg`` (original | blurred background | replaced background) and
``docs/mask.png``, and prints the variance of the Laplacian inside and outside the person, so the
picture's claim is checked by numbers too.
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


if __name__ == "__main__":
    make(Path(__file__).resolve().parent)
