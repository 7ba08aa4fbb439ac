"""FlashInfer's own statements of where its kernels run, read from the installed library.

Two kinds of support metadata, both predicates on FlashInfer's compute-capability integers
(major * 10 + minor):
- an API decorated with `@backend_requirement` over a `@supported_compute_capability` check
  (flashinfer/utils.py:1138, 1254) answers `api.is_compute_capability_supported(cc)` (utils.py:1414-1429);
- a fused-MoE backend config answers `Config.supported(arch)` (flashinfer/fused_moe/api.py:1477-1479).

`ccs` evaluates one over every compute capability a device can report and returns the set gpuhil's
gate checks (`Requirements.ccs`), so a device is judged by the library's own table whatever the
catalog holds. It is read lazily (importing flashinfer takes seconds) and once per process. Where
flashinfer cannot be imported the table is unknown (None): the provider's library requirement then
skips its cases naming the extra, and a library that is installed but fails to import shows its own
error when a case calls it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

# Every compute capability FlashInfer's integers can name: majors 1..15, minors 0..9.
DEVICE_CCS = tuple(f"{major}.{minor}" for major in range(1, 16) for minor in range(10))


def ccs_where(supported: Callable[[int], bool]) -> frozenset[str]:
    """The compute capabilities ("10.0") whose FlashInfer integer (100) `supported` accepts."""
    return frozenset(cc for cc in DEVICE_CCS if supported(int(cc.replace(".", ""))))


@functools.cache
def ccs(module: str, name: str, predicate: str) -> frozenset[str] | None:
    """`ccs_where(<module>.<name>.<predicate>)`, e.g. ("flashinfer.grouped_mm", "grouped_mm_fp8",
    "is_compute_capability_supported"); None when flashinfer cannot be imported here."""
    try:
        obj = getattr(importlib.import_module(module), name)
    except Exception:  # noqa: BLE001 - not importable here: unknown, never fatal to a gate
        return None
    return ccs_where(getattr(obj, predicate))
