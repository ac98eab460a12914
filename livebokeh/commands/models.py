"""``livebokeh models list|download|path``: the downloadable model weights."""

from __future__ import annotations

import argparse
import sys

from livebokeh.errors import (
    LivebokehError,
    OneLineParser,
    exit_code,
    log_to_stderr,
    one_line,
    printable,
    stdout_error,
    stdout_gone,
)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="livebokeh models", description="Downloadable model weights. NAME is a model (`models list`), a backend "
        "(mediapipe: both its models) or all; the default is the default backend's.")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="models, their files and whether they are available offline")
    ls.add_argument("name", nargs="?", default=None, help="only these (a model, a backend or all; default: all)")
    d = sub.add_parser("download", help="download weights into the cache (checksum checked; a valid file is kept)")
    d.add_argument("name", nargs="?", default=None)
    d.add_argument("--url", help="download from this address instead of the official one (a mirror; one model)")
    w = sub.add_parser("path", help="print where the weights are (or would be) cached")
    w.add_argument("name", nargs="?", default=None)
    return p


def _default_backend() -> str:
    from livebokeh.config import Config

    return Config().segmenter.backend


def _where(found) -> str:
    if found.ok:
        return f"{found.path} ({found.source})"
    if found.problem:
        return f"PROBLEM: {found.problem}"
    return f"not downloaded (run `livebokeh models download {found.manifest.backend}`)"


def _list(name: str | None = None) -> int:
    from livebokeh import models
    from livebokeh.config import BACKENDS

    shown = models.select(name) if name else list(models.manifests().values())

    folder = models.model_dir()
    print(f"model folder: {folder}" if folder else f"model folder: none ({models.MODEL_DIR_VAR} is not set)")
    print(f"cache: {models.cache_dir()}" + (f" ({problem})" if (problem := models.cache_problem()) else ""))
    default = _default_backend()
    for m in shown:
        tag = " (the default backend)" if m.backend == default else ""
        use = f"--backend {m.backend}" if m.backend in BACKENDS else f"--{m.backend}"  # the depth model: --depth
        print(f"{m.name:<17} {m.file}  {m.size / 1e6:.1f} MB  {m.licence}  {use}{tag}")
        print(f"{'':<17} {_where(models.find(m.name))}")
    return 0


def _download(name: str | None, url: str | None) -> int:
    from livebokeh import models

    chosen = models.select(name or _default_backend())
    if url and len(chosen) != 1:
        raise LivebokehError(f"--url gives one file; name one model of: {', '.join(m.name for m in chosen)}")
    failed = 0
    for m in chosen:
        found = models.find(m.name)
        if found.ok and found.source in ("cache", "model dir"):  # checked: nothing better to fetch
            print(f"{found.path}  (already here, checksum ok)")
            continue
        if found.ok:  # the variable names the file runs use: a download into the cache would not be
            print(f"{found.path}  ({m.env_var} names it: runs use it, not the cache; unset {m.env_var} to use "
                  "a download)")
            continue
        if found.problem and found.damaged is None:  # a download into the cache would not mend it
            print(f"livebokeh: error: {printable(found.problem)}", file=sys.stderr)
            failed += 1
            continue
        try:
            print(models.download(m, url=url))
        except LivebokehError as err:
            print(f"livebokeh: error: {one_line(err)}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr()  # control characters escaped
    from livebokeh import models

    try:
        if args.action == "list":
            return _list(args.name)
        if args.action == "download":
            return _download(args.name, args.url)
        for m in models.select(args.name or _default_backend()):
            print(models.cached_path(m))
    except LivebokehError as err:
        print(f"livebokeh: error: {one_line(err)}", file=sys.stderr)
        return exit_code(err)  # an unknown NAME is a wrong argument: 2
    except OSError as err:  # the manifests or the cache unreadable: still one line
        if (isinstance(err, BrokenPipeError) and stdout_gone()) or stdout_error(err):
            raise  # its output's reader gone (ends quietly), or its output unwritable (livebokeh.cli.main)
        print(f"livebokeh: error: {one_line(err)}", file=sys.stderr)
        return 1
    return 0
