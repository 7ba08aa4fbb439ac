"""The host-side operand check both NVFP4 grouped-GEMM kernels launch through (CPU: no GPU needed).

A wrong operand must be a ValueError naming it before any launch, never a fault inside the kernel.
Each case breaks exactly one thing of an otherwise valid operand set.
"""

import dataclasses

import pytest
import torch

from gpuhil.kernels.nvfp4_grouped_gemm.operands import check
from gpuhil.ops.nvfp4_moe.operands import Nvfp4GroupedOperands

T, N, K, G = 5, 16, 128, 3


def valid():
    ops = Nvfp4GroupedOperands(
        a=torch.zeros(T, K // 2, dtype=torch.uint8),
        a_scale=torch.zeros(T, K // 16, dtype=torch.float8_e4m3fn),
        b=torch.zeros(G, N, K // 2, dtype=torch.uint8),
        b_scale=torch.zeros(G, N, K // 16, dtype=torch.float8_e4m3fn),
        offs=torch.tensor([2, 2, 5], dtype=torch.int32),
        alpha=torch.ones(G, dtype=torch.float32),
    )
    return ops, torch.empty(T, N, dtype=torch.bfloat16)


BROKEN = {
    "a as int8": ("a", lambda o: o.a.view(torch.int8), "a must be uint8"),
    "b as 2-D": ("b", lambda o: o.b.reshape(G * N, K // 2), "b must be 3-D"),
    "b's K differs": ("b", lambda o: torch.zeros(G, N, K // 2 + 8, dtype=torch.uint8), "b's packed K"),
    "K not a multiple of 64": (None, None, "K must be a positive multiple of 64"),
    "a_scale as float32": ("a_scale", lambda o: o.a_scale.float(), "a_scale must be float8_e4m3fn"),
    "a_scale for K/32 blocks": ("a_scale", lambda o: o.a_scale[:, : K // 32], "a_scale must have shape"),
    "b_scale swizzled shape": ("b_scale", lambda o: o.b_scale.reshape(G, N * K // 16 // 4, 4), "b_scale must have shape"),
    "offs as int64": ("offs", lambda o: o.offs.long(), "offs must be int32"),
    "alpha for one expert": ("alpha", lambda o: o.alpha[:1], "alpha must have shape"),
    "a not contiguous": ("a", lambda o: torch.zeros(K // 2, T, dtype=torch.uint8).t(), "a must be contiguous"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_operand_is_named(case):
    field, breaker, message = BROKEN[case]
    ops, out = valid()
    if field is None:  # K = 96: every K-sized operand consistent, but not whole 64-element rows
        ops = Nvfp4GroupedOperands(torch.zeros(T, 48, dtype=torch.uint8), torch.zeros(T, 6, dtype=torch.float8_e4m3fn),
                                   torch.zeros(G, N, 48, dtype=torch.uint8),
                                   torch.zeros(G, N, 6, dtype=torch.float8_e4m3fn), ops.offs, ops.alpha)
    else:
        ops = dataclasses.replace(ops, **{field: breaker(ops)})
    with pytest.raises(ValueError, match=message):
        check(ops, out)


def test_output_shape_and_dtype_are_checked():
    ops, _ = valid()
    with pytest.raises(ValueError, match="out must be bfloat16"):
        check(ops, torch.empty(T, N, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"out must have shape \[5, 16\]"):
        check(ops, torch.empty(T, N + 8, dtype=torch.bfloat16))


def test_host_tensors_are_refused_by_name():
    """Everything else valid: the first operand that is not on the GPU is named."""
    ops, out = valid()
    with pytest.raises(ValueError, match="a must be a CUDA tensor"):
        check(ops, out)
