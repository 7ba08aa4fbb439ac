"""The native mainloop of gpuhil's NVFP4 grouped GEMM (cute_gemm builds it): SM12x's block-scaled
warp MMA, ``mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3``
(CuTe DSL ``cute.nvgpu.warp.MmaMXF4NVF4Op``). sm_120a and sm_121a only, from a DSL payload of
CUDA 13 or newer (seed 002; the spec's requirements say so).

The codes stay packed all the way to the tensor cores: a k-tile lands in a swizzled Float4E2M1FN
stage (16-byte cp.async of 32 codes), ldmatrix feeds the A and B registers, and each thread loads
the scale bytes its lanes own straight from the linear scale stage. Scale operand layout: with
scale_vec::4X each 32-bit scale register holds the four E4M3 scales of one row (A) or column (B)
across the atom's 64 K elements, byte j for K elements 16j..16j+15; by CuTe's SM120 thread-value
layouts (cutlass.utils.blackwell_helpers.thrfrg_SFA/SFB, the DSL's port of mma_traits_sm120),
lanes 4i and 4i + 1 hold rows i and i + 8 of A and the four lanes of quad i hold column i of B,
and the MMA is issued with byte-id and thread-id 0. So a scale fragment is one 32-bit
shared-memory load per atom from the row-major (rows, K/16) stage. One barrier a k-tile (the ring's).
"""

from __future__ import annotations

import cutlass.cute as cute
import cutlass.utils.blackwell_helpers as sm120_helpers
from cutlass import Float4E2M1FN, Float8E4M3FN, Float32

from ..grouped_gemm.ring import CHUNK
from ..grouped_gemm.warp_mma import mma_k_blocks, smem_fed_mma, warp_tiled_mma
from .spec import SF_VEC

_MMA_K = 64  # m16n8k64


def _codes_smem_layout(rows: int, tile_k: int, stages: int):
    # K-major E2M1 rows (tile_k / 2 bytes); XOR the 16-byte chunk index (32 codes) with row bits so
    # the 8 rows an ldmatrix phase reads (same logical chunk) hit 8 different bank groups:
    # 64-byte rows (k 128) take chunk ^= (row >> 1) & 3, 128-byte rows (k 256) chunk ^= row & 7.
    bits = {128: 2, 256: 3}[tile_k]
    atom = cute.make_composed_layout(cute.make_swizzle(bits, 5, 3), 0,
                                     cute.make_layout((8, tile_k), stride=(tile_k, 1)))
    return cute.tile_to_shape(atom, (rows, tile_k, stages), (0, 1, 2))


def _sf_elems_layout(rows: int, tile_k: int):
    # one stage in element coordinates (rows, K): the 16 elements of a block share one byte
    per = tile_k // SF_VEC
    return cute.make_layout((rows, (SF_VEC, per)), stride=(per, (0, 1)))


def _sf_partition(stage0, thr_mma, tidx, operand: str):
    """This thread's view of one scale stage in the MMA's scale-operand layout:
    ((16, 4), MMA_M or MMA_N, MMA_K), stride 0 over the 16 elements that share a byte."""
    frag = sm120_helpers.thrfrg_SFA if operand == "A" else sm120_helpers.thrfrg_SFB
    thr = cute.make_tensor(stage0.iterator, frag(stage0.layout, thr_mma))
    v, m, n, k = thr_mma.thr_layout_vmnk.get_flat_coord(tidx)
    part = thr[(v, (m if operand == "A" else n, k)), (None, None)]
    return cute.group_modes(cute.flatten(part), 0, 2)


class NativeMainloop:
    """Codes ride the ring as swizzled Float4E2M1FN stages, scales as E4M3 bytes the MMA reads as
    its scale operand; the code ring becomes the epilogue's staging tile."""

    code_type = Float4E2M1FN
    sf_type = Float8E4M3FN

    def __init__(self, tile, stages: int, warps: tuple[int, int, int]):
        self.tile, self.stages, self.warps = tile, stages, warps

    @staticmethod
    def codes_of(k):
        """Code elements of `k` K elements (one each)."""
        return k

    def codes_view(self, byte_ptr, rows, K):
        # a 16-byte aligned Float4E2M1FN pointer: a recast would lose the alignment the 16-byte
        # cp.async needs (sub-byte pointers carry none)
        ptr = cute.make_ptr(Float4E2M1FN, byte_ptr.toint(), cute.AddressSpace.gmem, assumed_align=CHUNK)
        return cute.make_tensor(ptr, cute.make_layout((rows, K), stride=(K, 1)))

    def codes_ring_layout(self, rows: int):
        return _codes_smem_layout(rows, self.tile.k, self.stages)

    def allocate_tiles(self, smem):
        return None  # the MMA reads the ring itself

    def mma(self, tidx, sPA, sSA, sPB, sSB, tiles, gC, valid_a, valid_b):
        """(tiled MMA, zeroed accumulator, compute(stage) for the ring, staging smem of the epilogue)."""
        tm, tn, tk = self.tile.m, self.tile.n, self.tile.k
        sf_per_tile = tk // SF_VEC
        tiled_mma = warp_tiled_mma(cute.nvgpu.warp.MmaMXF4NVF4Op(Float4E2M1FN, Float32, Float8E4M3FN), self.warps,
                                   _MMA_K)
        thr_mma, acc, (tCrA, s2r_a, tXsA, tXrA), (tCrB, s2r_b, tXsB, tXrB) = smem_fed_mma(
            tiled_mma, tidx, sPA, sPB, gC)
        # scales: one 32-bit load per atom, from stage 0's view moved to the landed stage
        vSA0 = _sf_partition(cute.make_tensor(sSA.iterator, _sf_elems_layout(tm, tk)), thr_mma, tidx, "A")
        vSB0 = _sf_partition(cute.make_tensor(sSB.iterator, _sf_elems_layout(tn, tk)), thr_mma, tidx, "B")
        tCrSA = cute.make_fragment_like(vSA0)
        tCrSB = cute.make_fragment_like(vSB0)
        k_blocks = tk // _MMA_K

        def compute(stage):
            sa_view = tXsA[None, None, None, stage]
            sb_view = tXsB[None, None, None, stage]
            vSA = cute.make_tensor(vSA0.iterator + stage * (tm * sf_per_tile), vSA0.layout)
            vSB = cute.make_tensor(vSB0.iterator + stage * (tn * sf_per_tile), vSB0.layout)

            def load(kb):  # codes by ldmatrix, scale bytes by 32-bit loads
                cute.copy(s2r_a, sa_view[None, None, kb], tXrA[None, None, kb])
                cute.copy(s2r_b, sb_view[None, None, kb], tXrB[None, None, kb])
                cute.autovec_copy(cute.filter_zeros(vSA[None, None, kb]), cute.filter_zeros(tCrSA[None, None, kb]))
                cute.autovec_copy(cute.filter_zeros(vSB[None, None, kb]), cute.filter_zeros(tCrSB[None, None, kb]))

            def mma(kb):
                cute.gemm(tiled_mma, acc, [tCrA[None, None, kb], tCrSA[None, None, kb]],
                          [tCrB[None, None, kb], tCrSB[None, None, kb]], acc)

            mma_k_blocks(k_blocks, load, mma)

        return tiled_mma, acc, compute, sPA.iterator
