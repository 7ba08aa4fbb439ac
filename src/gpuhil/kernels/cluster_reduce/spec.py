"""Cluster sum-reduction demo kernel: the smallest kernel that needs cluster launch and DSMEM.

It proves the AOT helper and the cluster gates end to end before the real kernels use them.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...gating import ConfigRow, Requirements

CLUSTER_SIZES = (1, 2, 4, 8, 16)
THREADS = 128


def requirements(cluster_n: int) -> Requirements:
    # Built with cluster instructions (barrier.cluster, mapa) at every size, so sm_90+ even for 1.
    # Shared memory: one fp32 partial per warp and one slot per cluster rank.
    return Requirements(min_cc="9.0", cluster_size=cluster_n, smem_bytes=4 * (THREADS // 32 + cluster_n),
                        needs_dsl=True)


def configs(caps: Capabilities):
    for n in CLUSTER_SIZES:
        yield ConfigRow("cluster_reduce", f"cluster_n={n}", requirements(n), {"cluster_n": n})
