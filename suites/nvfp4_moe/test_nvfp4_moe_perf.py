"""NVFP4 MoE perf set (only with --perf): the whole layer and its gate_up grouped GEMM, torch and
gpuhil, at decode (64 tokens) and prefill (4096), uniform routing, every layer; each case is checked
before it is timed. A case that cannot fit the device's free memory (DeepSeek-V3's torch peer holds
its bf16 weights, ~28 GiB) is skipped by its provider's device-memory requirement with both byte
counts, or by the perf fixture's out-of-memory fallback where the estimate was short. Rows are set against their roofline (ops/nvfp4_moe/roofline.py: the FLOPs at the bf16 GEMM rate,
as the dequant kernels run bf16 tensor-core math on Hopper, the bytes moved once at the read-stream
rate, or the launch floor, whichever takes longest, measured in the same run); a math-bound grouped
GEMM beside a dense bf16 GEMM of the same FLOPs."""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group
from gpuhil.ops import providers_for
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.ops.nvfp4_moe.operands import random_grouped_operands, random_layer
from gpuhil.ops.nvfp4_moe.reference import grouped_reference
from gpuhil.ops.nvfp4_moe.problems import gemm_problems, layer_problems
from gpuhil.ops.nvfp4_moe.roofline import grouped_gemm_roofline, moe_layer_roofline
from gpuhil.perf.ceilings import same_flops_gemm
from gpuhil.testing import case

PHASES = ("decode64-uniform", "prefill-uniform")
LAYERS = [p for p in layer_problems() if p.name.endswith(PHASES)]
GEMMS = [p for p in gemm_problems() if "gate_up" in p.name and p.name.endswith(PHASES)]


@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", [case(p, q, p, q, id=f"{p.name}-{q.name}")
                                               for p in providers_for("nvfp4_moe_layer") for q in LAYERS])
def test_moe_layer_perf(provider, problem, perf, rng, capabilities):
    inputs = random_layer(problem, rng)
    out = torch.empty(problem.tokens, problem.layer.hidden, device="cuda")
    launch = provider.prepare(inputs, capabilities)
    launch(inputs, out)
    ref = R.moe_layer(inputs.hidden, inputs.router_logits, inputs.w13, inputs.w2, inputs.top_k,
                      input_global_scale=inputs.input_global_scale,
                      intermediate_global_scale=inputs.intermediate_global_scale)
    assert (out - ref).norm() / ref.norm() <= 2.0**-4  # test_moe_layer.py argues the bound
    perf.record([lambda: launch(inputs, out)], provider=provider.name, work=moe_layer_roofline(problem), launch=launch)


@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", [case(p, q, p, q, id=f"{p.name}-{q.name}")
                                               for p in providers_for("nvfp4_grouped_gemm") for q in GEMMS])
def test_grouped_gemm_perf(provider, problem, perf, rng, capabilities):
    ops = random_grouped_operands(problem, rng)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch = provider.prepare(ops, capabilities)
    launch(ops, out)
    assert_close_per_group(out, grouped_reference(ops, problem.offsets()), problem)
    perf.record([lambda: launch(ops, out)], provider=provider.name, work=grouped_gemm_roofline(problem), launch=launch,
                same_work=same_flops_gemm("bf16", problem.total_tokens, problem.n, problem.k))
