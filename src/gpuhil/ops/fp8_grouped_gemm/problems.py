"""Grouped-GEMM problems as MoE layers produce them: one description feeds every provider and the reference.

A problem is G experts, each multiplying its routed tokens [m_g, K] by its weight [N, K]^T. Token
counts come from real layers (routed tokens = tokens x top-k) split uniformly or skewed the way
routers skew them (Zipf-like, with empty and single-token experts), plus shapes built to break
tiling (K not a multiple of 128, tiny N).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class GroupedGemmProblem:
    name: str
    n: int
    k: int
    tokens: tuple[int, ...]  # per expert; sum is the routed token count T

    @property
    def groups(self) -> int:
        return len(self.tokens)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens)

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


LAYERS = (
    MoeLayer("qwen3-30b-a3b", experts=128, hidden=2048, inter=768, top_k=8),
    MoeLayer("mixtral-8x7b", experts=8, hidden=4096, inter=14336, top_k=2),
    MoeLayer("deepseek-v3", experts=256, hidden=7168, inter=2048, top_k=8),
)
PHASES = {"decode": 64, "prefill": 4096}  # tokens in the batch before routing (x top-k = routed)


def layer_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    out = []
    for layer in LAYERS:
        for gemm, (n, k) in layer.gemms().items():
            for phase, batch in PHASES.items():
                routed = batch * layer.top_k
                for split in ("uniform", "skewed"):
                    tokens = uniform(routed, layer.experts) if split == "uniform" else skewed(routed, layer.experts, seed)
                    out.append(GroupedGemmProblem(f"{layer.name}-{gemm}-{phase}-{split}", n, k, tokens))
    return out


def adversarial_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    return [
        GroupedGemmProblem("k2000-not-a-multiple-of-128", 768, 2000, skewed(600, 8, seed)),
        GroupedGemmProblem("k1040-tiny-n16", 16, 1040, skewed(300, 8, seed + 1)),
        GroupedGemmProblem("n8-single-tokens", 8, 256, (1, 0, 1, 3, 0, 1, 1, 2)),
        GroupedGemmProblem("all-empty-but-one", 256, 512, (0, 0, 0, 77, 0, 0, 0, 0)),
        GroupedGemmProblem("odd-tokens-n-not-tile-multiple", 200, 512, (5, 131, 1, 63, 257, 0, 17, 9)),
    ]
