"""The history's refusal type, and the identifiers that become its folder names (SKU ids, run ids):
checked by gpuhil's one identifier rule before any path is built."""

from __future__ import annotations

from ..ids import id_problem
from ..perf.validate import machine_key


class HistoryError(Exception):
    """A refused input or a broken history: the message is one line that names the file and the field."""


def check_id(value: object, what: str, where: str) -> str:
    """`value` as a safe path component, or HistoryError naming `where` (a file) and `what` (a field)."""
    problem = id_problem(value)
    if problem:
        raise HistoryError(f"{where}: {what} {value!r}: {problem}")
    return value  # type: ignore[return-value]


def machine_label(sku: str, emulated_sku: str | None) -> str:
    """What timings are comparable within (the key `gpuhil perf compare` files baselines under), so an
    emulated run is never one more point of the native series."""
    return machine_key(sku, emulated_sku)
