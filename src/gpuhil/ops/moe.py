"""MoE shapes shared by the grouped-GEMM ops: a layer's experts, its two GEMMs, and the token counts
routers produce (uniform, or Zipf-skewed with empty and single-token experts).

A grouped-GEMM problem is G experts, each multiplying its routed tokens [m_g, K] by its weight
[N, K]^T; one description feeds every provider and the reference.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class GroupedGemmProblem:
    name: str
    n: int
    k: int
    tokens: tuple[int, ...]  # per expert; sum is the routed token count T
    tier: str = "default"  # "full": only in the full tier (`--tier full`, runners whose selection says so)

    @property
    def groups(self) -> int:
        return len(self.tokens)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)

    @property
    def tokens_per_group(self) -> float:
        """What the kernels' tile choice keys on: decode has a few rows per expert, prefill many."""
        return self.total_tokens / max(self.groups, 1)

    @property
    def flops(self) -> int:
        return 2 * self.total_tokens * self.n * self.k

    def offsets(self) -> list[int]:
        """Cumulative end offsets, as torch._scaled_grouped_mm takes them."""
        out, acc = [], 0
        for t in self.tokens:
            acc += t
            out.append(acc)
        return out

    def __str__(self) -> str:
        return self.name


def uniform(total: int, groups: int) -> tuple[int, ...]:
    base, extra = divmod(total, groups)
    return tuple(base + (1 if g < extra else 0) for g in range(groups))


def skewed(total: int, groups: int, seed: int, alpha: float = 1.2) -> tuple[int, ...]:
    """Zipf-like routing with at least one empty and one single-token expert (when groups >= 4)."""
    rnd = random.Random(seed)
    weights = [1.0 / (r + 1) ** alpha for r in range(groups)]
    rnd.shuffle(weights)
    if groups >= 4:
        weights[0], weights[1] = 0.0, 0.0  # expert 0 empty, expert 1 gets exactly one token below
    budget = total - (1 if groups >= 4 else 0)
    scale = budget / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[max(range(groups), key=lambda g: weights[g])] += budget - sum(counts)
    if groups >= 4:
        counts[1] = 1
    return tuple(counts)


@dataclass(frozen=True)
class MoeLayer:
    name: str
    experts: int
    hidden: int
    inter: int  # per-expert intermediate size
    top_k: int

    def gemms(self) -> dict[str, tuple[int, int]]:
        """(N, K) of the two GEMMs of an expert: gate+up fused, then down."""
        return {"gate_up": (2 * self.inter, self.hidden), "down": (self.hidden, self.inter)}


def grouped_problems(layers, batches: dict[str, int], seed: int = 0,
                     default_tier: Callable[[MoeLayer, str], bool] = lambda layer, batch: True) -> list[GroupedGemmProblem]:
    """Both grouped GEMMs of every layer at every batch (tokens before routing; x top-k = routed),
    routed uniformly and skewed: named <layer>-<gemm>-<batch>-<split>; in the default tier where
    `default_tier(layer, batch name)` holds, else in the full tier."""
    out = []
    for layer in layers:
        for gemm, (n, k) in layer.gemms().items():
            for phase, batch in batches.items():
                routed = batch * layer.top_k
                for split in ("uniform", "skewed"):
                    tokens = uniform(routed, layer.experts) if split == "uniform" else skewed(routed, layer.experts, seed)
                    tier = "default" if default_tier(layer, phase) else "full"
                    out.append(GroupedGemmProblem(f"{layer.name}-{gemm}-{phase}-{split}", n, k, tokens, tier))
    return out
