"""The epilogue of the warp-level grouped GEMMs: fp32 accumulators (already scaled) rounded to bf16
once, staged through shared memory the mainloop no longer reads, then 16-byte stores of the rows and
columns in range (N % 8 == 0 keeps each 16-byte chunk all in or all out)."""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Int32

from .ring import row_tiled_copy


def c_smem_layout(tile_m: int, tile_n: int):
    # bf16 rows of 64 elements (128 B) per atom, 16-byte chunks XOR row: conflict-free both ways
    atom = cute.make_composed_layout(cute.make_swizzle(3, 3, 3), 0, cute.make_layout((8, 64), stride=(64, 1)))
    return cute.tile_to_shape(atom, (tile_m, tile_n), (0, 1))


@cute.jit
def scale_all(acc, scale):
    """acc *= scale (one fp32 factor for the whole tile)."""
    for i in cutlass.range_constexpr(cute.size(acc)):
        acc[i] = acc[i] * scale


@cute.jit
def store_bf16(acc, thr_mma, tidx: Int32, sC, gC, cC, m_rows: Int32, N: Int32, threads: cutlass.Constexpr):
    """acc rounded to bf16, staged through `sC` (the caller has synchronised after the mainloop),
    then 16-byte stores of the rows < m_rows and columns < N of gC (cC: its coordinates)."""
    out_frag = cute.make_fragment_like(acc, BFloat16)
    out_frag.store(acc.load().to(BFloat16))
    cute.autovec_copy(out_frag, thr_mma.partition_C(sC))
    cute.arch.sync_threads()
    st_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), BFloat16, num_bits_per_copy=128)
    copy_out, _ = row_tiled_copy(st_atom, threads, cute.size(sC, mode=[0]), cute.size(sC, mode=[1]), 8)
    thr_c = copy_out.get_slice(tidx)
    tOsC = thr_c.partition_S(sC)
    tOgC = thr_c.partition_D(gC)
    tOcC = thr_c.partition_S(cC)
    tOrC = cute.make_fragment_like(tOsC)
    cute.autovec_copy(tOsC, tOrC)
    for i in cutlass.range_constexpr(cute.size(tOrC, mode=[1])):
        for j in cutlass.range_constexpr(cute.size(tOrC, mode=[2])):
            r, c = tOcC[0, i, j]
            if r < m_rows and c < N:
                cute.copy(copy_out, tOrC[None, i, j], tOgC[None, i, j])
