"""FP8 (e4m3) grouped GEMM for Hopper (sm_90a): TMA loads, warpgroup MMA, persistent over groups.

Semantics are those of ``cute_warp`` (and ``torch._scaled_grouped_mm``, 2d A x 3d B):
A [T, K] e4m3, B [G, N, K] e4m3 (K contiguous), offs int32 [G] cumulative END rows on the GPU,
out [T, N] bf16; scales "tensor" (scale_a [1], scale_b [G]) or "rowwise" (scale_a [T], scale_b [G, N]).

Work: a cluster tile is (cluster_m x tile_m) rows of one group by (cluster_n x tile_n) columns; the
cluster runs that persistent loop together, each CTA on its (rank_m, rank_n) part. The tiles of every
group are numbered group by group, M fastest (the CTAs running together share an expert's B tile);
each cluster takes tiles cluster_id, cluster_id + clusters, ... until all are done, so skewed and
empty experts leave no SM idle and the launch needs no device->host sync (graph-capturable).
At kernel start one warp scans offs into per-group tile starts in smem; a tile finds its group by
binary search there.

Warp specialization: warp 0 issues TMA loads (A at the tile's first row, anywhere in T; each B tile
is multicast to the cluster_m CTAs that share it, each A tile to the cluster_n CTAs that share it,
every CTA loading its share; B evict-first where the config streams it), 1 or 2 consumer
warpgroups run wgmma with fp32 accumulators: cooperative, both on one tile (64 rows each); or
ping-pong, each on every other tile of the CTA, skipping the other's stages in the ring, so one
warpgroup's epilogue (stores the mainloop cannot hide) runs while the other's mainloop keeps the
tensor cores and the loads busy.
Rows of A past the group belong to the next group or lie past T (TMA fills zeros there); they only
feed accumulator rows that are never stored. The K tail is zero-filled by TMA too. Epilogue: scale
in fp32, bf16, then predicated 16-byte stores straight from registers (a group boundary can fall
inside any tile, so a TMA store box could overwrite a neighbour's rows): a 4x4 transpose across each
quad of lanes turns the accumulator layout's 4-byte column pairs into whole 8-column blocks.
Every launch is a programmatic dependent launch (sm_90, like everything here): a CTA sets up its
barriers while the stream's previous kernel finishes and waits for it before any global access.
"""

# No `from __future__ import annotations`: @cute.struct reads its field annotations as objects.
import cuda.bindings.driver as cuda
import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import BFloat16, Float8E4M3FN, Float32, Int32, Int64
from cutlass.cute.nvgpu import cpasync, warpgroup
from cutlass.memory import SmemAllocator
from cutlass.tensor_utils import LayoutEnum

from ..compiled import CompiledKernel, compile_kernel, null_stream, raw_stream
from ..grouped_gemm.persistent import locate, write_tile_starts
from ..grouped_gemm.quad_store import store_rows
from . import operands
from .dsl_args import host_args, pointers
from .spec_wgmma import MAX_GROUPS, WgmmaConfig

__all__ = ["SCALE_MODES", "aot_args", "build", "compile_gemm", "launch"]

SCALE_MODES = ("tensor", "rowwise")
_PRODUCER_REGS, _CONSUMER_REGS = 40, 232  # the loader needs few registers, the accumulators many
_TURN_BARRIER = 1  # named barriers 1, 2: ping-pong warpgroup 0 / 1 may start its mainloop (0: sync_threads)
EVICT_FIRST = 0x12F0000000000000  # the 64-bit L2 cache policy (TMA .L2::cache_hint operand) for evict_first


def build(config: WgmmaConfig, scale_mode: str):
    """The @cute.jit host function: (a, b, out, offs, sa, sb pointers, T, N, K, G, clusters, stream)."""
    if scale_mode not in SCALE_MODES:
        raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {scale_mode!r}")
    rowwise = scale_mode == "rowwise"
    tm, tn, tk, cm, stages = config.tile.m, config.tile.n, config.tile.k, config.cluster_m, config.stages
    cn = config.cluster_n
    if tn % 32:  # the epilogue's quad transpose stores four 8-column blocks at a time
        raise ValueError(f"gpuhil-cute-wgmma: tile N must be a multiple of 32, got {tn}")
    pingpong, stream_b = config.pingpong, config.stream_b
    consumer_wgs, tile_wgs = config.consumer_warpgroups, config.tile_warpgroups
    threads = 128 * (1 + consumer_wgs)
    turns = 2 if pingpong else 1  # consumer warpgroups taking turns over the CTA's tiles
    tiler = (tm, tn, tk)

    @cute.struct
    class Storage:
        barriers: cute.struct.MemRange[Int64, 2 * stages]
        tile_starts: cute.struct.MemRange[Int32, MAX_GROUPS + 1]
        sA: cute.struct.Align[cute.struct.MemRange[Float8E4M3FN, tm * tk * stages], 1024]
        sB: cute.struct.Align[cute.struct.MemRange[Float8E4M3FN, tn * tk * stages], 1024]

    @cute.jit
    def skip_tile(read, release, k_tiles: Int32):
        """Ping-pong: step both consumer states past one tile's stages, which the other warpgroup takes."""
        for _ in cutlass.range(k_tiles):
            read.advance()
            release.advance()
        return read, release

    @cute.kernel
    def kernel(
        tma_atom_a: cute.CopyAtom,
        mA: cute.Tensor,
        tma_atom_b: cute.CopyAtom,
        mB: cute.Tensor,
        tiled_mma: cute.TiledMma,
        a_layout: cute.ComposedLayout,
        b_layout: cute.ComposedLayout,
        out_ptr: cute.Pointer,
        offs_ptr: cute.Pointer,
        sa_ptr: cute.Pointer,
        sb_ptr: cute.Pointer,
        T: Int32,
        N: Int32,
        G: Int32,
    ):
        tidx, _, _ = cute.arch.thread_idx()
        bidx, _, _ = cute.arch.block_idx()
        gdim, _, _ = cute.arch.grid_dim()
        warp = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        wg = cute.arch.make_warp_uniform(tidx // 128)
        if warp == 0:
            cpasync.prefetch_descriptor(tma_atom_a)
            cpasync.prefetch_descriptor(tma_atom_b)
        rank = cute.arch.make_warp_uniform(cute.arch.block_idx_in_cluster())
        rank_m, rank_n = rank, Int32(0)
        if cutlass.const_expr(cn > 1):  # cluster (cm, cn): rank runs along M first
            rank_m, rank_n = rank % cm, rank // cm
        cluster_id, clusters = bidx // cm, gdim // cm
        cta_layout = cute.make_layout((cm, cn, 1))
        # B tiles go to the CTAs of the same N column, A tiles to those of the same M row.
        b_mcast_mask = 0
        if cutlass.const_expr(cm > 1):
            b_mcast_mask = cute.make_layout_image_mask(cta_layout, cta_layout.get_flat_coord(rank), mode=0)
        a_mcast_mask = 0
        if cutlass.const_expr(cn > 1):
            a_mcast_mask = cute.make_layout_image_mask(cta_layout, cta_layout.get_flat_coord(rank), mode=1)

        # Programmatic dependent launch: the next kernel of the stream may start on each SM this grid
        # leaves (one CTA fills an SM, so no earlier); its barrier setup then runs under this grid's
        # last tiles, and griddepcontrol.wait holds it before its first global access until this
        # grid has finished and its stores are visible.
        cute.arch.griddepcontrol_launch_dependents()
        storage = SmemAllocator().allocate(Storage)
        # Each consumer warp of the tile's warpgroups releases a stage to every CTA that multicast into it.
        ab_pipe = pipeline.PipelineTmaAsync.create(
            barrier_storage=storage.barriers.data_ptr(),
            num_stages=stages,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, (cm + cn - 1) * tile_wgs * 4),
            tx_count=(tm + tn) * tk,
            cta_layout_vmnk=cute.make_layout((1, cm, cn, 1)),
            defer_sync=True,
        )
        sA = storage.sA.get_tensor(a_layout.outer, swizzle=a_layout.inner)
        sB = storage.sB.get_tensor(b_layout.outer, swizzle=b_layout.inner)
        starts = storage.tile_starts.get_tensor(cute.make_layout(MAX_GROUPS + 1))
        offs = cute.make_tensor(offs_ptr, cute.make_layout(G))
        n_tiles = (N + (tn * cn - 1)) // (tn * cn)  # cluster tiles along N
        k_tiles = cute.size(cute.local_tile(mA, (tm, tk), (0, None)), mode=[2])
        cute.arch.griddepcontrol_wait()  # offs, A, B and the scales may be the previous kernel's output
        if warp == 0:
            write_tile_starts(offs, starts, G, T, n_tiles, tm * cm)
        cute.arch.sync_threads()  # tile starts visible to every warp
        pipeline.pipeline_init_arrive(cluster_shape_mn=(cm, cn), is_relaxed=True)
        pipeline.pipeline_init_wait(cluster_shape_mn=(cm, cn))
        total = starts[G]

        if wg == 0:
            cute.arch.setmaxregister_decrease(_PRODUCER_REGS)
            if warp == 0:
                state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, stages)
                b_policy = None  # the DSL's default L2 policy
                if cutlass.const_expr(stream_b):
                    b_policy = Int64(EVICT_FIRST)
                t = cluster_id
                while t < total:
                    g, row0, _rows, n_t = locate(t, starts, offs, G, T, n_tiles, rank_m, rank_n, tm, cm, cn)
                    gA = cute.local_tile(cute.domain_offset((row0, 0), mA), (tm, tk), (0, None))
                    gB = cute.local_tile(mB[None, None, g], (tn, tk), (n_t, None))
                    tAsA, tAgA = cpasync.tma_partition(
                        tma_atom_a, rank_n, cute.make_layout(cn), cute.group_modes(sA, 0, 2), cute.group_modes(gA, 0, 2))
                    tBsB, tBgB = cpasync.tma_partition(
                        tma_atom_b, rank_m, cute.make_layout(cm), cute.group_modes(sB, 0, 2), cute.group_modes(gB, 0, 2))
                    for kt in cutlass.range(k_tiles):
                        ab_pipe.producer_acquire(state)
                        bar = ab_pipe.producer_get_barrier(state)
                        cute.copy(tma_atom_a, tAgA[None, kt], tAsA[None, state.index], tma_bar_ptr=bar,
                                  mcast_mask=a_mcast_mask)
                        cute.copy(tma_atom_b, tBgB[None, kt], tBsB[None, state.index], tma_bar_ptr=bar,
                                  mcast_mask=b_mcast_mask, cache_policy=b_policy)
                        ab_pipe.producer_commit(state)
                        state.advance()
                    t = t + clusters
                ab_pipe.producer_tail(state)
        else:
            cute.arch.setmaxregister_increase(_CONSUMER_REGS)
            turn = wg - 1 if pingpong else 0
            thr_mma = tiled_mma.get_slice(tidx - 128 * (1 + turn))
            tCrA = tiled_mma.make_fragment_A(thr_mma.partition_A(sA))
            tCrB = tiled_mma.make_fragment_B(thr_mma.partition_B(sB))
            tCcC = thr_mma.partition_C(cute.make_identity_tensor((tm, tn)))
            acc = cute.make_rmem_tensor(tCcC.shape, Float32)
            out_frag = cute.make_rmem_tensor(tCcC.shape, BFloat16)
            atoms_m, atoms_n = cute.size(acc, mode=[1]), cute.size(acc, mode=[2])
            quad_lane = cute.arch.lane_idx() % 4
            lane_lo, lane_hi = (quad_lane & 1) != 0, (quad_lane & 2) != 0
            chunk = cute.make_rmem_tensor(4, Int32)
            col_blocks = cute.size(acc.shape[0][2])
            sa_r = cute.make_rmem_tensor((2, atoms_m), Float32)
            sb_r = cute.make_rmem_tensor((2, col_blocks, atoms_n), Float32)
            k_blocks = cute.size(tCrA, mode=[2])
            read = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, stages)
            release = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, stages)
            n8 = cute.assume(N, divby=8)  # 16-byte output rows (checked on the host)
            mC = cute.make_tensor(out_ptr, cute.make_layout((T, n8), stride=(n8, 1)))
            sa_t = cute.make_tensor(sa_ptr, cute.make_layout(T if rowwise else 1))
            sb_t = cute.make_tensor(sb_ptr, cute.make_layout(G * N if rowwise else G))
            scale = Float32(0.0)
            t = cluster_id + turn * clusters
            if turn > 0:  # the stages of the tile before this warpgroup's first one are the other's
                read, release = skip_tile(read, release, k_tiles)
            while t < total:
                g, row0, rows, n_t = locate(t, starts, offs, G, T, n_tiles, rank_m, rank_n, tm, cm, cn)
                # Scales first: their loads complete under the mainloop instead of stalling the epilogue.
                n0 = n_t * tn
                if cutlass.const_expr(rowwise):
                    for mi in cutlass.range_constexpr(atoms_m):
                        for v1 in cutlass.range_constexpr(2):
                            r = tCcC[(0, v1, 0), mi, 0][0]
                            sa_r[v1, mi] = Float32(0.0)
                            if r < rows:
                                sa_r[v1, mi] = sa_t[row0 + r]
                    for ni in cutlass.range_constexpr(atoms_n):
                        for b in cutlass.range_constexpr(col_blocks):
                            for v0 in cutlass.range_constexpr(2):
                                c = n0 + tCcC[(v0, 0, b), 0, ni][1]
                                sb_r[v0, b, ni] = Float32(0.0)
                                if c < N:
                                    sb_r[v0, b, ni] = sb_t[g * N + c]
                else:
                    scale = sa_t[0] * sb_t[g]
                # Ping-pong: a stage's full barrier is waited on by phase parity, so a warpgroup
                # may only wait for its tile's stages once the other has seen all of its own (else
                # it would take the other's completed phase for its own); the mainloops take turns.
                if cutlass.const_expr(pingpong):
                    if turn > 0 or t > cluster_id:
                        cute.arch.barrier(barrier_id=_TURN_BARRIER + turn, number_of_threads=256)
                # Mainloop: keep one wgmma batch in flight; release a stage once its batch retired.
                tiled_mma.set(warpgroup.Field.ACCUMULATE, False)
                warpgroup.fence()
                for kt in cutlass.range(k_tiles):
                    ab_pipe.consumer_wait(read)
                    for kb in cutlass.range_constexpr(k_blocks):
                        cute.gemm(tiled_mma, acc, tCrA[None, None, kb, read.index], tCrB[None, None, kb, read.index], acc)
                        tiled_mma.set(warpgroup.Field.ACCUMULATE, True)
                    warpgroup.commit_group()
                    read.advance()
                    if kt > 0:
                        warpgroup.wait_group(1)
                        ab_pipe.consumer_release(release)
                        release.advance()
                if cutlass.const_expr(pingpong):
                    if t + clusters < total:  # the other warpgroup has the next tile: its turn
                        cute.arch.barrier_arrive(barrier_id=_TURN_BARRIER + 1 - turn, number_of_threads=256)
                warpgroup.wait_group(0)
                if k_tiles > 0:
                    ab_pipe.consumer_release(release)
                    release.advance()

                # Epilogue: scale in fp32, round to bf16 once, store the rows and columns in range.
                # Fragment ((2 columns, 2 rows 8 apart, tn/8 column blocks), m atoms, n atoms): each
                # thread sees 2 rows and 2 * tn/8 columns per atom, so scales are loaded once per
                # row and column, and each column pair is one 4-byte store.
                if cutlass.const_expr(rowwise):
                    for mi in cutlass.range_constexpr(atoms_m):
                        for ni in cutlass.range_constexpr(atoms_n):
                            for b in cutlass.range_constexpr(col_blocks):
                                for v1 in cutlass.range_constexpr(2):
                                    for v0 in cutlass.range_constexpr(2):
                                        acc[(v0, v1, b), mi, ni] = acc[(v0, v1, b), mi, ni] * sa_r[v1, mi] * sb_r[v0, b, ni]
                else:
                    for i in cutlass.range_constexpr(cute.size(acc)):
                        acc[i] = acc[i] * scale
                out_frag.store(acc.load().to(BFloat16))
                gC = cute.local_tile(cute.domain_offset((row0, 0), mC), (tm, tn), (0, n_t))
                store_rows(out_frag, tCcC, gC, chunk, rows, n0, N, quad_lane, lane_lo, lane_hi)
                if cutlass.const_expr(pingpong):  # the next tile's stages belong to the other warpgroup
                    read, release = skip_tile(read, release, k_tiles)
                t = t + clusters * turns

    @cute.jit
    def host(
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
        clusters: Int32,
        stream: cuda.CUstream,
    ):
        k16 = cute.assume(K, divby=16)  # TMA: 16-byte global strides
        mA = cute.make_tensor(a_ptr, cute.make_layout((T, k16), stride=(k16, 1)))
        mB = cute.make_tensor(b_ptr, cute.make_layout((N, k16, G), stride=(k16, 1, N * k16)))
        a_layout = sm90_utils.make_smem_layout_a(LayoutEnum.ROW_MAJOR, tiler, Float8E4M3FN, stages)
        b_layout = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, tiler, Float8E4M3FN, stages)
        a_op = cpasync.CopyBulkTensorTileG2SMulticastOp() if cn > 1 else cpasync.CopyBulkTensorTileG2SOp()
        tma_atom_a, tma_a = cpasync.make_tiled_tma_atom(
            a_op, mA, cute.slice_(a_layout, (None, None, 0)), (tm, tk), num_multicast=cn)
        b_op = cpasync.CopyBulkTensorTileG2SMulticastOp() if cm > 1 else cpasync.CopyBulkTensorTileG2SOp()
        tma_atom_b, tma_b = cpasync.make_tiled_tma_atom(
            b_op, mB, cute.slice_(b_layout, (None, None, 0)), (tn, tk), num_multicast=cm)
        tiled_mma = sm90_utils.make_trivial_tiled_mma(
            Float8E4M3FN, Float8E4M3FN, cute.nvgpu.OperandMajorMode.K, cute.nvgpu.OperandMajorMode.K, Float32,
            (tile_wgs, 1, 1), tiler_mn=(64, tn))
        kernel(tma_atom_a, tma_a, tma_atom_b, tma_b, tiled_mma, a_layout, b_layout,
               out_ptr, offs_ptr, sa_ptr, sb_ptr, T, N, G).launch(
            grid=[clusters * cm, cn, 1], block=[threads, 1, 1], cluster=(cm, cn, 1),
            min_blocks_per_mp=1, stream=stream, use_pdl=True)

    return host


def aot_args(config: WgmmaConfig, scale_mode: str):
    """Compile-time stand-ins for build(config, scale_mode)'s host function (no GPU)."""
    return (*pointers(), Int32(1), Int32(8), Int32(16), Int32(1), Int32(1), null_stream())


def compile_gemm(config: WgmmaConfig, scale_mode: str, target: str | None = None) -> CompiledKernel:
    """Compiled for (config, scale_mode), valid for any T, N, K, G (see kernels.compiled)."""
    return compile_kernel(build, aot_args, config, scale_mode, target, host_args=host_args)


def launch(compiled: CompiledKernel, q, out, resident_clusters: int, stream=None) -> None:
    """Launch on torch operands (a QuantizedOperands); no host sync, no allocation (graph-capturable).
    resident_clusters: how many of this config's clusters the device runs at once; the persistent grid
    stays within it (a cluster started late would run its whole share after the others)."""
    if compiled.variant != q.recipe:
        raise ValueError(f"kernel compiled for {compiled.variant} scales, operands are {q.recipe}")
    addresses, (t, n, k, g), device = operands.check(q, out)
    if g > MAX_GROUPS:
        raise ValueError(f"b has G={g} groups; gpuhil-cute-wgmma keeps tile starts for at most {MAX_GROUPS} in smem")
    if t == 0:
        return
    config = compiled.config
    cluster_rows, cluster_cols = config.tile.m * config.cluster_m, config.tile.n * config.cluster_n
    bound = (-(-t // cluster_rows) + g) * -(-n // cluster_cols)  # cluster tiles, at most
    clusters = max(1, min(resident_clusters, bound))
    compiled.launch(*addresses, t, n, k, g, clusters, raw_stream(device, stream))
