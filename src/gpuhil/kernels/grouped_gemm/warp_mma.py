"""The register side of the warp-level mainloops: MMA operands read from shared memory by
ldmatrix, one k-block ahead of the ``mma.sync`` instructions that consume them."""

from __future__ import annotations

import cutlass.cute as cute


def warp_tiled_mma(mma_op, warps: tuple[int, int, int], mma_k: int):
    """`mma_op` tiled over `warps` (along M, N, K), each warp tile a multiple of 16 x 16."""
    return cute.make_tiled_mma(mma_op, cute.make_layout(warps), permutation_mnk=(warps[0] * 16, warps[1] * 16, mma_k))


def smem_fed_mma(tiled_mma, tidx, sA, sB, gC):
    """`tiled_mma` for thread `tidx`, fed from the smem tiles `sA`, `sB` (K-major; a staged ring is
    partitioned by its stage 0) by ldmatrix x4 of 8x8 16-bit matrices (16 bytes of any element type
    a row). Returns the thread's MMA slice, its zeroed accumulator (shaped by gC's partition) and, for
    A and for B, (register fragment, ldmatrix copy, smem source, register destination)."""
    thr = tiled_mma.get_slice(tidx)
    part_a, part_b = thr.partition_A(sA), thr.partition_B(sB)
    if cute.rank(sA) == 3:  # (rows, k, stages): one stage's fragment
        part_a, part_b = part_a[None, None, None, 0], part_b[None, None, None, 0]
    frag_a, frag_b = tiled_mma.make_fragment_A(part_a), tiled_mma.make_fragment_B(part_b)
    acc = tiled_mma.make_fragment_C(thr.partition_C(gC))
    acc.fill(0.0)
    ldsm = cute.nvgpu.warp.LdMatrix8x8x16bOp(False, 4)
    s2r_a = cute.make_tiled_copy_A(cute.make_copy_atom(ldsm, sA.element_type), tiled_mma)
    s2r_b = cute.make_tiled_copy_B(cute.make_copy_atom(ldsm, sB.element_type), tiled_mma)
    thr_a, thr_b = s2r_a.get_slice(tidx), s2r_b.get_slice(tidx)
    return (thr, acc, (frag_a, s2r_a, thr_a.partition_S(sA), thr_a.retile(frag_a)),
            (frag_b, s2r_b, thr_b.partition_S(sB), thr_b.retile(frag_b)))


def mma_k_blocks(k_blocks: int, load, mma) -> None:
    """`load(kb)` the registers of k-block kb, `mma(kb)` its MMAs: the next k-block's registers
    load under this one's MMAs."""
    load(0)
    for kb in range(k_blocks):
        if kb + 1 < k_blocks:
            load(kb + 1)
        mma(kb)
