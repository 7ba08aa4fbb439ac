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

from ..compiled import CompiledKernel, compile_kernel, gmem_ptr, null_stream, stream_for
from .spec import CLUSTER_SIZES, THREADS


def build(cluster_n: int, variant: str = "fp32"):
    """The @cute.jit host function ``(x_ptr, out_ptr, n, stream)``: sum n float32 values at x into
    out[0] with one cluster of ``cluster_n`` CTAs of THREADS threads."""
    if cluster_n not in CLUSTER_SIZES:
        raise ValueError(f"cluster_n must be one of {CLUSTER_SIZES}, got {cluster_n!r}")
    if variant != "fp32":
        raise ValueError(f"cluster_reduce sums float32 only, got {variant!r}")
    threads = THREADS
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
    def cluster_sum(x_ptr: cute.Pointer, out_ptr: cute.Pointer, n: Int32, stream: cuda.CUstream):
        x = cute.make_tensor(x_ptr, cute.make_layout(n))
        out = cute.make_tensor(out_ptr, cute.make_layout(1))
        cluster_sum_kernel(x, out).launch(
            grid=[cluster_n, 1, 1],
            block=[threads, 1, 1],
            cluster=[cluster_n, 1, 1],
            stream=stream,
        )

    return cluster_sum


def aot_args(cluster_n: int, variant: str = "fp32"):
    """Compile-time stand-ins for ``build(cluster_n)``'s host function (no GPU)."""
    return (gmem_ptr(Float32, 0, 4), gmem_ptr(Float32, 0, 4), Int32(1), null_stream())


def compile_reduce(cluster_n: int, target: str | None = None) -> CompiledKernel:
    return compile_kernel(build, aot_args, cluster_n, "fp32", target)


def run(x, cluster_n: int):
    """Sum a 1-D float32 CUDA tensor with one cluster; returns a (1,) tensor."""
    import torch

    if not (isinstance(x, torch.Tensor) and x.is_cuda and x.dtype == torch.float32 and x.dim() == 1):
        raise ValueError("x must be a 1-D float32 CUDA tensor")
    x = x.contiguous()
    out = torch.empty(1, dtype=torch.float32, device=x.device)
    compile_reduce(cluster_n)(gmem_ptr(Float32, x.data_ptr(), 4), gmem_ptr(Float32, out.data_ptr(), 4),
                              Int32(x.numel()), stream_for(x.device))
    return out
