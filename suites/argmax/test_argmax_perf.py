"""Argmax perf set (only with --perf): each case becomes a row of the perf store, judged later by
`gpuhil perf compare` against the SKU's baseline and by `gpuhil bench argmax` against the goals.
Correctness is checked before anything is timed.

Why these shapes: single-token decode (M=1, latency-bound), a decode batch (64) and a sampling batch
(256), at a small and the two most common large vocabularies. Each row is set against its roofline
(one read of the logits at the read-stream rate, or the launch floor where that takes longer, both
measured in the same run), beside a copy of the same bytes; at decode sizes the host time per call
without graphs is timed too, interleaved with torch.argmax's on the same logits. The canary provider
is gpuhil-cute with an optional planted slowdown, so the gate can be shown to catch a real regression.
"""

import pytest
import torch

from fixtures.canary import CANARY
from gpuhil.ops import provider as op_provider, providers_for
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.ops.argmax.roofline import roofline
from gpuhil.perf.ceilings import same_size_copy
from gpuhil.perf.timer import cold_input_sets
from gpuhil.testing import case

SHAPES = [(1, 32000), (1, 151936), (64, 151936), (256, 151936), (1, 262144), (64, 262144)]
PROVIDERS = [*providers_for("argmax"), CANARY]
HOST_MAX_M = 64  # decode batches: where a caller that does not capture graphs pays the host time per step
PEER = "torch"  # whose host time per call ours is set beside


@pytest.mark.perf
@pytest.mark.gpu
@pytest.mark.parametrize("m, n, provider", [
    case(p, ArgmaxProblem(m, n, "bf16"), m, n, p, id=f"{p.name}-M{m}-N{n}-bf16")
    for p in PROVIDERS for m, n in SHAPES])
def test_argmax_perf(m, n, provider, perf, capabilities):
    problem = ArgmaxProblem(m, n, "bf16")
    launch = provider.prepare(torch.empty(m, n, device="cuda", dtype=torch.bfloat16), capabilities)
    nbytes = roofline(problem).bytes
    # Enough input sets that together they exceed twice the L2: every timed call reads cold logits.
    sets = [torch.randn(m, n, device="cuda").to(torch.bfloat16) for _ in range(cold_input_sets(capabilities.l2_bytes, nbytes))]
    vals = torch.empty(m, device="cuda")
    idx = torch.full((m,), -1, dtype=torch.int64, device="cuda")
    launch(sets[0], (vals, idx))
    assert torch.equal(idx, torch.argmax(sets[0], dim=1))
    host_peer = None
    if m <= HOST_MAX_M and provider.name != PEER:
        peer = op_provider("argmax", PEER).prepare(sets[0], capabilities)
        peer_out = (torch.empty_like(vals), torch.empty_like(idx))
        host_peer = lambda: peer(sets[0], peer_out)  # noqa: E731
    perf.record([lambda x=x: launch(x, (vals, idx)) for x in sets], provider=provider.name, work=roofline(problem),
                launch=launch, host=m <= HOST_MAX_M, host_peer=host_peer, same_work=same_size_copy(sets))
