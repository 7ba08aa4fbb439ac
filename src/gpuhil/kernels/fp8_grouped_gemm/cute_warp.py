"""FP8 (e4m3) grouped GEMM on warp-level ``mma.sync`` for Hopper and SM12x.

Semantics match ``torch._scaled_grouped_mm`` for 2d A x 3d B::

    A [T, K] e4m3 row-major, B [G, N, K] e4m3 (K contiguous), offs int32 [G]
    (cumulative END rows on the GPU), out [T, N] bf16.
    out[rows of g] = bf16(A[rows of g] @ B[g]^T * sa * sb)
    "tensor":  scale_a [1],  scale_b [G]
    "rowwise": scale_a [T],  scale_b [G, N]

Only sm_89+ instructions are used (cp.async, ldmatrix, mma.sync e4m3), cluster
(1,1,1), so one kernel serves sm_90a and sm_120a/sm_121a (99 KiB opt-in smem).

Scheduling: grid = (ceil(N/tile_n), ceil(T/tile_m) + G).  ceil(T/tile_m) + G
bounds sum_g ceil(m_g/tile_m), so the grid needs only host-known T and G
(no device->host sync, CUDA-graph capturable).  blockIdx.y is a linear m-tile
index; every warp maps it to (group, tile in group) with a 32-lane prefix scan
over offs (G/32 steps, no smem, no barrier); CTAs past the real tile count
exit.  N tiles are the fast grid axis, so the CTAs sharing one A tile run
together (A is streamed from DRAM about once) and an expert's B stays in L2
across its m-tiles.  A persistent grid was not chosen: it would need the same
scan per tile plus a tile loop, for no gain at these tile counts.

Mainloop: ``stages``-deep cp.async ring (16-byte cp.async.cg), one barrier per
k-tile, ldmatrix into registers, m16n8k32 e4m3 MMA with fp32 accumulators.
The K tail is handled by shifting the k origin so the FIRST k-tile is the
partial one; its out-of-range 16-byte chunks stay zero (stage 0 is zeroed
before the prologue), all later k-tiles are full.  Rows past the group / N are
not loaded: they only feed accumulator rows/columns that are never stored.
Epilogue: scale in fp32, convert to bf16, stage through the (drained) A/B ring
in smem, then 16-byte predicated stores (N % 8 == 0 keeps each chunk all-in or
all-out).
"""

from __future__ import annotations

import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Int64
from cutlass.memory import SmemAllocator

from ..compiled import CompiledKernel, compile_kernel, null_stream, raw_stream
from ..grouped_gemm.schedule import find_group, group_bounds
from ..tiles import check_grouped_grid_rows
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
_CHUNK = 16  # bytes per cp.async / per fp8 16-byte vector


# ---------------------------------------------------------------------------
# layouts and atoms (trace-time helpers)


def _ab_smem_layout(rows: int, tile_k: int, stages: int):
    # K-major fp8 rows; XOR the 16-byte chunk index with the row so the 8 rows
    # an ldmatrix phase reads (same logical chunk) hit 8 different bank groups.
    bits = {64: 2, 128: 3}[tile_k]
    atom = cute.make_composed_layout(
        cute.make_swizzle(bits, 4, 3), 0, cute.make_layout((8, tile_k), stride=(tile_k, 1))
    )
    return cute.tile_to_shape(atom, (rows, tile_k, stages), (0, 1, 2))


def _c_smem_layout(tile_m: int, tile_n: int):
    # bf16 rows of 64 elements (128 B) per atom, 16-byte chunks XOR row
    atom = cute.make_composed_layout(
        cute.make_swizzle(3, 3, 3), 0, cute.make_layout((8, 64), stride=(64, 1))
    )
    return cute.tile_to_shape(atom, (tile_m, tile_n), (0, 1))


def _row_tiled_copy(atom, threads: int, row_elems: int, vec: int):
    per_row = row_elems // vec
    thr = cute.make_layout((threads // per_row, per_row), stride=(per_row, 1))
    return cute.make_tiled_copy_tv(atom, thr, cute.make_layout((1, vec)))


def _row_pred(part):
    n_m = cute.size(part, mode=[1])
    return cute.make_rmem_tensor(
        cute.make_layout((1, n_m, cute.size(part, mode=[2])), stride=(n_m, 1, 0)), cutlass.Boolean
    )


# ---------------------------------------------------------------------------


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
    atom_m, atom_n, _ = config.warp_layout
    smem_size = smem_bytes(config.tile, stages)
    k_blocks = tk // _MMA_SHAPE[2]

    @cute.kernel
    def gemm_kernel(
        a_ptr: cute.Pointer,
        b_ptr: cute.Pointer,
        out_ptr: cute.Pointer,
        offs_ptr: cute.Pointer,
        sa_ptr: cute.Pointer,
        sb_ptr: cute.Pointer,
        T: Int32,
        N: Int32,
        K: Int32,
        G: Int32,
    ):
        tidx, _, _ = cute.arch.thread_idx()
        n_tile, m_lin, _ = cute.arch.block_idx()
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        grp, grp_first = find_group(offs, G, T, tm, m_lin)
        if grp >= 0:
            m_tile = m_lin - grp_first
            g_beg, g_end = group_bounds(offs, grp, T)
            m_rows = g_end - g_beg

            K16 = cute.assume(K, divby=_CHUNK)
            N8 = cute.assume(N, divby=8)
            row0 = Int64(g_beg)
            mA = cute.make_tensor(
                (a_ptr + row0 * Int64(K16)).align(_CHUNK), cute.make_layout((m_rows, K16), stride=(K16, 1))
            )
            mB = cute.make_tensor(
                (b_ptr + Int64(grp) * Int64(N8) * Int64(K16)).align(_CHUNK),
                cute.make_layout((N8, K16), stride=(K16, 1)),
            )
            mC = cute.make_tensor(
                (out_ptr + row0 * Int64(N8)).align(_CHUNK), cute.make_layout((m_rows, N8), stride=(N8, 1))
            )

            gA = cute.local_tile(mA, (tm, tk), (m_tile, None))  # (tm, tk, kt)
            gB = cute.local_tile(mB, (tn, tk), (n_tile, None))  # (tn, tk, kt)
            gC = cute.local_tile(mC, (tm, tn), (m_tile, n_tile))
            cA = cute.local_tile(cute.make_identity_tensor((m_rows, K16)), (tm, tk), (m_tile, None))
            cB = cute.local_tile(cute.make_identity_tensor((N8, K16)), (tn, tk), (n_tile, None))
            cC = cute.local_tile(cute.make_identity_tensor((m_rows, N8)), (tm, tn), (m_tile, n_tile))

            k_tiles = cute.size(gA, mode=[2])
            # shift k so tile 0 is the partial one (coords < 0 are masked)
            k_res = K16 - Int32(tk) * k_tiles
            gA = cute.domain_offset((0, k_res, 0), gA)
            gB = cute.domain_offset((0, k_res, 0), gB)
            gA = cute.make_tensor(gA.iterator.align(_CHUNK), gA.layout)
            gB = cute.make_tensor(gB.iterator.align(_CHUNK), gB.layout)
            cA = cute.domain_offset((0, k_res, 0), cA)
            cB = cute.domain_offset((0, k_res, 0), cB)

            smem = SmemAllocator()
            sA = smem.allocate_tensor(Float8E4M3FN, _ab_smem_layout(tm, tk, stages), 1024)
            sB = smem.allocate_tensor(Float8E4M3FN, _ab_smem_layout(tn, tk, stages), 1024)
            sC = cute.make_tensor(cute.recast_ptr(sA.iterator, dtype=BFloat16), _c_smem_layout(tm, tn))

            g2s = cute.make_copy_atom(
                cute.nvgpu.cpasync.CopyG2SOp(cache_mode=cute.nvgpu.cpasync.LoadCacheMode.GLOBAL),
                Float8E4M3FN,
                num_bits_per_copy=_CHUNK * 8,
            )
            copy_a = _row_tiled_copy(g2s, threads, tk, _CHUNK)
            copy_b = _row_tiled_copy(g2s, threads, tk, _CHUNK)
            thr_a = copy_a.get_slice(tidx)
            thr_b = copy_b.get_slice(tidx)
            tAgA = thr_a.partition_S(gA)  # (CPY, CPY_M, CPY_K, kt)
            tAsA = thr_a.partition_D(sA)  # (CPY, CPY_M, CPY_K, stages)
            tAcA = thr_a.partition_S(cA)
            tBgB = thr_b.partition_S(gB)
            tBsB = thr_b.partition_D(sB)
            tBcB = thr_b.partition_S(cB)

            # row predicates (K handled by the shifted first tile)
            # (1, CPY_M, CPY_K) with K stride 0: one flag per 16-byte row chunk
            pA = _row_pred(tAgA)
            pB = _row_pred(tBgB)
            for i in cutlass.range_constexpr(cute.size(tAgA, mode=[1])):
                pA[0, i, 0] = tAcA[0, i, 0, 0][0] < m_rows
            for i in cutlass.range_constexpr(cute.size(tBgB, mode=[1])):
                pB[0, i, 0] = tBcB[0, i, 0, 0][0] < N8

            # stage 0 gets the partial first k-tile: zero it so masked K chunks are 0
            tAsA[None, None, None, 0].fill(0)
            tBsB[None, None, None, 0].fill(0)
            cute.arch.sync_threads()

            # ---- prologue: k-tiles 0 .. stages-2
            for k in cutlass.range_constexpr(cute.size(tAgA, mode=[2])):
                if tAcA[0, 0, k, 0][1] >= 0:
                    cute.copy(copy_a, tAgA[None, None, k, 0], tAsA[None, None, k, 0], pred=pA[None, None, k])
            for k in cutlass.range_constexpr(cute.size(tBgB, mode=[2])):
                if tBcB[0, 0, k, 0][1] >= 0:
                    cute.copy(copy_b, tBgB[None, None, k, 0], tBsB[None, None, k, 0], pred=pB[None, None, k])
            cute.arch.cp_async_commit_group()
            for s in cutlass.range_constexpr(1, stages - 1):
                if s < k_tiles:
                    cute.copy(copy_a, tAgA[None, None, None, s], tAsA[None, None, None, s], pred=pA)
                    cute.copy(copy_b, tBgB[None, None, None, s], tBsB[None, None, None, s], pred=pB)
                cute.arch.cp_async_commit_group()

            # ---- MMA partitions
            mma_op = cute.nvgpu.warp.MmaFP8Op(Float8E4M3FN, Float32, _MMA_SHAPE)
            tiled_mma = cute.make_tiled_mma(
                mma_op,
                cute.make_layout(config.warp_layout),
                permutation_mnk=(atom_m * 16, atom_n * 16, _MMA_SHAPE[2]),
            )
            thr_mma = tiled_mma.get_slice(tidx)
            tCsA = thr_mma.partition_A(sA)
            tCsB = thr_mma.partition_B(sB)
            tCrA = tiled_mma.make_fragment_A(tCsA[None, None, None, 0])
            tCrB = tiled_mma.make_fragment_B(tCsB[None, None, None, 0])
            tCgC = thr_mma.partition_C(gC)
            acc = tiled_mma.make_fragment_C(tCgC)
            acc.fill(0.0)

            ldsm = cute.nvgpu.warp.LdMatrix8x8x16bOp(False, 4)
            s2r_a = cute.make_tiled_copy_A(cute.make_copy_atom(ldsm, Float8E4M3FN), tiled_mma)
            s2r_b = cute.make_tiled_copy_B(cute.make_copy_atom(ldsm, Float8E4M3FN), tiled_mma)
            thr_s2r_a = s2r_a.get_slice(tidx)
            thr_s2r_b = s2r_b.get_slice(tidx)
            tXsA = thr_s2r_a.partition_S(sA)
            tXrA = thr_s2r_a.retile(tCrA)
            tXsB = thr_s2r_b.partition_S(sB)
            tXrB = thr_s2r_b.retile(tCrB)

            # ---- mainloop
            read_stage = Int32(0)
            write_stage = Int32(stages - 1)
            for kt in cutlass.range(k_tiles):
                # tile kt landed (<= stages-2 newer groups in flight) and every
                # warp finished reading the stage we are about to overwrite
                cute.arch.cp_async_wait_group(stages - 2)
                cute.arch.sync_threads()
                nxt = kt + stages - 1
                if nxt < k_tiles:
                    cute.copy(copy_a, tAgA[None, None, None, nxt], tAsA[None, None, None, write_stage], pred=pA)
                    cute.copy(copy_b, tBgB[None, None, None, nxt], tBsB[None, None, None, write_stage], pred=pB)
                cute.arch.cp_async_commit_group()

                sa_view = tXsA[None, None, None, read_stage]
                sb_view = tXsB[None, None, None, read_stage]
                cute.copy(s2r_a, sa_view[None, None, 0], tXrA[None, None, 0])
                cute.copy(s2r_b, sb_view[None, None, 0], tXrB[None, None, 0])
                for kb in cutlass.range_constexpr(k_blocks):
                    if kb + 1 < k_blocks:
                        cute.copy(s2r_a, sa_view[None, None, kb + 1], tXrA[None, None, kb + 1])
                        cute.copy(s2r_b, sb_view[None, None, kb + 1], tXrB[None, None, kb + 1])
                    cute.gemm(tiled_mma, acc, tCrA[None, None, kb], tCrB[None, None, kb], acc)

                write_stage = read_stage
                read_stage = read_stage + 1
                if read_stage == stages:
                    read_stage = Int32(0)

            cute.arch.cp_async_wait_group(0)
            cute.arch.sync_threads()

            # ---- epilogue: scale in fp32, bf16 via smem, 16-byte stores
            tCcC = thr_mma.partition_C(cC)
            if cutlass.const_expr(rowwise):
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
                scale = sa_t[0] * sb_t[grp]
                for i in cutlass.range_constexpr(cute.size(acc)):
                    acc[i] = acc[i] * scale
            out_frag = cute.make_fragment_like(acc, BFloat16)
            out_frag.store(acc.load().to(BFloat16))
            cute.autovec_copy(out_frag, thr_mma.partition_C(sC))
            cute.arch.sync_threads()

            st_atom = cute.make_copy_atom(cute.nvgpu.CopyUniversalOp(), BFloat16, num_bits_per_copy=128)
            copy_c = _row_tiled_copy(st_atom, threads, tn, 8)
            thr_c = copy_c.get_slice(tidx)
            tOsC = thr_c.partition_S(sC)
            tOgC = thr_c.partition_D(gC)
            tOcC = thr_c.partition_S(cC)
            tOrC = cute.make_fragment_like(tOsC)
            cute.autovec_copy(tOsC, tOrC)
            for i in cutlass.range_constexpr(cute.size(tOrC, mode=[1])):
                for j in cutlass.range_constexpr(cute.size(tOrC, mode=[2])):
                    r, c = tOcC[0, i, j]
                    if r < m_rows and c < N8:
                        cute.copy(copy_c, tOrC[None, i, j], tOgC[None, i, j])

    @cute.jit
    def gemm_host(
        a_ptr: cute.Pointer,
        b_ptr: cute.Pointer,
        out_ptr: cute.Pointer,
        offs_ptr: cute.Pointer,
        sa_ptr: cute.Pointer,
        sb_ptr: cute.Pointer,
        T: Int32,
        N: Int32,
        K: Int32,
        G: Int32,
        stream: cuda.CUstream,
    ):
        grid_n = (N + (tn - 1)) // tn
        grid_m = (T + (tm - 1)) // tm + G
        gemm_kernel(a_ptr, b_ptr, out_ptr, offs_ptr, sa_ptr, sb_ptr, T, N, K, G).launch(
            grid=[grid_n, grid_m, 1], block=[threads, 1, 1], smem=smem_size, stream=stream
        )

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
    addresses, (T, N, K, G), device = operands.check(q, out)
    check_grouped_grid_rows(compiled.config.tile.m, T, G)
    if T == 0:
        return
    compiled.launch(*addresses, T, N, K, G, raw_stream(device, stream))
