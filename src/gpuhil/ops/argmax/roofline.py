"""Argmax roofline: one read of the logits (the M values and indices written are a rounding error)."""

from __future__ import annotations

from ...kernels.argmax.spec import ELEM_BYTES
from ...perf.work import Work
from .problems import ArgmaxProblem


def roofline(problem: ArgmaxProblem) -> Work:
    return Work(bytes=problem.m * problem.n * ELEM_BYTES[problem.dtype])
