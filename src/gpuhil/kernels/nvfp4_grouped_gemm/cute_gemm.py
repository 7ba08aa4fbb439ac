"""gpuhil's NVFP4 grouped GEMM: one build, two mainloops (spec.DEQUANT: cute_dequant, spec.NATIVE:
cute_native) over the shared grouped schedule, cp.async ring and epilogue (kernels.grouped_gemm).

Semantics (the operand contract, see operands.py)::

    out[rows of g] = bf16(alpha[g] * sum_k (a_code * a_scale) * (b_code * b_scale))

Per CTA: find its group and m-tile (schedule.find_group), view the group's packed codes and E4M3
scale rows of A and B as k-tiles (the K origin shifted so k-tile 0 is the partial one), stream
them through a ``stages``-deep cp.async ring (codes in 16-byte, scales in 4-byte copies), let the
config's mainloop turn each landed stage into MMAs, then scale by alpha[g] in fp32 and store bf16
through the drained smem (epilogue).
"""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass.cute as cute
from cutlass import BFloat16, Int32, Int64
from cutlass.memory import SmemAllocator

from ..compiled import CompiledKernel, compile_kernel
from ..grouped_gemm.epilogue import c_smem_layout, scale_all, store_bf16
from ..grouped_gemm.launcher import launch_over_tiles
from ..grouped_gemm.ring import CHUNK, Stream, fill_ring, k_tiled, linear_ring_layout, run_ring
from ..grouped_gemm.schedule import cta_tile, group_rows
from .cute_dequant import DequantMainloop
from .cute_native import NativeMainloop
from .dsl_args import aot_args, host_args, launch  # noqa: F401 (launch: this kernel's host contract)
from .spec import DEQUANT, NATIVE, SF_VEC, GemmConfig, smem_bytes

__all__ = ["build", "aot_args", "compile_gemm", "launch"]

MAINLOOPS = {DEQUANT: DequantMainloop, NATIVE: NativeMainloop}
WARPS = (2, 2, 1)  # warps along (M, N, K)
THREADS = 32 * WARPS[0] * WARPS[1]
SF_CHUNK = 4  # bytes per cp.async of scales: K % 64 == 0 makes each scale row whole 4-byte chunks


def build(config: GemmConfig, variant: str = "nvfp4"):
    """Return the @cute.jit host function for `config` (its kernel picks the mainloop).

    Host signature: ``(a, a_scale, b, b_scale, out, offs, alpha, T, N, K, G, stream)``; pointers are
    ``cute.runtime.make_ptr`` objects (dsl_args.pointers), T/N/K/G Int32 with K in elements.
    Requires K % 64 == 0, N % 8 == 0, 16-byte aligned codes and output, 4-byte aligned scales.
    """
    tm, tn, tk, stages = config.tile.m, config.tile.n, config.tile.k, config.stages
    mainloop = MAINLOOPS[config.kernel](config.tile, stages, WARPS)
    threads = THREADS
    smem_size = smem_bytes(config.kernel, config.tile, stages)
    sf_per_tile = tk // SF_VEC
    codes_per_tile = mainloop.codes_of(tk)
    code_type, sf_type = mainloop.code_type, mainloop.sf_type

    @cute.kernel
    def gemm_kernel(a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
                    out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
                    T: Int32, N: Int32, K: Int32, G: Int32):
        tidx, _, _ = cute.arch.thread_idx()
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        grp, m_tile, n_tile = cta_tile(offs, G, T, tm)
        if grp >= 0:
            g_beg, m_rows = group_rows(offs, grp, T)
            K64 = cute.assume(K, divby=64)
            N8 = cute.assume(N, divby=8)
            ks = K64 // SF_VEC  # scale bytes per row
            row0 = Int64(g_beg)
            b_off = Int64(grp) * Int64(N8)
            mA = mainloop.codes_view(a_ptr + row0 * Int64(K64 // 2), m_rows, K64)
            mSA = cute.make_tensor(cute.recast_ptr(sfa_ptr, dtype=sf_type) + row0 * Int64(ks),
                                   cute.make_layout((m_rows, ks), stride=(ks, 1)))
            mB = mainloop.codes_view(b_ptr + b_off * Int64(K64 // 2), N8, K64)
            mSB = cute.make_tensor(cute.recast_ptr(sfb_ptr, dtype=sf_type) + b_off * Int64(ks),
                                   cute.make_layout((N8, ks), stride=(ks, 1)))
            mC = cute.make_tensor((out_ptr + row0 * Int64(N8)).align(CHUNK),
                                  cute.make_layout((m_rows, N8), stride=(N8, 1)))

            # (rows, per k-tile, k-tiles) views; the K origin shifted so k-tile 0 is the partial one
            k_tiles = (K64 + (tk - 1)) // tk
            k_res = K64 - Int32(tk) * k_tiles  # <= 0, a multiple of 64
            gA, cA = k_tiled(mA, m_rows, tm, m_tile, codes_per_tile, mainloop.codes_of(k_res), CHUNK)
            gSA, cSA = k_tiled(mSA, m_rows, tm, m_tile, sf_per_tile, k_res // SF_VEC, SF_CHUNK)
            gB, cB = k_tiled(mB, N8, tn, n_tile, codes_per_tile, mainloop.codes_of(k_res), CHUNK)
            gSB, cSB = k_tiled(mSB, N8, tn, n_tile, sf_per_tile, k_res // SF_VEC, SF_CHUNK)
            gC = cute.local_tile(mC, (tm, tn), (m_tile, n_tile))
            cC = cute.local_tile(cute.make_identity_tensor((m_rows, N8)), (tm, tn), (m_tile, n_tile))

            # smem: code rings, the mainloop's own tiles (each a multiple of 1 KiB), then the scale rings
            smem = SmemAllocator()
            sPA = smem.allocate_tensor(code_type, mainloop.codes_ring_layout(tm), 1024)
            sPB = smem.allocate_tensor(code_type, mainloop.codes_ring_layout(tn), 1024)
            tiles = mainloop.allocate_tiles(smem)
            sSA = smem.allocate_tensor(sf_type, linear_ring_layout(tm, sf_per_tile, stages), 16)
            sSB = smem.allocate_tensor(sf_type, linear_ring_layout(tn, sf_per_tile, stages), 16)

            streams = [Stream(gA, cA, sPA, m_rows, tidx, threads, CHUNK),
                       Stream(gSA, cSA, sSA, m_rows, tidx, threads, SF_CHUNK),
                       Stream(gB, cB, sPB, N8, tidx, threads, CHUNK),
                       Stream(gSB, cSB, sSB, N8, tidx, threads, SF_CHUNK)]
            fill_ring(streams, k_tiles, stages)
            tiled_mma, acc, compute, staging = mainloop.mma(tidx, sPA, sSA, sPB, sSB, tiles, gC,
                                                            m_rows - m_tile * tm, N8 - n_tile * tn)
            run_ring(streams, k_tiles, stages, compute)

            scale_all(acc, cute.make_tensor(alpha_ptr, cute.make_layout(G))[grp])
            sC = cute.make_tensor(cute.recast_ptr(staging, dtype=BFloat16), c_smem_layout(tm, tn))
            store_bf16(acc, tiled_mma.get_slice(tidx), tidx, sC, gC, cC, m_rows, N8, threads)

    @cute.jit
    def gemm_host(a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
                  out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
                  T: Int32, N: Int32, K: Int32, G: Int32, stream: cuda.CUstream):
        launch_over_tiles(gemm_kernel(a_ptr, sfa_ptr, b_ptr, sfb_ptr, out_ptr, offs_ptr, alpha_ptr, T, N, K, G),
                          T, N, G, tm, tn, threads, smem_size, stream)

    return gemm_host


def compile_gemm(config: GemmConfig, target: str | None = None) -> CompiledKernel:
    """Compiled for `config` (either kernel), valid for any T/N/K/G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, "nvfp4", target, host_args=host_args)
