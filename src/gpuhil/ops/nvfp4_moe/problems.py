"""NVFP4 MoE problems: the layers served in NVFP4, their grouped GEMMs, and whole-layer batches.

Why these: Qwen3-30B-A3B (128 experts, top-8, small hidden: decode-heavy, many tiny groups),
DeepSeek-V3/R1 (256 experts, top-8, hidden 7168: the largest weights), and a gpt-oss-120b-like layer
(128 experts, top-4, hidden = intermediate = 2880, not a power of two). Decode batches of 1, 7 (odd)
and 64 tokens, prefill of 4096; routing uniform, or skewed with empty and single-token experts.
Default tier: every adversarial and quantize problem; GEMMs of Qwen3 and of the decode batches but
DeepSeek-V3's; whole layers of Qwen3 and gpt-oss-120b at decode 64, uniform. The rest: full tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..moe import GroupedGemmProblem, MoeLayer, grouped_problems, skewed, uniform

__all__ = ["BLOCK_SCALE_CODES", "EDGE_HIDDEN", "LAYERS", "edge_layer_problems", "GroupedGemmProblem", "LayerProblem", "MoeLayer", "QuantizeProblem", "adversarial_gemm_problems",
           "gemm_problems", "layer_problems", "quantize_problems", "skewed", "uniform"]

LAYERS = (
    MoeLayer("qwen3-30b-a3b", experts=128, hidden=2048, inter=768, top_k=8),
    MoeLayer("deepseek-v3", experts=256, hidden=7168, inter=2048, top_k=8),
    MoeLayer("gpt-oss-120b", experts=128, hidden=2880, inter=2880, top_k=4),
)
BATCHES = {"decode1": 1, "decode7": 7, "decode64": 64, "prefill": 4096}  # tokens before routing


@dataclass(frozen=True)
class QuantizeProblem:
    name: str
    rows: int
    k: int


@dataclass(frozen=True)
class LayerProblem:
    name: str
    layer: MoeLayer
    tokens: int
    routing: str  # "uniform", "skewed" or "one-expert" (one expert in every token's top-k)
    tier: str = "default"  # "full": only in the full tier
    inputs: str = "random"  # "random", or "representable": hidden and weights exactly E2M1 x E4M3
    block_scales: str = "typical"  # of representable inputs: "typical", "tiny" or "huge" (BLOCK_SCALE_CODES)

    @property
    def flops(self) -> int:
        """Both GEMMs over every routed token (2 flops a multiply-add)."""
        h, i = self.layer.hidden, self.layer.inter
        return 2 * self.tokens * self.layer.top_k * (2 * i * h + h * i)

    def weight_bytes(self) -> int:
        """NVFP4 weights of the experts a batch can touch: half a byte an element plus one E4M3 scale
        per 16 (every expert once at prefill; at most tokens x top-k experts at decode)."""
        used = min(self.layer.experts, self.tokens * self.layer.top_k)
        return used * 3 * self.layer.hidden * self.layer.inter * 9 // 16


def gemm_in_default_tier(layer: MoeLayer, batch: str) -> bool:
    return layer.name == "qwen3-30b-a3b" or batch.startswith("decode") and layer.name != "deepseek-v3"


def gemm_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    """Both grouped GEMMs of every layer, at every batch, uniform and skewed."""
    return grouped_problems(LAYERS, BATCHES, seed, gemm_in_default_tier)


def adversarial_gemm_problems(seed: int = 0) -> list[GroupedGemmProblem]:
    """Shapes built to break tiling: K tails for k-tiles of 64, 128 and 256, a K shorter than one
    k-tile, N not a tile multiple, empty and single-token experts, odd token counts, more than 32
    experts (the schedule's scan takes several steps)."""
    return [
        GroupedGemmProblem("k64-shorter-than-a-k-tile-n8-single-tokens", 8, 64, (1, 0, 1, 3, 0, 1, 1, 2)),
        GroupedGemmProblem("k192-tail-64-or-one-partial-tile", 64, 192, skewed(300, 8, seed)),
        GroupedGemmProblem("k1088-n200-odd-tokens", 200, 1088, (5, 131, 1, 63, 257, 0, 17, 9)),
        GroupedGemmProblem("all-empty-but-one", 256, 512, (0, 0, 0, 77, 0, 0, 0, 0)),
        GroupedGemmProblem("g160-scan-of-five-steps", 128, 256, skewed(1000, 160, seed + 1)),
        GroupedGemmProblem("t1-one-token-last-expert", 512, 2048, (0, 1)),
    ]


def layer_in_default_tier(layer: MoeLayer, batch: str, routing: str) -> bool:
    return layer.name == "qwen3-30b-a3b" or (layer.name, batch, routing) == ("gpt-oss-120b", "decode64", "uniform")


def layer_problems() -> list[LayerProblem]:
    return [LayerProblem(f"{layer.name}-{phase}-{routing}", layer, batch, routing,
                         "default" if layer_in_default_tier(layer, phase, routing) else "full")
            for layer in LAYERS for phase, batch in BATCHES.items() for routing in ("uniform", "skewed")]


# E4M3 bit patterns of the block scales representable inputs draw: typical [2^-3, 15], tiny from the
# smallest subnormal 2^-9 through the smallest normals (2^-6 .. 1.875 * 2^-6), huge 256 .. 448 (the top).
BLOCK_SCALE_CODES = {"typical": (0x20, 0x58), "tiny": (0x01, 0x0F), "huge": (0x78, 0x7E)}
EDGE_HIDDEN = (2048, 4096, 7168)  # Qwen3-30B-A3B, Qwen3-235B-A22B / Llama-4, DeepSeek-V3


def edge_layer_problems() -> list[LayerProblem]:
    """Small layers (8 experts, intermediate 256, top-2, 64 tokens) whose inputs real trackers show
    breaking kernels, each in the default tier:
    - representable inputs at hidden 2048, 4096 and 7168: hidden states and weights exactly E2M1 x
      E4M3, so quantizing them is lossless and a wrong scale index or role is a gross error; K spans
      the widths served NVFP4 MoE layers have (more k-tiles per block row, larger scale strides);
    - one expert in every token's top-k: one group holds all 64 tokens (several M tiles), the others
      a few each: the offsets' extreme a uniform router never draws;
    - tiny and huge block scales: E4M3 subnormals and the smallest normals, and scales up to 448,
      where a scale decoded through the wrong format (or signed, or flushed) is off by orders of
      magnitude."""
    def small(hidden: int) -> MoeLayer:
        return MoeLayer(f"edge-h{hidden}", experts=8, hidden=hidden, inter=256, top_k=2)

    out = [LayerProblem(f"edge-h{h}-representable", small(h), 64, "uniform", inputs="representable") for h in EDGE_HIDDEN]
    out.append(LayerProblem("edge-h2048-one-expert-takes-every-token", small(2048), 64, "one-expert",
                            inputs="representable"))
    out += [LayerProblem(f"edge-h2048-{scales}-block-scales", small(2048), 64, "uniform", inputs="representable",
                         block_scales=scales) for scales in ("tiny", "huge")]
    return out


def quantize_problems() -> list[QuantizeProblem]:
    """Activations as the layers quantize them (hidden and intermediate widths, decode and prefill)."""
    return [QuantizeProblem(f"{layer.name}-{what}-{phase}", BATCHES[phase] * (1 if what == "hidden" else layer.top_k), k)
            for layer in LAYERS for what, k in (("hidden", layer.hidden), ("intermediate", layer.inter))
            for phase in ("decode64", "prefill")]
