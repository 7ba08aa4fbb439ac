"""FP8 grouped-GEMM problems: the served MoE layers' GEMMs at decode and prefill, uniform and skewed
routing, plus shapes built to break tiling (K not a multiple of 128, tiny N, odd token counts).
Every adversarial problem is in the default tier; of the layers, Qwen3-30B-A3B and the decode batches."""

from __future__ import annotations

from ..moe import GroupedGemmProblem, MoeLayer, grouped_problems, skewed, uniform

__all__ = ["LAYERS", "PHASES", "GroupedGemmProblem", "MoeLayer", "adversarial_problems", "layer_problems",
           "skewed", "uniform"]


LAYERS = (
    MoeLayer("qwen3-30b-a3b", experts=128, hidden=2048, inter=768, top_k=8),
    MoeLayer("mixtral-8x7b", experts=8, hidden=4096, inter=14336, top_k=2),
    MoeLayer("deepseek-v3", experts=256, hidden=7168, inter=2048, top_k=8),
)
PHASES = {"decode": 64, "prefill": 4096}  # tokens in the batch before routing (x top-k = routed)


def in_default_tier(layer: MoeLayer, phase: str) -> bool:
    """Qwen3-30B-A3B, and every layer at decode: what runs in about 30 seconds."""
    return layer.name == "qwen3-30b-a3b" or phase == "decode"


def layer_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    return grouped_problems(LAYERS, PHASES, seed, in_default_tier)


def adversarial_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    return [
        GroupedGemmProblem("k2000-not-a-multiple-of-128", 768, 2000, skewed(600, 8, seed)),
        GroupedGemmProblem("k1040-tiny-n16", 16, 1040, skewed(300, 8, seed + 1)),
        GroupedGemmProblem("n8-single-tokens", 8, 256, (1, 0, 1, 3, 0, 1, 1, 2)),
        GroupedGemmProblem("all-empty-but-one", 256, 512, (0, 0, 0, 77, 0, 0, 0, 0)),
        GroupedGemmProblem("odd-tokens-n-not-tile-multiple", 200, 512, (5, 131, 1, 63, 257, 0, 17, 9)),
    ]
