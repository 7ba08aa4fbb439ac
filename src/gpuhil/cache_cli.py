"""`gpuhil cache info` and `gpuhil cache clear`: the persistent compile cache of gpuhil's own kernels
(gpuhil.kernels.compile_cache), in <cache root>/cute, where the cache root is --cache-dir, else
$GPUHIL_CACHE_DIR, else the user's cache directory (~/.cache/gpuhil), as `gpuhil run` resolves it.

`clear` removes entries and their lock files only, inside that folder, and leaves an entry another
process is using. A cache root that is a file, or an empty value, is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from . import ids
from .kernels import compile_cache


class _Refused(Exception):
    pass


def add_subparsers(sub) -> None:
    sc = sub.add_parser("cache", help="the compile cache of gpuhil's own kernels: info, clear")
    csub = sc.add_subparsers(dest="cache_command", required=True)
    for name, fn, text in (("info", cmd_info, "location, entries, bytes, entries per DSL version"),
                           ("clear", cmd_clear, "remove every entry not in use now")):
        c = csub.add_parser(name, help=text)
        c.add_argument("--cache-dir", metavar="DIR", help="gpuhil's cache root (default: $GPUHIL_CACHE_DIR or ~/.cache/gpuhil)")
        c.set_defaults(fn=fn)


def _folder(args: argparse.Namespace) -> Path:
    from .runner import CACHE_DIR_ENV, default_cache_root

    if args.cache_dir is not None and not args.cache_dir.strip():
        raise _Refused("--cache-dir: empty value: give a folder, or leave the option out")
    try:
        root = Path(args.cache_dir or ids.env_value(CACHE_DIR_ENV) or default_cache_root(os.environ))
    except ids.InvalidValue as exc:
        raise _Refused(str(exc)) from None
    folder = compile_cache.location(root)
    for p in (root, folder):
        if p.exists() and not p.is_dir():
            raise _Refused(f"{p}: is a file, not a folder")
    return folder


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _this_dsl() -> str | None:
    try:
        from .kernels.compile_key import dsl_version
    except ImportError:
        return None
    try:
        return compile_cache.dsl_folder_name(dsl_version())
    except ImportError:  # no CuTe DSL installed here
        return None


def _run(fn, args) -> int:
    try:
        return fn(_folder(args))
    except _Refused as exc:
        print(f"gpuhil cache: {exc}", file=sys.stderr)
        return 2


def cmd_info(args) -> int:
    def info(folder: Path) -> int:
        entries = compile_cache.CompileCache(folder).entries()
        print(f"location: {folder}{'' if folder.is_dir() else ' (not created yet)'}")
        print(f"entries: {len(entries)}, {_size(sum(e.bytes for e in entries))}")
        n = lambda k: f"{k} entr{'y' if k == 1 else 'ies'}"  # noqa: E731
        count, size = Counter(e.dsl for e in entries), Counter()
        for e in entries:
            size[e.dsl] += e.bytes
        this = _this_dsl()
        for dsl in sorted(count):
            note = " (this DSL)" if dsl == this else " (not loaded by this DSL)" if this else ""
            print(f"  {dsl}: {n(count[dsl])}, {_size(size[dsl])}{note}")
        return 0

    return _run(info, args)


def cmd_clear(args) -> int:
    def clear(folder: Path) -> int:
        removed, freed, busy = compile_cache.CompileCache(folder).clear()
        left = f"; {busy} in use, left" if busy else ""
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}, {_size(freed)}, from {folder}{left}")
        return 0

    return _run(clear, args)
