"""FP8 grouped GEMM perf set (only with --perf): one row per (MoE shape, provider) in the perf store.

Shapes: both GEMMs of each served MoE layer at decode and prefill, uniform routing, rowwise scales;
correctness is checked on the same operands before timing. Each row is set against its roofline (its
FLOPs at the dense FP8 rate, the bytes it must move once at the read-stream rate, or the launch floor,
whichever takes longest, measured in the same run); a math-bound one beside a dense FP8 GEMM of the
same FLOPs. At decode the host time per call without graphs is timed too, interleaved with
torch._scaled_grouped_mm's on the same operands.
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands, provider_cases
from gpuhil.ops import provider as op_provider
from gpuhil.ops.fp8_grouped_gemm.problems import layer_problems
from gpuhil.ops.fp8_grouped_gemm.reference import reference
from gpuhil.ops.fp8_grouped_gemm.roofline import roofline
from gpuhil.perf.ceilings import same_flops_gemm

SHAPES = [p for p in layer_problems() if p.name.endswith("uniform")]
PEER = "torch"  # whose host time per call ours is set beside


@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.parametrize("provider, problem", list(provider_cases(SHAPES)))
def test_grouped_gemm_perf(provider, problem, perf, rng, capabilities):
    q = make_operands(problem, "rowwise", rng)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch = provider.prepare(q, capabilities)
    launch(q, out)
    assert_close_per_group(out, reference(q), problem)
    host = "decode" in problem.name
    host_peer = None
    if host and provider.name != PEER:
        peer, peer_out = op_provider("fp8_grouped_gemm", PEER).prepare(q, capabilities), torch.empty_like(out)
        host_peer = lambda: peer(q, peer_out)  # noqa: E731
    perf.record([lambda: launch(q, out)], provider=provider.name, work=roofline(problem), launch=launch,
                host=host, host_peer=host_peer,
                same_work=same_flops_gemm("fp8", problem.total_tokens, problem.n, problem.k))
