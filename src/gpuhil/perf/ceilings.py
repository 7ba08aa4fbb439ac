"""Hardware ceilings measured in the same run as the cases they judge, cached per process."""

from __future__ import annotations

import functools

from .timer import Timer

COPY_BYTES = 1 << 30  # 1 GiB each way: far past any L2, long enough to hide launch cost


@functools.cache
def copy_gbps(timer: Timer) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written."""
    import torch

    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    t = timer.events(lambda: dst.copy_(src))
    return 2 * COPY_BYTES / (t.median_us * 1e-6) / 1e9
