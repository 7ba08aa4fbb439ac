"""gpuhil-nvfp4-dequant: NVFP4 grouped GEMM that expands E2M1 x E4M3 to bf16 in shared memory and
multiplies on warp-level ``mma.sync`` bf16 (m16n8k16, fp32 accumulation). sm_90a, sm_120a, sm_121a.

Semantics (the operand contract, see operands.py)::

    out[rows of g] = bf16(alpha[g] * sum_k (a_code * a_scale) * (b_code * b_scale))

Exactness: every E2M1 x E4M3 product is a bf16 and every bf16 x bf16 product an fp32 (fp4_convert),
so this forms exactly the products of the native block-scaled instruction; only fp32 addition order
differs, and the result is rounded to bf16 once.

Per k-tile: the packed codes and scale bytes of A and B land in a ``stages``-deep cp.async ring
(cute_common.Ring); every thread then turns 16-element blocks of the landed stage (8 bytes of codes
and their one scale byte) into 16 bf16 values in a swizzled bf16 tile; after a barrier the warps
ldmatrix that tile and issue the MMAs. Two barriers a k-tile: one before the bf16 tile is
overwritten (and a ring slot refilled), one before it is read.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Float32, Int32, Int64, Uint8
from cutlass.memory import SmemAllocator

from .cute_common import (CHUNK, SF_VEC, Ring, c_smem_layout, k_tiled, load_stage, row_tiled_copy,
                          store_epilogue)
from ..compiled import CompiledKernel, compile_kernel
from ..grouped_gemm.schedule import find_group, group_bounds
from .dsl_args import aot_args, launch, pointers  # noqa: F401 (aot_args, launch: this kernel's host contract)
from .fp4_convert import e2m1x8_to_bf16, e4m3_to_bf16x2
from .spec import DEQUANT, GemmConfig, smem_bytes

__all__ = ["build", "aot_args", "compile_dequant", "launch"]

_MMA_SHAPE = (16, 8, 16)  # mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
_WARPS = (2, 2, 1)  # warps along (M, N, K)
THREADS = 32 * _WARPS[0] * _WARPS[1]


def _bf16_tile_layout(rows: int, tile_k: int):
    # K-major bf16 rows; atoms of 8 rows x 64 elements (128 B), 16-byte chunk index XOR row, so the
    # 8 rows an ldmatrix phase reads and the 8 rows a conversion store covers hit 8 bank groups.
    atom = cute.make_composed_layout(cute.make_swizzle(3, 3, 3), 0, cute.make_layout((8, 64), stride=(64, 1)))
    return cute.tile_to_shape(atom, (rows, tile_k), (0, 1))


def _staged(rows: int, per_tile: int, stages: int):
    return cute.make_layout((rows, per_tile, stages), stride=(per_tile, 1, rows * per_tile))


@cute.jit
def _dequantize_stage(s_codes, s_sf, tile, stage: Int32, valid_rows: Int32, tidx: Int32,
                      threads: cutlass.Constexpr):
    """bf16 tile <- codes x scales of one ring stage. Thread t takes the 16-element blocks
    t, t + threads, ...: 8 code bytes (two 32-bit words) and one scale byte each, written as two
    16-byte chunks of the swizzled tile. Rows past `valid_rows` are skipped: they feed only
    accumulator rows (columns) that are never stored, and at decode they are most of the A tile."""
    rows = cute.size(tile, mode=[0])
    blocks = cute.size(tile, mode=[1]) // SF_VEC
    words = cute.make_tensor(cute.recast_ptr(s_codes.iterator, dtype=Int32),
                             _staged(rows, blocks * 2, cute.size(s_codes, mode=[2])))
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


def build(config: GemmConfig, variant: str = "nvfp4"):
    """Return the @cute.jit host function for `config`.

    Host signature: ``(a, a_scale, b, b_scale, out, offs, alpha, T, N, K, G, stream)``; pointers are
    ``cute.runtime.make_ptr`` objects (dsl_args.pointers), T/N/K/G Int32 with K in elements.
    Requires K % 64 == 0, N % 8 == 0, 16-byte aligned codes and output, 4-byte aligned scales.
    """
    if config.kernel != DEQUANT:
        raise ValueError(f"this module builds the {DEQUANT!r} kernel, got {config.name}")
    tm, tn, tk, stages = config.tile.m, config.tile.n, config.tile.k, config.stages
    threads = THREADS
    atom_m, atom_n, _ = _WARPS
    smem_size = smem_bytes(DEQUANT, config.tile, stages)
    k_blocks = tk // _MMA_SHAPE[2]
    bytes_per_tile, sf_per_tile = tk // 2, tk // SF_VEC

    @cute.kernel
    def gemm_kernel(a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
                    out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
                    T: Int32, N: Int32, K: Int32, G: Int32):
        tidx, _, _ = cute.arch.thread_idx()
        n_tile, m_lin, _ = cute.arch.block_idx()
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        grp, grp_first = find_group(offs, G, T, tm, m_lin)
        if grp >= 0:
            m_tile = m_lin - grp_first
            g_beg, g_end = group_bounds(offs, grp, T)
            m_rows = g_end - g_beg
            K64 = cute.assume(K, divby=64)
            N8 = cute.assume(N, divby=8)
            kb, ks = K64 // 2, K64 // SF_VEC  # bytes of codes, of scales, per row
            row0 = Int64(g_beg)
            mA = cute.make_tensor((a_ptr + row0 * Int64(kb)).align(CHUNK), cute.make_layout((m_rows, kb), stride=(kb, 1)))
            mSA = cute.make_tensor(cute.recast_ptr(sfa_ptr, dtype=Uint8) + row0 * Int64(ks), cute.make_layout((m_rows, ks), stride=(ks, 1)))
            b_off = Int64(grp) * Int64(N8)
            mB = cute.make_tensor((b_ptr + b_off * Int64(kb)).align(CHUNK), cute.make_layout((N8, kb), stride=(kb, 1)))
            mSB = cute.make_tensor(cute.recast_ptr(sfb_ptr, dtype=Uint8) + b_off * Int64(ks), cute.make_layout((N8, ks), stride=(ks, 1)))
            mC = cute.make_tensor((out_ptr + row0 * Int64(N8)).align(CHUNK), cute.make_layout((m_rows, N8), stride=(N8, 1)))

            # (rows, per k-tile, k-tiles) views; the K origin shifted so k-tile 0 is the partial one
            k_tiles = (K64 + (tk - 1)) // tk
            k_res = K64 - Int32(tk) * k_tiles  # <= 0, a multiple of 64

            gA, cA = k_tiled(mA, m_rows, tm, m_tile, bytes_per_tile, k_res // 2)
            gSA, cSA = k_tiled(mSA, m_rows, tm, m_tile, sf_per_tile, k_res // SF_VEC)
            gB, cB = k_tiled(mB, N8, tn, n_tile, bytes_per_tile, k_res // 2)
            gSB, cSB = k_tiled(mSB, N8, tn, n_tile, sf_per_tile, k_res // SF_VEC)
            gA = cute.make_tensor(gA.iterator.align(CHUNK), gA.layout)
            gB = cute.make_tensor(gB.iterator.align(CHUNK), gB.layout)
            gC = cute.local_tile(mC, (tm, tn), (m_tile, n_tile))
            cC = cute.local_tile(cute.make_identity_tensor((m_rows, N8)), (tm, tn), (m_tile, n_tile))

            # smem: code rings, bf16 tiles (each a multiple of 1 KiB), then the scale rings
            smem = SmemAllocator()
            sPA = smem.allocate_tensor(Uint8, _staged(tm, bytes_per_tile, stages), 1024)
            sPB = smem.allocate_tensor(Uint8, _staged(tn, bytes_per_tile, stages), 1024)
            sTA = smem.allocate_tensor(BFloat16, _bf16_tile_layout(tm, tk), 1024)
            sTB = smem.allocate_tensor(BFloat16, _bf16_tile_layout(tn, tk), 1024)
            sSA = smem.allocate_tensor(Uint8, _staged(tm, sf_per_tile, stages), 16)
            sSB = smem.allocate_tensor(Uint8, _staged(tn, sf_per_tile, stages), 16)
            sC = cute.make_tensor(cute.recast_ptr(sTA.iterator, dtype=BFloat16), c_smem_layout(tm, tn))

            ring_a = Ring(gA, cA, sPA, gSA, cSA, sSA, m_rows, tidx, threads, Uint8, CHUNK, Uint8)
            ring_b = Ring(gB, cB, sPB, gSB, cSB, sSB, N8, tidx, threads, Uint8, CHUNK, Uint8)

            ring_a.zero_first_stage()
            ring_b.zero_first_stage()
            cute.arch.sync_threads()
            ring_a.load_first()
            ring_b.load_first()
            cute.arch.cp_async_commit_group()
            for s in cutlass.range_constexpr(1, stages - 1):
                if s < k_tiles:
                    load_stage(ring_a, s, s)
                    load_stage(ring_b, s, s)
                cute.arch.cp_async_commit_group()

            # ---- MMA partitions over the bf16 tiles
            mma_op = cute.nvgpu.warp.MmaF16BF16Op(BFloat16, Float32, _MMA_SHAPE)
            tiled_mma = cute.make_tiled_mma(mma_op, cute.make_layout(_WARPS),
                                            permutation_mnk=(atom_m * 16, atom_n * 16, _MMA_SHAPE[2]))
            thr_mma = tiled_mma.get_slice(tidx)
            tCrA = tiled_mma.make_fragment_A(thr_mma.partition_A(sTA))
            tCrB = tiled_mma.make_fragment_B(thr_mma.partition_B(sTB))
            acc = tiled_mma.make_fragment_C(thr_mma.partition_C(gC))
            acc.fill(0.0)
            ldsm = cute.nvgpu.warp.LdMatrix8x8x16bOp(False, 4)
            s2r_a = cute.make_tiled_copy_A(cute.make_copy_atom(ldsm, BFloat16), tiled_mma)
            s2r_b = cute.make_tiled_copy_B(cute.make_copy_atom(ldsm, BFloat16), tiled_mma)
            tXsA = s2r_a.get_slice(tidx).partition_S(sTA)
            tXrA = s2r_a.get_slice(tidx).retile(tCrA)
            tXsB = s2r_b.get_slice(tidx).partition_S(sTB)
            tXrB = s2r_b.get_slice(tidx).retile(tCrB)

            # ---- mainloop
            read_stage = Int32(0)
            write_stage = Int32(stages - 1)
            for kt in cutlass.range(k_tiles):
                # tile kt landed; every warp is done with the bf16 tiles and the slot refilled next
                cute.arch.cp_async_wait_group(stages - 2)
                cute.arch.sync_threads()
                nxt = kt + stages - 1
                if nxt < k_tiles:
                    load_stage(ring_a, nxt, write_stage)
                    load_stage(ring_b, nxt, write_stage)
                cute.arch.cp_async_commit_group()
                _dequantize_stage(sPA, sSA, sTA, read_stage, m_rows - m_tile * tm, tidx, threads)
                _dequantize_stage(sPB, sSB, sTB, read_stage, N8 - n_tile * tn, tidx, threads)
                cute.arch.sync_threads()

                cute.copy(s2r_a, tXsA[None, None, 0], tXrA[None, None, 0])
                cute.copy(s2r_b, tXsB[None, None, 0], tXrB[None, None, 0])
                for kb in cutlass.range_constexpr(k_blocks):
                    if kb + 1 < k_blocks:
                        cute.copy(s2r_a, tXsA[None, None, kb + 1], tXrA[None, None, kb + 1])
                        cute.copy(s2r_b, tXsB[None, None, kb + 1], tXrB[None, None, kb + 1])
                    cute.gemm(tiled_mma, acc, tCrA[None, None, kb], tCrB[None, None, kb], acc)

                write_stage = read_stage
                read_stage = read_stage + 1
                if read_stage == stages:
                    read_stage = Int32(0)

            cute.arch.cp_async_wait_group(0)
            cute.arch.sync_threads()  # the bf16 tiles become the epilogue's staging tile
            alpha = cute.make_tensor(alpha_ptr, cute.make_layout(G))[grp]
            store_epilogue(acc, alpha, tiled_mma, tidx, sC, gC, cC, m_rows, N8, threads, tn)

    @cute.jit
    def gemm_host(a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
                  out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
                  T: Int32, N: Int32, K: Int32, G: Int32, stream: cuda.CUstream):
        grid_n = (N + (tn - 1)) // tn
        grid_m = (T + (tm - 1)) // tm + G
        gemm_kernel(a_ptr, sfa_ptr, b_ptr, sfb_ptr, out_ptr, offs_ptr, alpha_ptr, T, N, K, G).launch(
            grid=[grid_n, grid_m, 1], block=[threads, 1, 1], smem=smem_size, stream=stream)

    return gemm_host


def compile_dequant(config: GemmConfig, target: str | None = None) -> CompiledKernel:
    """Compiled for `config`, valid for any T/N/K/G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, "nvfp4", target)
