"""FlashInfer's B12x NVFP4 fused MoE (flashinfer-python's `b12x` package, the SM12x MoE path of seed 002)
as the nvfp4_moe_layer provider `flashinfer-b12x`, through its tensor API (b12x.moe.fused_moe:
plan_weights, prepare_weights, plan(Caps), bind, run) with the recipe "nvfp4": ModelOpt NVFP4 weights,
activations quantized to NVFP4 inside the kernel.

What it computes, per routed (token, expert e): x quantized with the input global scale (block scale
= amax * g / 6, as gpuhil's quantizer), gate and up = x @ W13_e^T * alpha1_e, m = SiLU(gate) * up in
fp32 stored bf16, m quantized with the intermediate global scale, y = m @ W2_e^T * alpha2_e;
out[t] = sum of weight(t, e) * y over t's experts, bf16. The routing is gpuhil's (reference.route:
softmax, top-k, renormalise): FlashInfer takes the top-k ids and weights.

gpuhil's operands (ops/nvfp4_moe/operands.py) as FlashInfer takes them:
- W13: its kernels read FC1 as [up; gate] (its "w13" order). gpuhil's is [gate; up] ("w31"), which
  FlashInfer would flip in the caller's own storage, so the halves are swapped in a copy here.
- block scales: FlashInfer's 128x4 swizzle, [E, pad128(rows) * pad4(K/16)] E4M3, which is exactly
  gpuhil's `swizzle_scales` layout; codes [E, N, K/2] uint8, low nibble first, as gpuhil's.
- global scales: FlashInfer's weight global scales are ModelOpt's weight_scale_2, the dequantize
  multiplier 1/g of gpuhil's per-expert g; its activation scales (a1/a2_gscale) are quantize
  multipliers, gpuhil's input and intermediate global scales as they are. It forms
  alpha_e = w_scale_e / a_gscale = 1 / (g_w * g_x), gpuhil's alpha.
Requirements come from FlashInfer's own support metadata (fused_moe.META.archs: sm120a and sm121a;
its is_supported also asks nvidia-cutlass-dsl >= 4.6.0, met by gpuhil's pin, and triton, which CUDA
builds of torch bring). The kernels are CuTe DSL programs: the DSL compiles them, not nvcc.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import torch

from ...gating import Requirements
from ...ops.nvfp4_moe import reference as R
from .. import FLASHINFER as LIBRARY
from ..provider import LibraryProvider


def fused_moe_meta():
    """FlashInfer's metadata of its fused-MoE op (plain data, no kernel import), None without the
    library."""
    if importlib.util.find_spec(LIBRARY.module) is None:
        return None
    from b12x.moe import fused_moe

    return fused_moe.META


class B12xMoeLayer(LibraryProvider):
    name, op, backend, library = "flashinfer-b12x", "nvfp4_moe_layer", "cute-dsl", LIBRARY
    refusals = (NotImplementedError,)
    refusal_text = r"\bunsupported\b|not supported"

    @property
    def needs(self) -> Requirements:
        """Its targets as FlashInfer states them (META.archs "sm121a" -> "sm_121a"); without the
        library only the library requirement is left, and it refuses naming the extra."""
        meta = fused_moe_meta()
        targets = frozenset(f"sm_{arch.removeprefix('sm')}" for arch in meta.archs) if meta else None
        return Requirements(targets=targets, needs_dsl=True)

    @property
    def requirements(self) -> Requirements:
        # CuTe DSL kernels: FlashInfer's nvcc JIT (its other kernels') takes no part.
        return dataclasses.replace(super().requirements, tools=frozenset())

    def launcher(self, caps, **options):
        from b12x.moe import fused_moe

        prepared = {}  # the last LayerInputs, its prepared experts and scratch: a replay only binds and runs

        def run(inputs, out=None):
            if prepared.get("inputs") is not inputs:
                prepared.clear()
                prepared.update(inputs=inputs, **prepare_layer(fused_moe, inputs))
            weights, ids = R.route(inputs.router_logits, inputs.top_k)
            binding = fused_moe.bind(prepared["plan"], scratch=prepared["scratch"], a=inputs.hidden,
                                     experts=prepared["experts"], topk_weights=weights, topk_ids=ids.to(torch.int32))
            y = fused_moe.run(binding=binding)
            return y.float() if out is None else out.copy_(y)
        return run


def flashinfer_operands(inputs) -> dict:
    """gpuhil's LayerInputs as the tensor arguments of FlashInfer's prepare_weights (see the module
    docstring): FC1 halves swapped into copies, scales swizzled, weight global scales inverted."""
    inter = inputs.w13.shape[1] // 2
    swap = lambda t: torch.cat([t[:, inter:], t[:, :inter]], dim=1).contiguous()  # noqa: E731
    return dict(w1_fp4=swap(inputs.w13.packed), w1_blockscale=R.swizzle_scales(swap(inputs.w13.scales)),
                w1_global_scale=1.0 / inputs.w13.global_scale, w2_fp4=inputs.w2.packed,
                w2_blockscale=R.swizzle_scales(inputs.w2.scales), w2_global_scale=1.0 / inputs.w2.global_scale,
                a1_gscale=inputs.input_global_scale, a2_gscale=inputs.intermediate_global_scale)


def weight_plan(fused_moe, inputs):
    """FlashInfer's weight plan for the layer: recipe nvfp4 on ModelOpt NVFP4 weights, SiLU, bf16."""
    experts, two_inter, hidden = inputs.w13.shape
    return fused_moe.plan_weights(quant_modes="nvfp4", source_format="modelopt_nvfp4", activation="silu",
                                  params_dtype=torch.bfloat16, num_experts=experts, hidden_size=hidden,
                                  intermediate_size=two_inter // 2, w13_layout="w13")


def prepare_layer(fused_moe, inputs) -> dict:
    """FlashInfer's prepared experts and a scratch plan sized for this batch."""
    plan = weight_plan(fused_moe, inputs)
    experts = fused_moe.prepare_weights(plan=plan, params_dtype=torch.bfloat16, **flashinfer_operands(inputs))
    scratch_plan = fused_moe.plan(fused_moe.Caps(max_tokens=inputs.hidden.shape[0], num_topk=inputs.top_k,
                                                 device=inputs.hidden.device, weight_plan=plan, quant_mode="nvfp4"))
    (spec,) = scratch_plan.scratch_specs()
    return {"experts": experts, "plan": scratch_plan, "scratch": torch.empty(spec.shape, dtype=spec.dtype, device=spec.device)}
