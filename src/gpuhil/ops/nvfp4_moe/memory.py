"""Device memory a case of the NVFP4 ops holds at its peak, from the problem's shapes alone: its
operands and what the provider allocates while it runs. A provider's plan states it as a
`device_memory_bytes` requirement, so the gate skips a case that cannot fit with the bytes it needs
and the bytes free, instead of the case dying in torch.OutOfMemoryError.

Counted as torch allocates them (tests/test_nvfp4_memory.py checks each estimate against the peak of
live tensors measured on the CPU): the reference's dequantization keeps up to 28.25 bytes of
temporaries per element of a slice in the peer's loop (~7 fp32 copies: unpacked codes, the decode's
intermediates, the scaled product, its bf16 copy) and its quantizer 16.8 per element quantized. The torch peer dequantizes a slice at a time
(torch_peer.SLICE_ELEMENTS); gpuhil's kernels allocate nothing but their outputs.
"""

from __future__ import annotations

from ..moe import GroupedGemmProblem
from . import torch_peer
from .problems import LayerProblem

DEQUANTIZE_TEMP_BYTES = 29  # per element of a slice through R.block_products (measured: 28.25)
QUANTIZE_TEMP_BYTES = 17  # per element of R.quantize (measured: 16.8)
SLACK = 1.05  # the caching allocator's rounding of blocks, a library's workspace


def nvfp4_bytes(rows: int, k: int) -> int:
    """Half a byte of code an element, one E4M3 scale per 16."""
    return rows * k // 2 + rows * k // 16


def gemm_operand_bytes(rows: int, n: int, k: int, groups: int) -> int:
    """Nvfp4GroupedOperands (A, B, offs, alpha) and the bf16 output."""
    return nvfp4_bytes(rows, k) + groups * nvfp4_bytes(n, k) + 8 * groups + 2 * rows * n


def torch_gemm_workspace(rows: int, n: int, k: int, groups: int) -> int:
    """The torch peer: A and B dequantized to bf16, then either a slice's fp32 temporaries or the
    epilogue (the bf16 product, its fp32 copy scaled by the row's alpha, the bf16 result)."""
    dequantized = 2 * (rows + groups * n) * k
    slice_ = DEQUANTIZE_TEMP_BYTES * min(torch_peer.SLICE_ELEMENTS, max(rows, groups * n) * k)
    epilogue = 4 * rows + rows * n * (2 + 4 + 4 + 2)
    return dequantized + max(slice_, epilogue)


def grouped_gemm_bytes(problem: GroupedGemmProblem, *, peer: bool) -> int:
    """A grouped-GEMM case: its operands and output, with the torch peer's workspace where `peer`."""
    t, n, k, g = problem.total_tokens, problem.n, problem.k, problem.groups
    work = torch_gemm_workspace(t, n, k, g) if peer else 0
    return int(SLACK * (gemm_operand_bytes(t, n, k, g) + work))


def layer_input_bytes(problem: LayerProblem) -> int:
    """LayerInputs and the fp32 output: bf16 hidden, fp32 logits, both NVFP4 weight sets."""
    layer, t = problem.layer, problem.tokens
    e, h, i = layer.experts, layer.hidden, layer.inter
    weights = e * (nvfp4_bytes(2 * i, h) + nvfp4_bytes(h, i) + 8)
    return t * h * 2 + t * e * 4 + weights + 8 + t * h * 4


def layer_activation_bytes(problem: LayerProblem) -> int:
    """What layer.moe_layer allocates around its launches, all of it at once (an upper bound): the
    routing (softmax, top-k, the sort), both quantized activations and the gathered rows, both GEMM
    outputs, SiLU(gate) * up in fp32, and the combine's fp32 product."""
    layer, t = problem.layer, problem.tokens
    e, h, i, k = layer.experts, layer.hidden, layer.inter, layer.top_k
    tk = t * k
    routing = t * e * 4 * 2 + t * k * (4 + 8) * 2 + tk * 8 * 4 + e * 4 * 3
    quantized = nvfp4_bytes(t, h) + nvfp4_bytes(tk, h) + nvfp4_bytes(tk, i)
    gate_up = tk * 2 * i * 2 + tk * i * 4 * 4 + tk * i * 2
    down = tk * h * 2 + tk * 4 + tk * h * 4 * 2
    return routing + quantized + gate_up + down


def layer_bytes(problem: LayerProblem, *, peer: bool) -> int:
    """A whole-layer case: inputs, output and activations, with the torch peer's quantizer
    temporaries and the larger of its two GEMMs' workspaces (gate_up's is freed before down runs)."""
    total = layer_input_bytes(problem) + layer_activation_bytes(problem)
    if peer:
        layer, tk = problem.layer, problem.tokens * problem.layer.top_k
        h, i, e = layer.hidden, layer.inter, layer.experts
        total += QUANTIZE_TEMP_BYTES * max(problem.tokens * h, tk * i)
        total += max(torch_gemm_workspace(tk, 2 * i, h, e), torch_gemm_workspace(tk, h, i, e))
    return int(SLACK * total)
