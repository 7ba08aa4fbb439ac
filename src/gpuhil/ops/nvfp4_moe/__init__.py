"""NVFP4 MoE: the format's fp32 reference, quantize and grouped-GEMM providers, a whole MoE layer
built from them, problems, the torch peer and the rooflines. Three ops live here, one Op record each
(OPS): nvfp4_quantize, nvfp4_grouped_gemm and nvfp4_moe_layer, all tested by suites/nvfp4_moe."""

from __future__ import annotations

from ...kernels.nvfp4_grouped_gemm import spec as gemm_spec
from ...kernels.nvfp4_grouped_gemm import spec_wgmma as gemm_wgmma_spec
from ...kernels.nvfp4_quant import spec as quant_spec
from ..op import Op
from . import providers as P
from . import reference as R
from .problems import adversarial_gemm_problems, gemm_problems, layer_problems, quantize_problems
from .roofline import grouped_gemm_roofline, moe_layer_roofline


def gemm_gate_rows(caps):
    """The grouped-GEMM kernels' configs for a device (the wgmma kernel's too, which dispatch does not
    pick yet, so its `chosen_for` is empty). Each row names the MoE problems whose
    dispatch picks it there (`chosen_for`); where seed 002's gate sends an SM12x part to the dequant
    kernel, every native row carries the fallback's warning (`fallback`)."""
    chosen: dict[tuple, list[str]] = {}
    fallback = None
    for p in gemm_problems():
        if p.name.endswith("uniform"):
            choice = gemm_spec.kernel_choice(p.n, p.tokens_per_group, caps)
            chosen.setdefault((choice.config.kernel, choice.config.tile.name), []).append(p.name.removesuffix("-uniform"))
            fallback = fallback or choice.warning()
    for row in [*gemm_spec.configs(caps), *gemm_wgmma_spec.configs(caps)]:
        row.details["chosen_for"] = chosen.get((row.details["variant"], row.details["tile"]), [])
        if fallback and row.details["variant"] == gemm_spec.NATIVE:
            row.details["fallback"] = fallback
        yield row


def all_gemm_problems():
    return [*adversarial_gemm_problems(), *gemm_problems()]


OPS = (
    Op("nvfp4_quantize", "nvfp4_moe", quantize_problems, R.quantize, (P.QUANTIZE_TORCH, P.QUANTIZE_CUTE),
       gate_rows=quant_spec.configs),
    Op("nvfp4_grouped_gemm", "nvfp4_moe", all_gemm_problems, R.grouped_reference,
       (P.GEMM_TORCH, P.GEMM_DEQUANT, P.GEMM_NATIVE, P.GEMM_WGMMA), gate_rows=gemm_gate_rows, roofline=grouped_gemm_roofline),
    Op("nvfp4_moe_layer", "nvfp4_moe", layer_problems, R.moe_layer, (P.LAYER_TORCH, P.LAYER_CUTE), roofline=moe_layer_roofline),
)
