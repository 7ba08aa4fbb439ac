"""The grouped schedule on the device: which group, and which m-tile of it, a CTA computes.

offs holds each group's cumulative END row (on the GPU, so no host sync); group g owns rows
[offs[g-1], offs[g]), clamped to [0, T]. The warp-level kernels launch ceil(T / tile_m) + G linear
m-tiles (launcher.launch_over_tiles) and every CTA maps its own to (group, m-tile in group) with
`find_group`: a 32-lane prefix scan over the groups' tile counts, no shared memory, no barrier.
"""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import Int32


@cute.jit
def group_bounds(offs: cute.Tensor, g: Int32, T: Int32):
    """[begin, end) rows of group `g`: offs clamped to [0, T], end never before begin."""
    end = cutlass.min(cutlass.max(offs[g], Int32(0)), T)
    beg = Int32(0)
    if g > 0:
        beg = cutlass.min(cutlass.max(offs[g - 1], Int32(0)), T)
    return beg, cutlass.max(end, beg)


@cute.jit
def group_tiles(offs: cute.Tensor, g: Int32, G: Int32, T: Int32, tile_rows: cutlass.Constexpr):
    """How many tiles of `tile_rows` rows group `g` spans; 0 past the last group."""
    cnt = Int32(0)
    if g < G:
        beg, end = group_bounds(offs, g, T)
        cnt = (end - beg + (tile_rows - 1)) // tile_rows
    return cnt


@cute.jit
def warp_inclusive_sum(value: Int32, lane: Int32):
    """(inclusive prefix sum of `value` over the warp's lanes, the sum of all 32) by shuffles."""
    incl = value
    for d in cutlass.range_constexpr(5):
        up = cute.arch.shuffle_sync_up(incl, 1 << d)
        if lane >= (1 << d):
            incl = incl + up
    return incl, cute.arch.shuffle_sync(incl, 31)


@cute.jit
def find_group(offs: cute.Tensor, G: Int32, T: Int32, tile_m: cutlass.Constexpr, m_lin: Int32):
    """(group, first linear m-tile of that group) for linear m-tile `m_lin`, or (-1, 0) past the
    last tile. Every lane of the warp scans 32 groups per step and the hit is shared by butterfly."""
    lane = cute.arch.lane_idx()
    total = Int32(0)
    hit_g = Int32(-1)
    hit_first = Int32(0)
    for base in cutlass.range(0, G, 32):
        g = base + lane
        cnt = group_tiles(offs, g, G, T, tile_m)
        incl, step_total = warp_inclusive_sum(cnt, lane)
        first = total + incl - cnt
        if m_lin >= first and m_lin < first + cnt:
            hit_g = g
            hit_first = first
        total = total + step_total
    for d in cutlass.range_constexpr(5):
        og = cute.arch.shuffle_sync_bfly(hit_g, 1 << (4 - d))
        of = cute.arch.shuffle_sync_bfly(hit_first, 1 << (4 - d))
        if og > hit_g:
            hit_g = og
            hit_first = of
    return hit_g, hit_first


@cute.jit
def cta_tile(offs: cute.Tensor, G: Int32, T: Int32, tile_m: cutlass.Constexpr):
    """This CTA's (group, m-tile in the group, n-tile) on the grid of launcher.launch_over_tiles;
    group -1 past the last m-tile (the CTA has nothing to do)."""
    n_tile, m_lin, _ = cute.arch.block_idx()
    grp, grp_first = find_group(offs, G, T, tile_m, m_lin)
    return grp, m_lin - grp_first, n_tile


@cute.jit
def group_rows(offs: cute.Tensor, g: Int32, T: Int32):
    """(first row, row count) of group `g`."""
    beg, end = group_bounds(offs, g, T)
    return beg, end - beg
