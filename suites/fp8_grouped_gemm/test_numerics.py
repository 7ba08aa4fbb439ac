"""FP8 grouped GEMM numerics, every provider, against the dequantize-and-multiply reference.

Why this grid: the three MoE layers users serve (Qwen3-30B-A3B, Mixtral-8x7B, DeepSeek-V3), both
GEMMs of each, at decode and prefill batch sizes, with token counts split uniformly and skewed the
way routers skew them (empty and single-token experts included); plus shapes that break tiling
(K not a multiple of 128, N of 8 and 16, odd token counts). Both scale recipes. Each problem's tier
is declared with it (gpuhil.ops.fp8_grouped_gemm.problems); `--tier full` adds the full-tier ones.
Tolerance: see fixtures/grouped_gemm.py (relative Frobenius error per expert <= 2^-7).
"""

import pytest
import torch

from fixtures.grouped_gemm import assert_close_per_group, make_operands, provider_cases
from gpuhil.ops.fp8_grouped_gemm.operands import RECIPES
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems, layer_problems
from gpuhil.ops.fp8_grouped_gemm.reference import reference


@pytest.mark.gpu
@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("provider, problem", list(provider_cases([*adversarial_problems(), *layer_problems()])))
def test_grouped_gemm_matches_reference(provider, problem, recipe, rng, capabilities):
    q = make_operands(problem, recipe, rng)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16, device="cuda")
    provider(q, capabilities, out=out)
    torch.cuda.synchronize()
    assert_close_per_group(out, reference(q), problem)
