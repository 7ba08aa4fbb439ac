"""Argmax problems: a batch of M rows over a vocabulary of N logits in one dtype."""

from __future__ import annotations

from dataclasses import dataclass

from ...kernels.argmax.spec import dtype_name


@dataclass(frozen=True)
class ArgmaxProblem:
    m: int
    n: int
    dtype: str  # "bf16", "fp16", "fp32"

    @classmethod
    def of(cls, logits) -> "ArgmaxProblem":
        return cls(logits.shape[0], logits.shape[1], dtype_name(logits.dtype))

    @property
    def name(self) -> str:
        return f"M{self.m}-N{self.n}-{self.dtype}"
