"""An NVFP4 MoE layer built from grouped-GEMM and quantize launches (gpuhil's kernels or the torch
peer's): the dataflow a serving stack runs, with no host sync, so one CUDA graph captures it.

    route       softmax over experts (fp32), top-k, renormalise (Qwen3)
    permute     routed (token, slot) pairs sorted by expert -> offs [E] (int32, on the GPU)
    quantize    hidden -> NVFP4 (input global scale), rows gathered in expert order
    gate_up     grouped GEMM -> h [T*k, 2I] bf16
    activation  m = SiLU(gate) * up in fp32, stored bf16
    quantize    m -> NVFP4 (the calibrated intermediate global scale)
    down        grouped GEMM -> y [T*k, H] bf16
    combine     out[t] = sum over t's experts of weight * y, fp32
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import reference as R
from .operands import LayerInputs, Nvfp4GroupedOperands


@dataclass(frozen=True)
class LayerKernels:
    """The two launches a layer is built from: quantize(x, g, out) and grouped_gemm(ops, out)."""

    quantize: Callable
    grouped_gemm: Callable


def moe_layer(inputs: LayerInputs, kernels: LayerKernels, out=None) -> torch.Tensor:
    hidden, experts, k = inputs.hidden, inputs.w13.shape[0], inputs.top_k
    t, h = hidden.shape
    inter = inputs.w2.shape[2]
    weights, ids = R.route(inputs.router_logits, k)
    flat = ids.flatten()
    order = torch.argsort(flat, stable=True)
    token = order // k
    counts = torch.zeros(experts, dtype=torch.int32, device=hidden.device).scatter_add_(
        0, flat, torch.ones_like(flat, dtype=torch.int32))
    offs = torch.cumsum(counts, 0, dtype=torch.int32)

    x_packed, x_scales = kernels.quantize(hidden, inputs.input_global_scale)
    gate_up = kernels.grouped_gemm(Nvfp4GroupedOperands(
        x_packed[token], x_scales[token], inputs.w13.packed, inputs.w13.scales, offs,
        1.0 / (inputs.input_global_scale * inputs.w13.global_scale)))
    gate, up = gate_up[:, :inter].float(), gate_up[:, inter:].float()
    mid = (torch.nn.functional.silu(gate) * up).to(torch.bfloat16)
    m_packed, m_scales = kernels.quantize(mid, inputs.intermediate_global_scale)
    down = kernels.grouped_gemm(Nvfp4GroupedOperands(
        m_packed, m_scales, inputs.w2.packed, inputs.w2.scales, offs,
        1.0 / (inputs.intermediate_global_scale * inputs.w2.global_scale)))
    out = torch.zeros(t, h, dtype=torch.float32, device=hidden.device) if out is None else out.zero_()
    return out.index_add_(0, token, weights.flatten()[order, None] * down.float())
