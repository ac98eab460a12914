"""``livebokeh models list|download|path``: the downloadable model weights."""

from __future__ import annotations

import argparse
import logging
import sys

from livebokeh.errors import LivebokehError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livebokeh models", description="Downloadable model weights.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="models, their files and whether they are available offline")
    d = sub.add_parser("download", help="download weights into the cache (checksum checked)")
    d.add_argument("name", nargs="?", default="deeplab")
    d.add_argument("--url", help="download from this address instead of the official one (a mirror)")
    w = sub.add_parser("path", help="print where the weights are (or would be) cached")
    w.add_argument("name", nargs="?", default="deeplab")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="livebokeh: %(message)s")
    from livebokeh import models

    try:
        if args.action == "list":
            for m in models.manifests().values():
                try:
                    where = str(models.locate(m.name, download_missing=False))
                except LivebokehError:
                    where = f"not downloaded (run `livebokeh models download {m.name}`)"
                print(f"{m.name:<10} {m.file}  {m.size / 1e6:.1f} MB  {m.licence}  {where}")
                print(f"{'':<10} {m.description}")
            print("mediapipe  selfie_segmentation(_landscape).tflite  bundled with mediapipe==0.10.21  Apache-2.0")
        elif args.action == "download":
            m = models.manifest(args.name)
            path = models.download(m, url=args.url)
            print(path)
        else:
            print(models.cached_path(models.manifest(args.name)))
    except LivebokehError as err:
        print(f"livebokeh: error: {err}", file=sys.stderr)
        return 1
    return 0
