"""Cluster sum-reduction demo kernel (DSMEM + cluster barrier), gated like every gpuhil kernel."""

from __future__ import annotations

from ...capabilities import current
from ...requirements import ensure
from .spec import CLUSTER_SIZES, THREADS, requirements

__all__ = ["CLUSTER_SIZES", "requirements", "run"]


def run(x, cluster_n: int):
    """Sum a 1-D float32 CUDA tensor with one cluster of `cluster_n` CTAs; returns a (1,) tensor."""
    ensure(f"cluster_reduce cluster_n={cluster_n}", requirements(cluster_n), current())
    from . import cute

    return cute.run(x, cluster_n, THREADS)
