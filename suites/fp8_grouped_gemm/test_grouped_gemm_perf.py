"""FP8 grouped GEMM perf set (only with --perf): one row per (MoE shape, provider) in the perf store.

Shapes: the gate_up GEMM of each served MoE layer at decode and prefill, uniform routing, rowwise
scales; correctness is checked on the same operands before timing.
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands, provider_cases
from gpuhil.ops.fp8_grouped_gemm.problems import layer_problems
from gpuhil.ops.fp8_grouped_gemm.reference import reference

SHAPES = [p for p in layer_problems() if "gate_up" in p.name and p.name.endswith("uniform")]


@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", list(provider_cases(SHAPES)))
def test_grouped_gemm_perf(provider, problem, perf, rng, capabilities):
    q = make_operands(problem, "rowwise", rng)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch = provider.prepare(q, capabilities)
    launch(q, out)
    assert_close_per_group(out, reference(q), problem)
    perf.record([lambda: launch(q, out)], provider=provider.name, flops=problem.flops, flops_kind="fp8")
