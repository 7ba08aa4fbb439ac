"""Demonstration kernel: a thread-block cluster sums a float32 vector.

Each of the ``cluster_n`` CTAs sums a strided slice into its own shared
memory, then every CTA of rank > 0 stores its partial straight into rank 0's
shared memory (``mapa`` + ``st.shared::cluster``).  A cluster barrier
(``barrier.cluster.arrive.release`` / ``wait.acquire``) orders those remote
stores before rank 0 reads them and writes the single result.
"""

from __future__ import annotations

import cuda.bindings.driver as cuda

import cutlass
import cutlass.cute as cute
from cutlass import Float32, Int32
from cutlass.memory import SmemAllocator

MAX_CLUSTER = 16


def _check(cluster_n: int, threads: int) -> None:
    if not isinstance(cluster_n, int) or not 1 <= cluster_n <= MAX_CLUSTER:
        raise ValueError(f"cluster_n must be an int in 1..{MAX_CLUSTER}, got {cluster_n!r}")
    if not isinstance(threads, int) or threads % 32 or not 32 <= threads <= 1024:
        raise ValueError(f"threads must be a multiple of 32 in 32..1024, got {threads!r}")


def build(cluster_n: int, threads: int = 128):
    """Return ``(host_fn, fake_args)`` for ``cluster_n`` CTAs of ``threads`` threads.

    ``host_fn(x, out, stream)``: x is a 1-D float32 tensor of dynamic length,
    out a float32 tensor of shape (1,).  ``fake_args()`` gives compile-time
    stand-ins (no GPU, no torch) for ``gpuhil.aot.compile_for_target``.
    """
    _check(cluster_n, threads)
    num_warps = threads // 32

    @cute.kernel
    def cluster_sum_kernel(x: cute.Tensor, out: cute.Tensor):
        tidx, _, _ = cute.arch.thread_idx()
        rank = cute.arch.block_idx_in_cluster()
        warp = cute.arch.warp_idx()
        lane = cute.arch.lane_idx()

        smem = SmemAllocator()
        warp_sums = smem.allocate_tensor(Float32, cute.make_layout(num_warps), byte_alignment=16)
        parts = smem.allocate_tensor(Float32, cute.make_layout(cluster_n), byte_alignment=16)

        n = cute.size(x, mode=[0])
        acc = Float32(0.0)
        for i in cutlass.range(rank * threads + tidx, n, cluster_n * threads):
            acc = acc + x[i]
        acc = cute.arch.warp_reduction_sum(acc)
        if lane == 0:
            warp_sums[warp] = acc
        cute.arch.sync_threads()

        if tidx == 0:
            part = Float32(0.0)
            for w in cutlass.range_constexpr(num_warps):
                part = part + warp_sums[w]
            if cutlass.const_expr(cluster_n == 1):
                out[0] = part
            else:
                # Remote store into rank 0's slot `rank` (mapa -> st.shared::cluster).
                remote = cute.arch.map_dsmem_ptr(parts.iterator + rank, 0)
                # nvvm.store / cute tensors reject the dsmem address space in 4.8.1.
                cute.arch.inline_ptx(
                    "st.shared::cluster.f32 [{$r0}], {$r1};", read_only_args=[remote, part]
                )

        if cutlass.const_expr(cluster_n > 1):
            # release/acquire cluster barrier: all remote stores land before
            # rank 0 reads, and no CTA exits while its smem may still be written.
            cute.arch.cluster_arrive()
            cute.arch.cluster_wait()
            if rank == 0 and tidx == 0:
                total = Float32(0.0)
                for r in cutlass.range_constexpr(cluster_n):
                    total = total + parts[r]
                out[0] = total

    @cute.jit
    def cluster_sum(x: cute.Tensor, out: cute.Tensor, stream: cuda.CUstream):
        cluster_sum_kernel(x, out).launch(
            grid=[cluster_n, 1, 1],
            block=[threads, 1, 1],
            cluster=[cluster_n, 1, 1],
            stream=stream,
        )

    def fake_args():
        n = cute.sym_int32(symbol="n")
        x = cute.runtime.make_fake_compact_tensor(Float32, (n,), assumed_align=4)
        out = cute.runtime.make_fake_compact_tensor(Float32, (1,), assumed_align=4)
        return (x, out, cuda.CUstream(0))

    return cluster_sum, fake_args


_RUN_CACHE: dict = {}


def run(x, cluster_n: int, threads: int = 128):
    """Sum a 1-D float32 CUDA tensor with one cluster; returns a (1,) tensor."""
    import torch
    from cutlass.cute.runtime import from_dlpack

    if not (isinstance(x, torch.Tensor) and x.is_cuda and x.dtype == torch.float32 and x.dim() == 1):
        raise ValueError("x must be a 1-D float32 CUDA tensor")
    x = x.contiguous()
    out = torch.empty(1, dtype=torch.float32, device=x.device)
    key = (cluster_n, threads, torch.cuda.get_device_capability(x.device))
    compiled = _RUN_CACHE.get(key)
    if compiled is None:
        fn, fake_args = build(cluster_n, threads)
        compiled = cute.compile(fn, *fake_args())
        _RUN_CACHE[key] = compiled
    stream = cuda.CUstream(torch.cuda.current_stream(x.device).cuda_stream)
    xt = from_dlpack(x, assumed_align=4).mark_compact_shape_dynamic(mode=0)  # matches fake (n,):(1)
    compiled(xt, from_dlpack(out, assumed_align=4), stream)
    return out
