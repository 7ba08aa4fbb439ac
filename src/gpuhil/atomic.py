"""Writing a file whole or not at all: a process killed mid-write leaves the old file or the new one,
never half of either (run records, baselines, the dashboard's site, crash notes)."""

from __future__ import annotations

import os
from pathlib import Path


def write_text(path: Path, text: str) -> None:
    """`text` (UTF-8) into `path` through a temporary file beside it and one rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
