"""The epilogue store of the warpgroup-MMA kernels: bf16 results straight from the wgmma accumulator
layout to global memory as predicated 16-byte stores (a group boundary can fall inside any tile, so
a TMA store box could overwrite a neighbour's rows). A 4x4 transpose across each quad of lanes turns
the accumulator layout's 4-byte column pairs into whole 8-column blocks."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import Int32


@cute.jit
def quad_transpose(words: cute.Tensor, chunk: cute.Tensor, v1, b0, mi, ni, lo, hi):
    """chunk <- this lane's 16-byte block of one row. Lane q of a quad holds word q (columns 2q,
    2q+1) of blocks b0..b0+3 of that row; after a 4x4 transpose across the quad (butterfly
    shuffles over lane bit 1, then bit 0) it holds words 0..3 of block b0 + q. A butterfly puts a
    word at a lane-relative position (row p ^ x), hence the selects that put it back in order."""
    w = [words[(0, v1, b0 + i), mi, ni] for i in range(4)]
    # Bit 1: keep the two blocks whose bit 1 is this lane's, trade the other two for the partner's.
    keep = [Int32(cutlass.select_(hi, w[2 + k], w[k])) for k in range(2)]
    got = [cute.arch.shuffle_sync_bfly(Int32(cutlass.select_(hi, w[k], w[2 + k])), offset=2) for k in range(2)]
    # Bit 0: the same within the pair; each lane is left with its own block, from all four lanes.
    own_mine = Int32(cutlass.select_(lo, keep[1], keep[0]))
    own_far = Int32(cutlass.select_(lo, got[1], got[0]))
    near = cute.arch.shuffle_sync_bfly(Int32(cutlass.select_(lo, keep[0], keep[1])), offset=1)
    diag = cute.arch.shuffle_sync_bfly(Int32(cutlass.select_(lo, got[0], got[1])), offset=1)
    # By source lane relative to this one (q, q^1, q^2, q^3) -> by source lane (0..3).
    rel = [own_mine, near, own_far, diag]
    by_lo = [Int32(cutlass.select_(lo, rel[x ^ 1], rel[x])) for x in range(4)]
    for x in cutlass.range_constexpr(4):
        chunk[x] = Int32(cutlass.select_(hi, by_lo[x ^ 2], by_lo[x]))


@cute.jit
def store_rows(out_frag: cute.Tensor, tCcC: cute.Tensor, gC: cute.Tensor, chunk: cute.Tensor, rows: Int32,
               n0: Int32, N: Int32, quad_lane: Int32, lane_lo, lane_hi):
    """Store the bf16 fragment `out_frag` (the accumulator layout: ((2 columns, 2 rows 8 apart, tn/8
    column blocks), m atoms, n atoms); tCcC its tile coordinates) to gC, the rows < `rows` and the
    columns with n0 + column < N (N % 8 == 0: a block is all in or all out). `chunk`: 4 Int32 of
    registers; quad_lane, lane_lo, lane_hi: this lane's place in its quad."""
    words = cute.recast_tensor(out_frag, Int32)  # one bf16 column pair per word
    col_blocks = cute.size(out_frag.shape[0][2])
    for mi in cutlass.range_constexpr(cute.size(out_frag, mode=[1])):
        for ni in cutlass.range_constexpr(cute.size(out_frag, mode=[2])):
            for v1 in cutlass.range_constexpr(2):
                r = tCcC[(0, v1, 0), mi, ni][0]
                for j in cutlass.range_constexpr(col_blocks // 4):
                    quad_transpose(words, chunk, v1, 4 * j, mi, ni, lane_lo, lane_hi)
                    # Lane q of the quad now holds block 4j + q: 8 columns from the one its word
                    # of block 4j starts at (8 * 4j + 2q), i.e. 6q further.
                    c = cute.assume(tCcC[(0, v1, 4 * j), mi, ni][1] + 6 * quad_lane, divby=8)
                    if r < rows and n0 + c < N:
                        dst = cute.make_tensor(cute.domain_offset((r, c), gC).iterator, cute.make_layout(8))
                        cute.autovec_copy(chunk, cute.recast_tensor(dst, Int32))
