"""gpuhil-cute-nvfp4-wgmma: the NVFP4 grouped GEMM on Hopper warpgroup MMA (sm_90a), persistent over
groups. Same operands and semantics as cute_gemm (operands.py)::

    out[rows of g] = bf16(alpha[g] * sum_k (a_code * a_scale) * (b_code * b_scale))

Work: the FP8 wgmma kernel's persistent schedule (grouped_gemm.persistent, clusters of one CTA): one
warp scans offs into per-group tile starts in smem, every CTA takes tiles bidx, bidx + grid, ...
Warp specialization: warpgroup 0 streams each tile's k-tiles (64 K elements: 32 code bytes and 4
scale bytes a row of A and of B) through a cp.async ring (grouped_gemm.ring's streams; rows past the
group or N are not loaded) with mbarriers: each producer thread's cp.async.mbarrier.arrive fires once
its copies have landed, a consumer releases a stage once it has expanded it. The consumer
warpgroups (one per 64 rows) expand a landed stage into bf16 operand buffer kt % 2, codes x scale
exact in bf16 (fp4_convert, the dequant kernel's conversion), written through the 128-byte swizzle
wgmma reads; then a proxy fence, their own previous wgmma retired, a named barrier (the other
warpgroup's half of B and its previous wgmma too), and the wgmma batch of this k-tile is issued
without waiting for it: the next stage's expansion runs under it. Rows of A past the group and of B
past N are never expanded: whatever the buffer held there feeds only accumulator rows and columns
that are never stored. Epilogue: alpha[g] in fp32, bf16 once, predicated 16-byte stores from the
accumulator layout (grouped_gemm.quad_store).
"""

# No `from __future__ import annotations`: @cute.struct reads its field annotations as objects.
import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import BFloat16, Float32, Int32, Int64, Uint8
from cutlass.cute.nvgpu import warpgroup
from cutlass.memory import SmemAllocator
from cutlass.tensor_utils import LayoutEnum

from ..compiled import CompiledKernel, compile_kernel, null_stream, raw_stream
from ..grouped_gemm.persistent import locate, write_tile_starts
from ..grouped_gemm.quad_store import store_rows
from ..grouped_gemm.ring import CHUNK, Stream, k_tiled, linear_ring_layout, load_stage
from . import operands
from .cute_dequant import dequantize_stage
from .dsl_args import host_args, pointers
from .spec import SF_VEC
from .spec_wgmma import MAX_GROUPS, OPERAND_BUFFERS, NvWgmmaConfig

__all__ = ["aot_args", "build", "compile_gemm", "launch"]

SF_CHUNK = 4  # bytes per cp.async of scales: one k-tile's 4 scale bytes of a row
_EXPANDED_BARRIER = 1  # named barrier: every consumer has expanded the k-tile (0: sync_threads)


def build(config: NvWgmmaConfig, variant: str = "nvfp4"):
    """The @cute.jit host function: (a, a_scale, b, b_scale, out, offs, alpha pointers, T, N, K, G,
    ctas, stream); K % 64 == 0, N % 8 == 0, G <= MAX_GROUPS (checked on the host)."""
    tm, tn, tk, stages = config.tile.m, config.tile.n, config.tile.k, config.stages
    consumers = 128 * config.consumer_warpgroups
    threads = config.threads
    codes_per_row, sf_per_row = tk // 2, tk // SF_VEC
    tiler = (tm, tn, tk)

    @cute.struct
    class Storage:
        barriers: cute.struct.MemRange[Int64, 2 * stages]
        tile_starts: cute.struct.MemRange[Int32, MAX_GROUPS + 1]
        sA: cute.struct.Align[cute.struct.MemRange[BFloat16, tm * tk * OPERAND_BUFFERS], 1024]
        sB: cute.struct.Align[cute.struct.MemRange[BFloat16, tn * tk * OPERAND_BUFFERS], 1024]
        codes_a: cute.struct.Align[cute.struct.MemRange[Uint8, tm * codes_per_row * stages], 128]
        codes_b: cute.struct.Align[cute.struct.MemRange[Uint8, tn * codes_per_row * stages], 128]
        sf_a: cute.struct.Align[cute.struct.MemRange[Uint8, tm * sf_per_row * stages], 16]
        sf_b: cute.struct.Align[cute.struct.MemRange[Uint8, tn * sf_per_row * stages], 16]

    @cute.kernel
    def kernel(tiled_mma: cute.TiledMma, a_layout: cute.ComposedLayout, b_layout: cute.ComposedLayout,
               a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
               out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
               T: Int32, N: Int32, K: Int32, G: Int32):
        tidx, _, _ = cute.arch.thread_idx()
        bidx, _, _ = cute.arch.block_idx()
        gdim, _, _ = cute.arch.grid_dim()
        warp = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        wg = cute.arch.make_warp_uniform(tidx // 128)

        cute.arch.griddepcontrol_launch_dependents()  # programmatic dependent launch, as the FP8 kernel
        storage = SmemAllocator().allocate(Storage)
        # full: every producer thread's copies landed; empty: every consumer thread expanded the stage
        ring = pipeline.PipelineCpAsync.create(
            barrier_storage=storage.barriers.data_ptr(), num_stages=stages,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 128),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, consumers),
            defer_sync=True)
        sA = storage.sA.get_tensor(a_layout.outer, swizzle=a_layout.inner)
        sB = storage.sB.get_tensor(b_layout.outer, swizzle=b_layout.inner)
        rCA = storage.codes_a.get_tensor(linear_ring_layout(tm, codes_per_row, stages))
        rCB = storage.codes_b.get_tensor(linear_ring_layout(tn, codes_per_row, stages))
        rSA = storage.sf_a.get_tensor(linear_ring_layout(tm, sf_per_row, stages))
        rSB = storage.sf_b.get_tensor(linear_ring_layout(tn, sf_per_row, stages))
        starts = storage.tile_starts.get_tensor(cute.make_layout(MAX_GROUPS + 1))
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        K64 = cute.assume(K, divby=64)
        N8 = cute.assume(N, divby=8)
        kb_codes, ks = K64 // 2, K64 // SF_VEC  # bytes per row: codes, scales
        k_tiles = K64 // tk
        n_tiles = (N8 + (tn - 1)) // tn
        cute.arch.griddepcontrol_wait()  # offs and the operands may be the previous kernel's output
        if warp == 0:
            write_tile_starts(offs, starts, G, T, n_tiles, tm)
        cute.arch.mbarrier_init_fence()
        cute.arch.sync_threads()  # tile starts and the ring's barriers visible to every warp
        total = starts[G]

        if wg == 0:
            state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, stages)
            t = bidx
            while t < total:
                g, row0, rows, n_t = locate(t, starts, offs, G, T, n_tiles, Int32(0), Int32(0), tm, 1, 1)
                r0 = Int64(row0)
                b0 = Int64(g) * Int64(N8)
                mA = cute.make_tensor((a_ptr + r0 * Int64(kb_codes)).align(CHUNK),
                                      cute.make_layout((rows, kb_codes), stride=(kb_codes, 1)))
                mSA = cute.make_tensor(cute.recast_ptr(sfa_ptr, dtype=Uint8) + r0 * Int64(ks),
                                       cute.make_layout((rows, ks), stride=(ks, 1)))
                mB = cute.make_tensor((b_ptr + b0 * Int64(kb_codes)).align(CHUNK),
                                      cute.make_layout((N8, kb_codes), stride=(kb_codes, 1)))
                mSB = cute.make_tensor(cute.recast_ptr(sfb_ptr, dtype=Uint8) + b0 * Int64(ks),
                                       cute.make_layout((N8, ks), stride=(ks, 1)))
                gA, cA = k_tiled(mA, rows, tm, 0, codes_per_row, 0, CHUNK)
                gSA, cSA = k_tiled(mSA, rows, tm, 0, sf_per_row, 0, SF_CHUNK)
                gB, cB = k_tiled(mB, N8, tn, n_t, codes_per_row, 0, CHUNK)
                gSB, cSB = k_tiled(mSB, N8, tn, n_t, sf_per_row, 0, SF_CHUNK)
                streams = [Stream(gA, cA, rCA, rows, tidx, 128, CHUNK), Stream(gSA, cSA, rSA, rows, tidx, 128, SF_CHUNK),
                           Stream(gB, cB, rCB, N8, tidx, 128, CHUNK), Stream(gSB, cSB, rSB, N8, tidx, 128, SF_CHUNK)]
                for kt in cutlass.range(k_tiles):
                    ring.producer_acquire(state)
                    for i in cutlass.range_constexpr(len(streams)):
                        if streams[i].active:
                            load_stage(streams[i], kt, state.index)
                    ring.producer_commit(state)  # arrives once this thread's copies have landed
                    state.advance()
                t = t + gdim
            ring.producer_tail(state)
        else:
            ctid = tidx - 128
            thr_mma = tiled_mma.get_slice(ctid)
            tCrA = tiled_mma.make_fragment_A(thr_mma.partition_A(sA))
            tCrB = tiled_mma.make_fragment_B(thr_mma.partition_B(sB))
            tCcC = thr_mma.partition_C(cute.make_identity_tensor((tm, tn)))
            acc = cute.make_rmem_tensor(tCcC.shape, Float32)
            out_frag = cute.make_rmem_tensor(tCcC.shape, BFloat16)
            k_blocks = cute.size(tCrA, mode=[2])
            quad_lane = cute.arch.lane_idx() % 4
            lane_lo, lane_hi = (quad_lane & 1) != 0, (quad_lane & 2) != 0
            chunk = cute.make_rmem_tensor(4, Int32)
            mC = cute.make_tensor(out_ptr, cute.make_layout((T, N8), stride=(N8, 1)))
            alpha = cute.make_tensor(alpha_ptr, cute.make_layout(G))
            read = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, stages)
            buf = Int32(0)
            t = bidx
            while t < total:
                g, row0, rows, n_t = locate(t, starts, offs, G, T, n_tiles, Int32(0), Int32(0), tm, 1, 1)
                scale = alpha[g]  # loaded under the mainloop
                valid_b = N8 - n_t * tn
                tiled_mma.set(warpgroup.Field.ACCUMULATE, False)
                for kt in cutlass.range(k_tiles):
                    ring.consumer_wait(read)
                    # buffer `buf` was last read by the wgmma two k-tiles back: every consumer
                    # retired it before the barrier of the previous k-tile
                    dequantize_stage(rCA, rSA, sA[None, None, buf], read.index, rows, ctid, consumers)
                    dequantize_stage(rCB, rSB, sB[None, None, buf], read.index, valid_b, ctid, consumers)
                    ring.consumer_release(read)
                    read.advance()
                    cute.arch.fence_proxy("async.shared", space="cta")  # st.shared -> wgmma's async proxy
                    warpgroup.wait_group(0)  # this warpgroup's previous wgmma (the other buffer) retired
                    cute.arch.barrier(barrier_id=_EXPANDED_BARRIER, number_of_threads=consumers)
                    warpgroup.fence()
                    for kb in cutlass.range_constexpr(k_blocks):
                        cute.gemm(tiled_mma, acc, tCrA[None, None, kb, buf], tCrB[None, None, kb, buf], acc)
                        tiled_mma.set(warpgroup.Field.ACCUMULATE, True)
                    warpgroup.commit_group()
                    buf = 1 - buf
                warpgroup.wait_group(0)
                for i in cutlass.range_constexpr(cute.size(acc)):
                    acc[i] = acc[i] * scale
                out_frag.store(acc.load().to(BFloat16))
                gC = cute.local_tile(cute.domain_offset((row0, 0), mC), (tm, tn), (0, n_t))
                store_rows(out_frag, tCcC, gC, chunk, rows, n_t * tn, N8, quad_lane, lane_lo, lane_hi)
                t = t + gdim

    @cute.jit
    def host(a_ptr: cute.Pointer, sfa_ptr: cute.Pointer, b_ptr: cute.Pointer, sfb_ptr: cute.Pointer,
             out_ptr: cute.Pointer, offs_ptr: cute.Pointer, alpha_ptr: cute.Pointer,
             T: Int32, N: Int32, K: Int32, G: Int32, ctas: Int32, stream: cuda.CUstream):
        a_layout = sm90_utils.make_smem_layout_a(LayoutEnum.ROW_MAJOR, tiler, BFloat16, OPERAND_BUFFERS)
        b_layout = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, tiler, BFloat16, OPERAND_BUFFERS)
        tiled_mma = sm90_utils.make_trivial_tiled_mma(
            BFloat16, BFloat16, cute.nvgpu.OperandMajorMode.K, cute.nvgpu.OperandMajorMode.K, Float32,
            (config.consumer_warpgroups, 1, 1), tiler_mn=(64, tn))
        kernel(tiled_mma, a_layout, b_layout, a_ptr, sfa_ptr, b_ptr, sfb_ptr, out_ptr, offs_ptr, alpha_ptr,
               T, N, K, G).launch(grid=[ctas, 1, 1], block=[threads, 1, 1], min_blocks_per_mp=1, stream=stream,
                                  use_pdl=True)

    return host


def aot_args(config: NvWgmmaConfig, variant: str = "nvfp4"):
    """Compile-time stand-ins for the host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(8), Int32(64), Int32(1), Int32(1), null_stream())


def compile_gemm(config: NvWgmmaConfig, target: str | None = None) -> CompiledKernel:
    """Compiled for `config`, valid for any T, N, K, G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, "nvfp4", target, host_args=host_args)


def launch(compiled: CompiledKernel, ops, out, resident_ctas: int, stream=None) -> None:
    """Launch on torch operands (operands.Nvfp4GroupedOperands); no host sync, no allocation
    (graph-capturable). resident_ctas: how many CTAs of this config the device runs at once (one an
    SM); the persistent grid stays within it and within the tile count."""
    t, n, k, g = operands.check(ops, out)
    if g > MAX_GROUPS:
        raise ValueError(f"b has G={g} groups; {compiled.config.name} keeps tile starts for at most {MAX_GROUPS} in smem")
    if t == 0:
        return
    tile = compiled.config.tile
    bound = (-(-t // tile.m) + g) * -(-n // tile.n)  # tiles, at most
    ctas = max(1, min(resident_ctas, bound))
    addresses = (ops.a.data_ptr(), ops.a_scale.data_ptr(), ops.b.data_ptr(), ops.b_scale.data_ptr(), out.data_ptr(),
                 ops.offs.data_ptr(), ops.alpha.data_ptr())
    compiled.launch(*addresses, t, n, k, g, ctas, raw_stream(ops.a.device.index, stream))
