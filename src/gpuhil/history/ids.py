"""Identifiers that become folder names in the history (SKU ids, run ids): checked before any path is built."""

from __future__ import annotations

import re

# Letters, digits, dot, dash, underscore; starts with a letter or digit, so never "..", "-x" or a hidden name.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class HistoryError(Exception):
    """A refused input or a broken history: the message is one line that names the file and the field."""


def check_id(value: object, what: str, where: str) -> str:
    """`value` as a safe path component, or HistoryError naming `where` (a file) and `what` (a field)."""
    if not isinstance(value, str) or not SAFE_ID.fullmatch(value):
        raise HistoryError(f"{where}: {what} {value!r} is not a safe identifier "
                           f"(letters, digits, '.', '_', '-'; starting with a letter or digit; at most 128)")
    return value


def machine_label(sku: str, emulated_sku: str | None) -> str:
    """What timings are comparable within: a native SKU, or a SKU run within another's limits.

    The same key `gpuhil perf compare` uses for baselines/<key>/, so an emulated run is never one more
    point of the native series.
    """
    return f"{sku}-as-{emulated_sku}" if emulated_sku else sku
