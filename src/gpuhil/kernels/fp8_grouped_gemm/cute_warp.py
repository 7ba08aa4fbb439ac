"""FP8 (e4m3) grouped GEMM on warp-level ``mma.sync`` for Hopper and SM12x.

Semantics match ``torch._scaled_grouped_mm`` for 2d A x 3d B::

    A [T, K] e4m3 row-major, B [G, N, K] e4m3 (K contiguous), offs int32 [G]
    (cumulative END rows on the GPU), out [T, N] bf16.
    out[rows of g] = bf16(A[rows of g] @ B[g]^T * sa * sb)
    "tensor":  scale_a [1],  scale_b [G]
    "rowwise": scale_a [T],  scale_b [G, N]

Only sm_89+ instructions are used (cp.async, ldmatrix, mma.sync e4m3), cluster
(1,1,1), so one kernel serves sm_90a and sm_120a/sm_121a (99 KiB opt-in smem).

Schedule, mainloop and epilogue are the warp-level grouped GEMMs' shared ones (kernels.grouped_gemm):
grid (ceil(N/tile_n), ceil(T/tile_m) + G), each CTA finding its group and m-tile by a 32-lane prefix
scan over offs (schedule, launcher; no device->host sync, CUDA-graph capturable); a ``stages``-deep
ring of 16-byte cp.async.cg, one barrier per k-tile, the K tail in a shifted partial first k-tile
(ring); ldmatrix one k-block ahead of the m16n8k32 e4m3 MMAs, fp32 accumulators (warp_mma). This
kernel scales in fp32 (per tensor, or per row and column), then the epilogue rounds to bf16 once,
stages through the drained A/B ring and stores 16-byte chunks (epilogue). A persistent grid was not
chosen: it would need the same scan per tile plus a tile loop, for no gain at these tile counts.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Int64
from cutlass.memory import SmemAllocator

from ..compiled import CompiledKernel, compile_kernel, null_stream
from ..grouped_gemm.epilogue import c_smem_layout, scale_all, store_bf16
from ..grouped_gemm.launcher import launch_checked, launch_over_tiles
from ..grouped_gemm.ring import CHUNK, Stream, fill_ring, k_tiled, run_ring
from ..grouped_gemm.schedule import cta_tile, group_rows
from ..grouped_gemm.warp_mma import mma_k_blocks, smem_fed_mma, warp_tiled_mma
from . import operands
from .dsl_args import host_args, pointers
from .spec_warp import WarpGemmConfig, smem_bytes

__all__ = [
    "SCALE_MODES",
    "build",
    "aot_args",
    "compile_gemm",
    "launch",
]

SCALE_MODES = ("tensor", "rowwise")
_MMA_SHAPE = (16, 8, 32)  # mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32


def _ab_smem_layout(rows: int, tile_k: int, stages: int):
    # K-major fp8 rows; XOR the 16-byte chunk index with the row so the 8 rows
    # an ldmatrix phase reads (same logical chunk) hit 8 different bank groups.
    bits = {64: 2, 128: 3}[tile_k]
    atom = cute.make_composed_layout(
        cute.make_swizzle(bits, 4, 3), 0, cute.make_layout((8, tile_k), stride=(tile_k, 1))
    )
    return cute.tile_to_shape(atom, (rows, tile_k, stages), (0, 1, 2))


def build(config: WarpGemmConfig, scale_mode: str):
    """Return the @cute.jit host function for (config, scale_mode).

    Host signature: ``(a_ptr, b_ptr, out_ptr, offs_ptr, sa_ptr, sb_ptr, T, N,
    K, G, stream)``; pointers are ``cute.runtime.make_ptr`` objects (fp8, fp8,
    bf16, int32, fp32, fp32), T/N/K/G Int32.  Requires K % 16 == 0,
    N % 8 == 0, 16-byte aligned A/B/out.
    """
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
    rowwise = scale_mode == "rowwise"
    tm, tn, tk, stages = config.tile.m, config.tile.n, config.tile.k, config.stages
    threads = 32 * config.warps
    smem_size = smem_bytes(config.tile, stages)
    k_blocks = tk // _MMA_SHAPE[2]

    @cute.kernel
    def gemm_kernel(a_ptr: cute.Pointer, b_ptr: cute.Pointer, out_ptr: cute.Pointer, offs_ptr: cute.Pointer,
                    sa_ptr: cute.Pointer, sb_ptr: cute.Pointer, T: Int32, N: Int32, K: Int32, G: Int32):
        tidx, _, _ = cute.arch.thread_idx()
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        grp, m_tile, n_tile = cta_tile(offs, G, T, tm)
        if grp >= 0:
            g_beg, m_rows = group_rows(offs, grp, T)
            K16 = cute.assume(K, divby=CHUNK)
            N8 = cute.assume(N, divby=8)
            row0 = Int64(g_beg)
            mA = cute.make_tensor((a_ptr + row0 * Int64(K16)).align(CHUNK),
                                  cute.make_layout((m_rows, K16), stride=(K16, 1)))
            mB = cute.make_tensor((b_ptr + Int64(grp) * Int64(N8) * Int64(K16)).align(CHUNK),
                                  cute.make_layout((N8, K16), stride=(K16, 1)))
            mC = cute.make_tensor((out_ptr + row0 * Int64(N8)).align(CHUNK),
                                  cute.make_layout((m_rows, N8), stride=(N8, 1)))

            # (rows, tk, k-tiles) views; the K origin shifted so k-tile 0 is the partial one
            k_tiles = (K16 + (tk - 1)) // tk
            k_res = K16 - Int32(tk) * k_tiles
            gA, cA = k_tiled(mA, m_rows, tm, m_tile, tk, k_res, CHUNK)
            gB, cB = k_tiled(mB, N8, tn, n_tile, tk, k_res, CHUNK)
            gC = cute.local_tile(mC, (tm, tn), (m_tile, n_tile))
            cC = cute.local_tile(cute.make_identity_tensor((m_rows, N8)), (tm, tn), (m_tile, n_tile))

            smem = SmemAllocator()
            sA = smem.allocate_tensor(Float8E4M3FN, _ab_smem_layout(tm, tk, stages), 1024)
            sB = smem.allocate_tensor(Float8E4M3FN, _ab_smem_layout(tn, tk, stages), 1024)
            sC = cute.make_tensor(cute.recast_ptr(sA.iterator, dtype=BFloat16), c_smem_layout(tm, tn))

            streams = [Stream(gA, cA, sA, m_rows, tidx, threads, CHUNK),
                       Stream(gB, cB, sB, N8, tidx, threads, CHUNK)]
            fill_ring(streams, k_tiles, stages)

            # ---- MMA partitions
            mma_op = cute.nvgpu.warp.MmaFP8Op(Float8E4M3FN, Float32, _MMA_SHAPE)
            tiled_mma = warp_tiled_mma(mma_op, config.warp_layout, _MMA_SHAPE[2])
            thr_mma, acc, (tCrA, s2r_a, tXsA, tXrA), (tCrB, s2r_b, tXsB, tXrB) = smem_fed_mma(
                tiled_mma, tidx, sA, sB, gC)

            def compute(stage):
                sa_view = tXsA[None, None, None, stage]
                sb_view = tXsB[None, None, None, stage]

                def load(kb):
                    cute.copy(s2r_a, sa_view[None, None, kb], tXrA[None, None, kb])
                    cute.copy(s2r_b, sb_view[None, None, kb], tXrB[None, None, kb])

                def mma(kb):
                    cute.gemm(tiled_mma, acc, tCrA[None, None, kb], tCrB[None, None, kb], acc)

                mma_k_blocks(k_blocks, load, mma)

            run_ring(streams, k_tiles, stages, compute)

            # ---- scale in fp32, then bf16 through the drained ring
            if cutlass.const_expr(rowwise):
                tCcC = thr_mma.partition_C(cC)
                sa_t = cute.make_tensor(sa_ptr + row0, cute.make_layout(m_rows))
                sb_t = cute.make_tensor(sb_ptr + Int64(grp) * Int64(N8), cute.make_layout(N8))
                # m16n8 accumulator ((2,2),MMA_M,MMA_N): v0 -> column pair,
                # v1 -> row +8, so scales factor into per-row / per-column loads
                n_mm = cute.size(acc, mode=[1])
                n_nn = cute.size(acc, mode=[2])
                sa_r = cute.make_rmem_tensor(cute.make_layout((2, n_mm)), Float32)
                sb_r = cute.make_rmem_tensor(cute.make_layout((2, n_nn)), Float32)
                for mi in cutlass.range_constexpr(n_mm):
                    for v in cutlass.range_constexpr(2):
                        r = tCcC[(0, v), mi, 0][0]
                        sa_r[v, mi] = Float32(0.0)
                        if r < m_rows:
                            sa_r[v, mi] = sa_t[r]
                for ni in cutlass.range_constexpr(n_nn):
                    for v in cutlass.range_constexpr(2):
                        c = tCcC[(v, 0), 0, ni][1]
                        sb_r[v, ni] = Float32(0.0)
                        if c < N8:
                            sb_r[v, ni] = sb_t[c]
                for mi in cutlass.range_constexpr(n_mm):
                    for ni in cutlass.range_constexpr(n_nn):
                        for v1 in cutlass.range_constexpr(2):
                            for v0 in cutlass.range_constexpr(2):
                                acc[(v0, v1), mi, ni] = acc[(v0, v1), mi, ni] * sa_r[v1, mi] * sb_r[v0, ni]
            else:
                sa_t = cute.make_tensor(sa_ptr, cute.make_layout(1))
                sb_t = cute.make_tensor(sb_ptr, cute.make_layout(G))
                scale_all(acc, sa_t[0] * sb_t[grp])
            store_bf16(acc, thr_mma, tidx, sC, gC, cC, m_rows, N8, threads)

    @cute.jit
    def gemm_host(a_ptr: cute.Pointer, b_ptr: cute.Pointer, out_ptr: cute.Pointer, offs_ptr: cute.Pointer,
                  sa_ptr: cute.Pointer, sb_ptr: cute.Pointer, T: Int32, N: Int32, K: Int32, G: Int32,
                  stream: cuda.CUstream):
        launch_over_tiles(gemm_kernel(a_ptr, b_ptr, out_ptr, offs_ptr, sa_ptr, sb_ptr, T, N, K, G),
                          T, N, G, tm, tn, threads, smem_size, stream)

    return gemm_host


# ---------------------------------------------------------------------------


def aot_args(config: WarpGemmConfig, scale_mode: str):
    """Compile-time stand-ins for build(config, scale_mode)'s host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(8), Int32(16), Int32(1), null_stream())


def compile_gemm(config: WarpGemmConfig, scale_mode: str, target: str | None = None) -> CompiledKernel:
    """Compiled for (config, scale_mode), valid for any T/N/K/G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, scale_mode, target, host_args=host_args)


def launch(compiled: CompiledKernel, q, out, stream=None) -> None:
    """Launch on torch operands (a QuantizedOperands); no host sync, no allocation (graph-capturable)."""
    if compiled.variant != q.recipe:
        raise ValueError(f"kernel compiled for {compiled.variant} scales, operands are {q.recipe}")
    launch_checked(compiled, *operands.check(q, out), stream)
