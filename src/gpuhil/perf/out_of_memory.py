"""A perf case that ran out of device memory although its gate let it run (the estimate of its need
was short, or another process took memory since): a skip with the numbers, never a traceback or an
`error` row, since nothing about the kernel was learnt. The perf fixture catches
torch.OutOfMemoryError around the test body and skips with this reason."""

from __future__ import annotations

import re

_TRIED = re.compile(r"Tried to allocate ([\d.]+ [KMGT]?i?B)")


def skip_reason(message: str, free_bytes: int | None, total_bytes: int | None) -> str:
    """One line: what torch failed to allocate (from its message) and the device's free and total
    bytes read after the failure (None: not readable)."""
    tried = _TRIED.search(message)
    what = f"one allocation of {tried.group(1)} failed" if tried else (message.splitlines() or ["no message"])[0][:200]
    free = "free memory unknown" if free_bytes is None else f"{free_bytes} B ({free_bytes / 2**30:.2f} GiB) free"
    total = "" if total_bytes is None else f" of {total_bytes} B ({total_bytes / 2**30:.2f} GiB)"
    return (f"out of device memory past the gate's estimate (torch.OutOfMemoryError): {what}; "
            f"{free}{total} after it")
