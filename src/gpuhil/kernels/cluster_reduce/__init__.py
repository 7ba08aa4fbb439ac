"""Cluster sum-reduction demo kernel (DSMEM + cluster barrier), gated like every gpuhil kernel."""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...gating import ensure
from ...device.current import device_capabilities
from .spec import CLUSTER_SIZES, requirements

__all__ = ["CLUSTER_SIZES", "requirements", "run"]


def run(x, cluster_n: int, *, caps: Capabilities | None = None):
    """Sum a 1-D float32 CUDA tensor with one cluster of `cluster_n` CTAs; returns a (1,) tensor."""
    ensure(f"cluster_reduce cluster_n={cluster_n}", requirements(cluster_n),
           caps or device_capabilities(x.device.index or 0))
    from . import cute

    return cute.run(x, cluster_n)
