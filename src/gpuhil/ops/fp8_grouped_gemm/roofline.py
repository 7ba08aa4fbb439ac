"""FP8 grouped-GEMM roofline: its FLOPs at the dense FP8 rate, or the bytes it must move once."""

from __future__ import annotations

from ...perf.work import Work
from ..moe import GroupedGemmProblem


def bytes_once(problem: GroupedGemmProblem) -> int:
    """Bytes a grouped GEMM must move at least once: fp8 activations and the weights of every expert
    that received a token, fp32 row/column scales, the bf16 output."""
    touched = sum(1 for t in problem.tokens if t)
    t, n, k = problem.total_tokens, problem.n, problem.k
    return t * k + touched * n * k + 4 * t + 4 * touched * n + 2 * t * n


def roofline(problem: GroupedGemmProblem) -> Work:
    return Work(bytes=bytes_once(problem), flops=problem.flops, math="fp8")
