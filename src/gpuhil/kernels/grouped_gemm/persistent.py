"""The persistent grouped schedule of the warpgroup-MMA kernels (FP8 and NVFP4 on sm_90a): cluster
tiles numbered group by group, M fastest, taken by the clusters in turn; one warp scans offs into
per-group tile starts in shared memory at kernel start and a tile finds its group by binary search."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import Int32

from .schedule import group_bounds, group_tiles, warp_inclusive_sum


@cute.jit
def write_tile_starts(offs: cute.Tensor, starts: cute.Tensor, G: Int32, T: Int32, n_tiles: Int32,
                      cluster_rows: cutlass.Constexpr):
    """One warp: starts[g] = cluster tiles of groups < g (exclusive scan), starts[G] = all of them;
    a group spans ceil(rows / cluster_rows) x n_tiles cluster tiles."""
    lane = cute.arch.lane_idx()
    total = Int32(0)
    for base in cutlass.range(0, G, 32):
        g = base + lane
        cnt = group_tiles(offs, g, G, T, cluster_rows) * n_tiles
        incl, step_total = warp_inclusive_sum(cnt, lane)
        if g < G:
            starts[g] = total + incl - cnt
        total = total + step_total
    if lane == 0:
        starts[G] = total


@cute.jit
def locate(t: Int32, starts: cute.Tensor, offs: cute.Tensor, G: Int32, T: Int32, n_tiles: Int32,
           rank_m: Int32, rank_n: Int32, tile_m: cutlass.Constexpr, cluster_m: cutlass.Constexpr,
           cluster_n: cutlass.Constexpr):
    """Cluster tile t -> (group, first row of this CTA's tile, rows of the group left from it, this
    CTA's n tile)."""
    lo = Int32(0)  # invariant: starts[lo] <= t < starts[hi]; empty groups resolve to the next one
    hi = G
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if starts[mid] <= t:
            lo = mid
        else:
            hi = mid
    m_tiles = (starts[lo + 1] - starts[lo]) // n_tiles
    local = t - starts[lo]
    beg, end = group_bounds(offs, lo, T)
    row0 = beg + ((local % m_tiles) * cluster_m + rank_m) * tile_m
    return lo, row0, end - row0, (local // m_tiles) * cluster_n + rank_n
