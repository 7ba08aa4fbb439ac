"""gpuhil-nvfp4-native: NVFP4 grouped GEMM on SM12x's block-scaled warp MMA,
``mma.sync.aligned.kind::mxf4nvf4.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3``
(CuTe DSL ``cute.nvgpu.warp.MmaMXF4NVF4Op``). sm_120a and sm_121a only, from a DSL payload of
CUDA 13 or newer (seed 002; the spec's requirements say so).

Same operand contract, grouped schedule, ring and epilogue as the dequant kernel (cute_common); the
codes stay packed all the way to the tensor cores: a k-tile lands in a swizzled Float4E2M1FN stage
(16-byte cp.async of 32 codes), ldmatrix feeds the A and B registers, and each thread loads the
scale bytes its lanes own straight from the linear scale stage. Scale operand layout: with
scale_vec::4X each 32-bit scale register holds the four E4M3 scales of one row (A) or column (B)
across the atom's 64 K elements, byte j for K elements 16j..16j+15; by CuTe's SM120 thread-value
layouts (cutlass.utils.blackwell_helpers.thrfrg_SFA/SFB, the DSL's port of mma_traits_sm120),
lanes 4i and 4i + 1 hold rows i and i + 8 of A and the four lanes of quad i hold column i of B,
and the MMA is issued with byte-id and thread-id 0. So a scale fragment is one 32-bit
shared-memory load per atom from the row-major (rows, K/16) stage. One barrier a k-tile.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass
import cutlass.cute as cute
import cutlass.utils.blackwell_helpers as sm120_helpers
from cutlass import BFloat16, Float4E2M1FN, Float8E4M3FN, Float32, Int32, Int64
from cutlass.memory import SmemAllocator

from .cute_common import (CHUNK, SF_VEC, Ring, c_smem_layout, k_tiled, load_stage,
                          store_epilogue)
from ..compiled import CompiledKernel, compile_kernel
from ..grouped_gemm.schedule import find_group, group_bounds
from .dsl_args import aot_args, launch, pointers  # noqa: F401 (aot_args, launch: this kernel's host contract)
from .spec import NATIVE, GemmConfig, smem_bytes

__all__ = ["build", "aot_args", "compile_native", "launch"]

_MMA_K = 64  # m16n8k64
_WARPS = (2, 2, 1)
THREADS = 32 * _WARPS[0] * _WARPS[1]
_CODES_PER_CHUNK = 2 * CHUNK  # E2M1 codes per 16-byte cp.async


def _codes_ptr(byte_ptr):
    """The packed bytes as a 16-byte aligned Float4E2M1FN pointer (a recast would lose the alignment
    the 16-byte cp.async needs: sub-byte pointers carry none)."""
    return cute.make_ptr(Float4E2M1FN, byte_ptr.toint(), cute.AddressSpace.gmem, assumed_align=CHUNK)


def _codes_smem_layout(rows: int, tile_k: int, stages: int):
    # K-major E2M1 rows (tile_k / 2 bytes); XOR the 16-byte chunk index (32 codes) with row bits so
    # the 8 rows an ldmatrix phase reads (same logical chunk) hit 8 different bank groups:
    # 64-byte rows (k 128) take chunk ^= (row >> 1) & 3, 128-byte rows (k 256) chunk ^= row & 7.
    bits = {128: 2, 256: 3}[tile_k]
    atom = cute.make_composed_layout(cute.make_swizzle(bits, 5, 3), 0,
                                     cute.make_layout((8, tile_k), stride=(tile_k, 1)))
    return cute.tile_to_shape(atom, (rows, tile_k, stages), (0, 1, 2))


def _sf_bytes_layout(rows: int, tile_k: int, stages: int):
    per = tile_k // SF_VEC
    return cute.make_layout((rows, per, stages), stride=(per, 1, rows * per))


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


def _load_k_block(s2r_a, s2r_b, sa_view, sb_view, tXrA, tXrB, vSA, vSB, tCrSA, tCrSB, kb: int) -> None:
    """Registers of k-block `kb` (64 K elements): codes by ldmatrix, scale bytes by 32-bit loads."""
    cute.copy(s2r_a, sa_view[None, None, kb], tXrA[None, None, kb])
    cute.copy(s2r_b, sb_view[None, None, kb], tXrB[None, None, kb])
    cute.autovec_copy(cute.filter_zeros(vSA[None, None, kb]), cute.filter_zeros(tCrSA[None, None, kb]))
    cute.autovec_copy(cute.filter_zeros(vSB[None, None, kb]), cute.filter_zeros(tCrSB[None, None, kb]))


def build(config: GemmConfig, variant: str = "nvfp4"):
    """Return the @cute.jit host function for `config` (trace with CUTE_DSL arch sm_120a/sm_121a).

    Host signature: ``(a, a_scale, b, b_scale, out, offs, alpha, T, N, K, G, stream)``, as the
    dequant kernel's (dsl_args.pointers). Requires K % 64 == 0, N % 8 == 0, 16-byte aligned codes
    and output, 4-byte aligned scales.
    """
    if config.kernel != NATIVE:
        raise ValueError(f"this module builds the {NATIVE!r} kernel, got {config.name}")
    tm, tn, tk, stages = config.tile.m, config.tile.n, config.tile.k, config.stages
    threads = THREADS
    atom_m, atom_n, _ = _WARPS
    smem_size = smem_bytes(NATIVE, config.tile, stages)
    k_blocks = tk // _MMA_K
    sf_per_tile = tk // SF_VEC

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
            ks = K64 // SF_VEC
            row0 = Int64(g_beg)
            b_off = Int64(grp) * Int64(N8)
            mA = cute.make_tensor(_codes_ptr(a_ptr + row0 * Int64(K64 // 2)),
                                  cute.make_layout((m_rows, K64), stride=(K64, 1)))
            mSA = cute.make_tensor(sfa_ptr + row0 * Int64(ks), cute.make_layout((m_rows, ks), stride=(ks, 1)))
            mB = cute.make_tensor(_codes_ptr(b_ptr + b_off * Int64(K64 // 2)),
                                  cute.make_layout((N8, K64), stride=(K64, 1)))
            mSB = cute.make_tensor(sfb_ptr + b_off * Int64(ks), cute.make_layout((N8, ks), stride=(ks, 1)))
            mC = cute.make_tensor((out_ptr + row0 * Int64(N8)).align(CHUNK),
                                  cute.make_layout((m_rows, N8), stride=(N8, 1)))

            k_tiles = (K64 + (tk - 1)) // tk
            k_res = K64 - Int32(tk) * k_tiles  # <= 0, a multiple of 64: k-tile 0 is the partial one
            gA, cA = k_tiled(mA, m_rows, tm, m_tile, tk, k_res)
            gSA, cSA = k_tiled(mSA, m_rows, tm, m_tile, sf_per_tile, k_res // SF_VEC)
            gB, cB = k_tiled(mB, N8, tn, n_tile, tk, k_res)
            gSB, cSB = k_tiled(mSB, N8, tn, n_tile, sf_per_tile, k_res // SF_VEC)
            gA = cute.make_tensor(gA.iterator.align(CHUNK), gA.layout)
            gB = cute.make_tensor(gB.iterator.align(CHUNK), gB.layout)
            gC = cute.local_tile(mC, (tm, tn), (m_tile, n_tile))
            cC = cute.local_tile(cute.make_identity_tensor((m_rows, N8)), (tm, tn), (m_tile, n_tile))

            # smem: code rings (multiples of 1 KiB), then the scale rings
            smem = SmemAllocator()
            sPA = smem.allocate_tensor(Float4E2M1FN, _codes_smem_layout(tm, tk, stages), 1024)
            sPB = smem.allocate_tensor(Float4E2M1FN, _codes_smem_layout(tn, tk, stages), 1024)
            sSA = smem.allocate_tensor(Float8E4M3FN, _sf_bytes_layout(tm, tk, stages), 16)
            sSB = smem.allocate_tensor(Float8E4M3FN, _sf_bytes_layout(tn, tk, stages), 16)
            sC = cute.make_tensor(cute.recast_ptr(sPA.iterator, dtype=BFloat16), c_smem_layout(tm, tn))

            ring_a = Ring(gA, cA, sPA, gSA, cSA, sSA, m_rows, tidx, threads, Float4E2M1FN, _CODES_PER_CHUNK,
                          Float8E4M3FN)
            ring_b = Ring(gB, cB, sPB, gSB, cSB, sSB, N8, tidx, threads, Float4E2M1FN, _CODES_PER_CHUNK,
                          Float8E4M3FN)
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

            # ---- MMA partitions: codes by ldmatrix, scales by 32-bit loads
            mma_op = cute.nvgpu.warp.MmaMXF4NVF4Op(Float4E2M1FN, Float32, Float8E4M3FN)
            tiled_mma = cute.make_tiled_mma(mma_op, cute.make_layout(_WARPS),
                                            permutation_mnk=(atom_m * 16, atom_n * 16, _MMA_K))
            thr_mma = tiled_mma.get_slice(tidx)
            tCsA = thr_mma.partition_A(sPA)
            tCsB = thr_mma.partition_B(sPB)
            tCrA = tiled_mma.make_fragment_A(tCsA[None, None, None, 0])
            tCrB = tiled_mma.make_fragment_B(tCsB[None, None, None, 0])
            acc = tiled_mma.make_fragment_C(thr_mma.partition_C(gC))
            acc.fill(0.0)
            ldsm = cute.nvgpu.warp.LdMatrix8x8x16bOp(False, 4)
            s2r_a = cute.make_tiled_copy_A(cute.make_copy_atom(ldsm, Float4E2M1FN), tiled_mma)
            s2r_b = cute.make_tiled_copy_B(cute.make_copy_atom(ldsm, Float4E2M1FN), tiled_mma)
            tXsA = s2r_a.get_slice(tidx).partition_S(sPA)
            tXrA = s2r_a.get_slice(tidx).retile(tCrA)
            tXsB = s2r_b.get_slice(tidx).partition_S(sPB)
            tXrB = s2r_b.get_slice(tidx).retile(tCrB)
            vSA0 = _sf_partition(cute.make_tensor(sSA.iterator, _sf_elems_layout(tm, tk)), thr_mma, tidx, "A")
            vSB0 = _sf_partition(cute.make_tensor(sSB.iterator, _sf_elems_layout(tn, tk)), thr_mma, tidx, "B")
            tCrSA = cute.make_fragment_like(vSA0)
            tCrSB = cute.make_fragment_like(vSB0)

            # ---- mainloop
            read_stage = Int32(0)
            write_stage = Int32(stages - 1)
            for kt in cutlass.range(k_tiles):
                # tile kt landed and every warp is done reading the slot refilled next
                cute.arch.cp_async_wait_group(stages - 2)
                cute.arch.sync_threads()
                nxt = kt + stages - 1
                if nxt < k_tiles:
                    load_stage(ring_a, nxt, write_stage)
                    load_stage(ring_b, nxt, write_stage)
                cute.arch.cp_async_commit_group()

                sa_view = tXsA[None, None, None, read_stage]
                sb_view = tXsB[None, None, None, read_stage]
                vSA = cute.make_tensor(vSA0.iterator + read_stage * (tm * sf_per_tile), vSA0.layout)
                vSB = cute.make_tensor(vSB0.iterator + read_stage * (tn * sf_per_tile), vSB0.layout)
                _load_k_block(s2r_a, s2r_b, sa_view, sb_view, tXrA, tXrB, vSA, vSB, tCrSA, tCrSB, 0)
                for kb in cutlass.range_constexpr(k_blocks):
                    if kb + 1 < k_blocks:  # next k-block's registers load under this one's MMAs
                        _load_k_block(s2r_a, s2r_b, sa_view, sb_view, tXrA, tXrB, vSA, vSB, tCrSA, tCrSB, kb + 1)
                    cute.gemm(tiled_mma, acc, [tCrA[None, None, kb], tCrSA[None, None, kb]],
                              [tCrB[None, None, kb], tCrSB[None, None, kb]], acc)

                write_stage = read_stage
                read_stage = read_stage + 1
                if read_stage == stages:
                    read_stage = Int32(0)

            cute.arch.cp_async_wait_group(0)
            cute.arch.sync_threads()  # the code ring becomes the epilogue's staging tile
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


def compile_native(config: GemmConfig, target: str | None = None) -> CompiledKernel:
    """Compiled for `config`, valid for any T/N/K/G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, "nvfp4", target)
