"""The dequant mainloop of gpuhil's NVFP4 grouped GEMM (cute_gemm builds it): E2M1 x E4M3 expanded
to bf16 in shared memory and multiplied on warp-level ``mma.sync`` bf16 (m16n8k16, fp32
accumulation). sm_90a, sm_120a, sm_121a.

Exactness: every E2M1 x E4M3 product is a bf16 and every bf16 x bf16 product an fp32 (fp4_convert),
so this forms exactly the products of the native block-scaled instruction; only fp32 addition order
differs, and the result is rounded to bf16 once.

Per k-tile: the packed code bytes and scale bytes of A and B land in the cp.async ring (linear
byte stages); every thread then turns 16-element blocks of the landed stage (8 bytes of codes and
their one scale byte) into 16 bf16 values in a swizzled bf16 tile; after a barrier the warps
ldmatrix that tile and issue the MMAs. Two barriers a k-tile: the ring's, before the bf16 tile is
overwritten (and a ring slot refilled), and one before it is read.
"""

from __future__ import annotations

import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Float32, Int32, Uint8

from ..grouped_gemm.ring import CHUNK, linear_ring_layout, row_tiled_copy
from ..grouped_gemm.warp_mma import mma_k_blocks, smem_fed_mma, warp_tiled_mma
from .fp4_convert import e2m1x8_to_bf16, e4m3_to_bf16x2
from .spec import SF_VEC

_MMA_SHAPE = (16, 8, 16)  # mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32


def _bf16_tile_layout(rows: int, tile_k: int):
    # K-major bf16 rows; atoms of 8 rows x 64 elements (128 B), 16-byte chunk index XOR row, so the
    # 8 rows an ldmatrix phase reads and the 8 rows a conversion store covers hit 8 bank groups.
    atom = cute.make_composed_layout(cute.make_swizzle(3, 3, 3), 0, cute.make_layout((8, 64), stride=(64, 1)))
    return cute.tile_to_shape(atom, (rows, tile_k), (0, 1))


@cute.jit
def dequantize_stage(s_codes, s_sf, tile, stage: Int32, valid_rows: Int32, tidx: Int32,
                      threads: cutlass.Constexpr):
    """bf16 tile <- codes x scales of one ring stage. Thread t takes the 16-element blocks
    t, t + threads, ...: 8 code bytes (two 32-bit words) and one scale byte each, written as two
    16-byte chunks of the swizzled tile. Rows past `valid_rows` are skipped: they feed only
    accumulator rows (columns) that are never stored, and at decode they are most of the A tile."""
    rows = cute.size(tile, mode=[0])
    blocks = cute.size(tile, mode=[1]) // SF_VEC
    words = cute.make_tensor(cute.recast_ptr(s_codes.iterator, dtype=Int32),
                             linear_ring_layout(rows, blocks * 2, cute.size(s_codes, mode=[2])))
    st_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), BFloat16, num_bits_per_copy=128)
    copy_t, _ = row_tiled_copy(st_atom, threads, rows, blocks * SF_VEC, SF_VEC)
    dst = copy_t.get_slice(tidx).partition_D(tile)  # (16 elements, rows / rows-per-pass, 1)
    frag = cute.make_fragment_like(dst[None, 0, 0])
    frag_words = cute.recast_tensor(frag, Int32)
    rows_per_pass = threads // blocks
    blk = tidx % blocks
    for i in cutlass.range_constexpr(cute.size(dst, mode=[1])):
        r = tidx // blocks + i * rows_per_pass
        if r < valid_rows:
            scale = e4m3_to_bf16x2(Int32(s_sf[r, blk, stage]))
            e2m1x8_to_bf16(words[r, 2 * blk, stage], scale, frag_words, 0)
            e2m1x8_to_bf16(words[r, 2 * blk + 1, stage], scale, frag_words, 4)
            cute.copy(copy_t, frag, dst[None, i, 0])


class DequantMainloop:
    """Codes and scales ride the ring as plain bytes; a bf16 A and B tile (one k-tile each) sit
    between the code and scale rings in shared memory and become the epilogue's staging tile."""

    code_type = Uint8  # the ring holds packed bytes, two codes each
    sf_type = Uint8  # scale bytes, decoded by bit manipulation (fp4_convert)

    def __init__(self, tile, stages: int, warps: tuple[int, int, int]):
        self.tile, self.stages, self.warps = tile, stages, warps
        self.threads = 32 * warps[0] * warps[1] * warps[2]

    @staticmethod
    def codes_of(k):
        """Code elements (here bytes) of `k` K elements."""
        return k // 2

    def codes_view(self, byte_ptr, rows, K):
        kb = K // 2
        return cute.make_tensor(byte_ptr.align(CHUNK), cute.make_layout((rows, kb), stride=(kb, 1)))

    def codes_ring_layout(self, rows: int):
        return linear_ring_layout(rows, self.tile.k // 2, self.stages)

    def allocate_tiles(self, smem):
        """The bf16 A and B tiles, after the code rings (each a multiple of 1 KiB)."""
        return (smem.allocate_tensor(BFloat16, _bf16_tile_layout(self.tile.m, self.tile.k), 1024),
                smem.allocate_tensor(BFloat16, _bf16_tile_layout(self.tile.n, self.tile.k), 1024))

    def mma(self, tidx, sPA, sSA, sPB, sSB, tiles, gC, valid_a, valid_b):
        """(tiled MMA, zeroed accumulator, compute(stage) for the ring, staging smem of the epilogue).
        valid_a / valid_b: rows of this CTA's A / B tile in range (the rest is never dequantized)."""
        sTA, sTB = tiles
        threads = self.threads
        tiled_mma = warp_tiled_mma(cute.nvgpu.warp.MmaF16BF16Op(BFloat16, Float32, _MMA_SHAPE), self.warps,
                                   _MMA_SHAPE[2])
        _, acc, (tCrA, s2r_a, tXsA, tXrA), (tCrB, s2r_b, tXsB, tXrB) = smem_fed_mma(tiled_mma, tidx, sTA, sTB, gC)
        k_blocks = self.tile.k // _MMA_SHAPE[2]

        def load(kb):
            cute.copy(s2r_a, tXsA[None, None, kb], tXrA[None, None, kb])
            cute.copy(s2r_b, tXsB[None, None, kb], tXrB[None, None, kb])

        def mma(kb):
            cute.gemm(tiled_mma, acc, tCrA[None, None, kb], tCrB[None, None, kb], acc)

        def compute(stage):
            dequantize_stage(sPA, sSA, sTA, stage, valid_a, tidx, threads)
            dequantize_stage(sPB, sSB, sTB, stage, valid_b, tidx, threads)
            cute.arch.sync_threads()
            mma_k_blocks(k_blocks, load, mma)

        return tiled_mma, acc, compute, sTA.iterator
