"""A whole NVFP4 MoE layer on FlashInfer's CUTLASS fused MoE (provider `flashinfer-cutlass`):
`flashinfer.fused_moe.cutlass_fused_moe(hidden, ids, weights, w13, w2, torch.bfloat16, quant_scales)`
after gpuhil's routing, its bf16 output copied into gpuhil's fp32 [T, H].

What the call does (flashinfer/fused_moe/core.py:1277-1652, the binding in
csrc/fused_moe/cutlass_backend/flashinfer_cutlass_fused_moe_binding.cu): it permutes the routed
rows by expert, quantizes the bf16 hidden states to NVFP4 in-kernel with the FC1 activation global
scale (FlashInfer's rule, nvfp4_quantize.py), runs FC1, SwiGLU in fp32 on its bf16 output,
re-quantizes with the FC2 activation global scale, runs FC2 and sums each token's experts weighted
by the routing weights. Routing is the caller's: gpuhil's `route` (Qwen3: softmax, top-k,
renormalize) gives the expert ids (int32 here) and weights (fp32).

From gpuhil's LayerInputs:
- NVFP4 is selected by the weights' dtype: packed uint8 viewed as int64, 16 codes each
  (binding :132, 1612-1615; layouts.packed_as_int64).
- FC1 rows: FlashInfer reads the first I rows of a gated FC1 as the linear (up) input and the
  second I as the gate (cutlass_fused_moe_kernels.cuh:2429, 2505-2528); gpuhil stores gate then up,
  so codes and scales are swapped (layouts.up_then_gate).
- quant_scales, six tensors (binding :1456-1547): [FC1 activation global scale, FC1 weight block
  scales, FC1 dequant, FC2 activation global scale, FC2 weight block scales, FC2 dequant]. The
  activation globals are quantization multipliers like gpuhil's (a 0-d tensor means one for all
  experts, binding :1486, 1523); the weight block scales are each expert's 128x4-tiled e4m3 scales,
  [E, round_up(rows, 128), round_up(K/16, 4)] bytes viewed as int32 (binding :1493-1536; the same
  per-expert tiles as gpuhil's `swizzle_scales`, cutlass_fused_moe_kernels.cuh:1021-1033); the
  dequant scales are the per-expert GEMM alphas 1 / (activation global * weight global) (the
  epilogue's alpha, cutlass_fused_moe_kernels.cuh:4492-4499), as gpuhil's layer computes them.
The weights are converted once per weight set (layouts.ConvertedOnce). The finalize keeps the
library's default (use_fused_finalize=True: an atomic sum, not bitwise repeatable, core.py:1466-1470).

Requirements, from the library: the CUTLASS NVFP4 MoE backend's own table,
`CutlassNvfp4Config.supported(arch)` (archs 100, 103, 107, 110, 120, 121: fused_moe/api.py:541-543,
1477-1479) through support.py: no Hopper, whose CUTLASS MoE traits exclude FP4 weights. Shapes: H
and I multiples of 16 (16 codes per int64 along each GEMM's K). JIT: nvcc, and cuBLAS headers
from the toolkit (the module includes nv_internal's cudaUtils.h; toolkit.py).
"""

from __future__ import annotations

import torch

from ...formats.nvfp4 import BLOCK
from ...gating import Requirements
from ...ops.nvfp4_moe.reference import route
from .. import FLASHINFER as LIBRARY
from ..provider import LibraryProvider
from . import support, toolkit
from .layouts import ConvertedOnce, packed_as_int64, swizzled, up_then_gate


def fc1_weights(packed: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gpuhil's w13 ([E, 2I, H/2] codes, [E, 2I, H/16] scales, gate then up) -> FlashInfer's FC1."""
    return packed_as_int64(up_then_gate(packed)), block_scales(up_then_gate(scales))


def fc2_weights(packed: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return packed_as_int64(packed), block_scales(scales)


def block_scales(scales: torch.Tensor) -> torch.Tensor:
    """[E, rows, K/16] e4m3 linear -> [E, rows_pad, cols_pad / 4] int32 (4 tiled scale bytes each)."""
    return swizzled(scales).view(torch.uint8).contiguous().view(torch.int32)


class CutlassMoe(LibraryProvider):
    name, op, backend, library = "flashinfer-cutlass", "nvfp4_moe_layer", "cutlass-cpp", LIBRARY
    refusal_text = r"Invalid backend|NotImplementedError"

    @property
    def needs(self) -> Requirements:
        return Requirements(ccs=support.ccs("flashinfer.fused_moe", "CutlassNvfp4Config", "supported"))

    def unsupported(self, problem) -> str | None:
        bad = [f"{d}={v}" for d, v in (("H", problem.layer.hidden), ("I", problem.layer.inter)) if v % BLOCK]
        return f"FlashInfer's NVFP4 MoE packs 16 codes per int64 along K: {', '.join(bad)}" if bad else None

    def launcher(self, caps, **options):
        from flashinfer.fused_moe import cutlass_fused_moe

        toolkit.require_headers(toolkit.CUBLAS, "CUTLASS fused MoE")
        fc1, fc2 = ConvertedOnce(fc1_weights), ConvertedOnce(fc2_weights)

        def layer(inputs, out=None):
            w13, w2 = inputs.w13, inputs.w2
            g_in, g_mid = inputs.input_global_scale.reshape(()), inputs.intermediate_global_scale.reshape(())
            (w1, s1), (w2_codes, s2) = fc1(w13.packed, w13.scales), fc2(w2.packed, w2.scales)
            weights, ids = route(inputs.router_logits, inputs.top_k)
            quant_scales = [g_in, s1, (1.0 / (g_in * w13.global_scale)).float(),
                            g_mid, s2, (1.0 / (g_mid * w2.global_scale)).float()]
            y = torch.empty(inputs.hidden.shape, dtype=torch.bfloat16, device=inputs.hidden.device)
            cutlass_fused_moe(inputs.hidden, ids.to(torch.int32), weights, w1, w2_codes, torch.bfloat16, quant_scales,
                              output=y)  # written in place (core.py:1600-1611)
            return y.float() if out is None else out.copy_(y)
        return layer
