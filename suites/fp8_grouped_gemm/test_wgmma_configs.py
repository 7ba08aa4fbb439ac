"""Every gpuhil-cute-wgmma config the gate rows list (tile x cluster x schedule), forced, computes the
reference result on this GPU: dispatch only picks some of them for the perf shapes, but a user may
force any, and another device's selector may pick the rest.

Why this grid: two problems that exercise what differs between configs. k2000 is a skewed split with a
K tail (tiles cross group boundaries, experts of many tiles next to tiny ones); odd-tokens has an
empty expert, single-token experts and N off every tile width. Between them, ping-pong CTAs end on
either warpgroup, clusters run with CTAs that have no rows (along M) or no columns (along N), and
a 2x2 cluster multicasts A and B at once. Both scale recipes.
Gating comes from each forced config's Requirements (a cluster skips where cluster launch is
absent, naming the probed attribute). Tolerance: fixtures/grouped_gemm.py.
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands
from gpuhil.kernels.fp8_grouped_gemm.spec_wgmma import all_configs
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
from gpuhil.ops.fp8_grouped_gemm.providers import WGMMA
from gpuhil.ops.fp8_grouped_gemm.operands import RECIPES
from gpuhil.ops.fp8_grouped_gemm.reference import reference
from gpuhil.testing import case

PROBLEMS = ("k2000-not-a-multiple-of-128", "odd-tokens-n-not-tile-multiple")


def cases():
    for problem in (p for p in adversarial_problems() if p.name in PROBLEMS):
        for key in all_configs():
            options = {"tile": key.tile, "cluster_m": key.cluster_m, "cluster_n": key.cluster_n,
                       "pingpong": key.pingpong}
            yield case(WGMMA, problem, problem, options, id=f"{key.label}-{problem.name}", **options)


@pytest.mark.gpu
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("problem, options", list(cases()))
def test_forced_wgmma_config_matches_reference(problem, options, recipe, rng, capabilities):
    q = make_operands(problem, recipe, rng)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    launch = WGMMA.prepare(q, capabilities, **options)
    cfg = launch.config
    assert (cfg.tile, cfg.cluster_m, cfg.cluster_n, cfg.pingpong) == \
        (options["tile"], options["cluster_m"], options["cluster_n"], options["pingpong"])
    launch(q, out)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(q), problem)
