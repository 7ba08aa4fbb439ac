"""The register side of the warp-level mainloops: MMA operands read from shared memory by
ldmatrix, one k-block ahead of the ``mma.sync`` instructions that consume them."""

from __future__ import annotations

import cutlass.cute as cute


def warp_tiled_mma(mma_op, warps: tuple[int, int, int], mma_k: int):
    """`mma_op` tiled over `warps` (along M, N, K), each warp tile a multiple of 16 x 16."""
    return cute.make_tiled_mma(mma_op, cute.make_layout(warps), permutation_mnk=(warps[0] * 16, warps[1] * 16, mma_k))


def ldmatrix_operands(tiled_mma, tidx, sA, sB, frag_a, frag_b):
    """(copy, smem source, register destination) of A and of B for thread `tidx`: ldmatrix x4 of
    8x8 16-bit matrices (16 bytes of any element type a row) from `sA`/`sB` into the fragments."""
    ldsm = cute.nvgpu.warp.LdMatrix8x8x16bOp(False, 4)
    s2r_a = cute.make_tiled_copy_A(cute.make_copy_atom(ldsm, sA.element_type), tiled_mma)
    s2r_b = cute.make_tiled_copy_B(cute.make_copy_atom(ldsm, sB.element_type), tiled_mma)
    thr_a, thr_b = s2r_a.get_slice(tidx), s2r_b.get_slice(tidx)
    return (s2r_a, thr_a.partition_S(sA), thr_a.retile(frag_a)), (s2r_b, thr_b.partition_S(sB), thr_b.retile(frag_b))


def mma_k_blocks(k_blocks: int, load, mma) -> None:
    """`load(kb)` the registers of k-block kb, `mma(kb)` its MMAs: the next k-block's registers
    load under this one's MMAs."""
    load(0)
    for kb in range(k_blocks):
        if kb + 1 < k_blocks:
            load(kb + 1)
        mma(kb)
