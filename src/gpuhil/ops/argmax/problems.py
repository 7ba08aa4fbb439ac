"""Argmax problems: a batch of M rows over a vocabulary of N logits in one dtype.

The grid: M from single-token decode (1, 2, 7: odd sizes catch row indexing) to batched sampling
(64, 256, 1024) x the vocab sizes of served models x every dtype. The default tier keeps every N at
the decode/batch extremes in bf16 and one N in each other dtype; a forced split (nine per problem)
keeps three N at M 1 and 64 in bf16. `--tier full` runs the whole product.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ...kernels.argmax.spec import DTYPES, VOCAB_SIZES, dtype_name

BATCHES = (1, 2, 7, 64, 256, 1024)


@dataclass(frozen=True)
class ArgmaxProblem:
    m: int
    n: int
    dtype: str  # "bf16", "fp16", "fp32"
    tier: str = "default"  # "full": only in the full tier

    @classmethod
    def of(cls, logits) -> "ArgmaxProblem":
        return cls(logits.shape[0], logits.shape[1], dtype_name(logits.dtype))

    @property
    def name(self) -> str:
        return f"M{self.m}-N{self.n}-{self.dtype}"


def _in_default_tier(m: int, n: int, dtype: str, forced: bool) -> bool:
    if forced:
        return dtype == "bf16" and n in (32768, 151936, 262144) and m in (1, 64)
    if dtype == "bf16":
        return m in (1, 7, 256)
    return n == 151936 and m in (1, 64)


def problems(forced: bool = False) -> list[ArgmaxProblem]:
    """Every M x N x dtype, tiered for dispatch's own choice, or for a forced split (`forced`)."""
    return [ArgmaxProblem(m, n, dtype, "default" if _in_default_tier(m, n, dtype, forced) else "full")
            for m, n, dtype in itertools.product(BATCHES, VOCAB_SIZES, DTYPES)]
