"""NVFP4 MoE rooflines: the FLOPs at the dense bf16 rate (the dequant kernels run bf16 tensor-core
math on Hopper), or the bytes moved once. NVFP4 is 9/16 byte an element: half a byte of code and one
E4M3 scale per 16 elements."""

from __future__ import annotations

from ...perf.work import Work
from ..moe import GroupedGemmProblem
from .problems import LayerProblem


def moe_layer_roofline(problem: LayerProblem) -> Work:
    """The experts' weights a batch can touch, the bf16 hidden states read and the fp32 output written."""
    t, h = problem.tokens, problem.layer.hidden
    return Work(bytes=problem.weight_bytes() + t * h * (2 + 4), flops=problem.flops, math="bf16")


def grouped_gemm_roofline(problem: GroupedGemmProblem) -> Work:
    """Every expert's NVFP4 weights, the NVFP4 activations read and the bf16 output written."""
    nbytes = problem.groups * problem.n * problem.k * 9 // 16 + problem.total_tokens * (problem.k * 9 // 16 + 2 * problem.n)
    return Work(bytes=nbytes, flops=problem.flops, math="bf16")
