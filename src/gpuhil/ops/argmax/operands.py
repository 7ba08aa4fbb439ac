"""Argmax operands: logits [M, N] in the problem's dtype (a plain tensor, no operand type), drawn fresh
per case from the test's seeded generator so a failure replays."""

from __future__ import annotations

import torch

TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def random_logits(problem, rng: torch.Generator) -> torch.Tensor:
    """Normal logits of std 4 (ties and near-ties are rare, exact ones come from test_special_values)."""
    return (torch.randn(problem.m, problem.n, generator=rng) * 4).to(TORCH_DTYPES[problem.dtype]).cuda()
