"""FlashInfer's NVFP4 quantize rule, emulated on the CPU and set against gpuhil's reference: which of
its differences are certain (they hold for every value its approximate reciprocal may return, so
they are known issues) and which only predicted (they depend on those bits), and that the suite's
cases the known issues hold really fail for any seed.

The emulation is the fast-math path of `cvt_warp_fp16_to_fp4` (FlashInfer 0.7.2.post1,
csrc/nv_internal/tensorrt_llm/kernels/quantization_utils.cuh:448-506, 670-683), step for step as
gpuhil/thirdparty/flashinfer/nvfp4_quantize.py writes it: fp32 multiplications that flush subnormal
inputs and results to zero (`mul.ftz`, the module is built with -use_fast_math), `rcp.approx.ftz.f32`
for the three reciprocals, E4M3 and E2M1 conversions that round as gpuhil's reference does (the same
cvt instructions). PTX bounds rcp.approx.f32 to one ulp and defines rcp(+-0) = +-inf; which value
within the bound the hardware returns is not documented, so every reciprocal is tried at each of its
candidates (the value below, nearest, above) and at both readings of the `a != 0` test under FTZ.
"""

import importlib.util
import itertools
from pathlib import Path

import pytest
import torch

from gpuhil.catalog import matrix
from gpuhil.formats.nvfp4 import BLOCK
from gpuhil.ops.nvfp4_moe import reference as R

F32 = torch.float32
FLT_MIN = 2.0**-126
MODES = list(itertools.product(("below", "nearest", "above"), repeat=3))  # rcp(6), rcp(g), rcp(d * rcp(g))


def ftz(t: torch.Tensor) -> torch.Tensor:
    """Subnormals to sign-preserving zero."""
    return torch.where(t.abs() < FLT_MIN, t * 0, t)


def mul_ftz(a, b) -> torch.Tensor:
    return ftz(ftz(torch.as_tensor(a, dtype=F32)) * ftz(torch.as_tensor(b, dtype=F32)))


def rcp(x, mode: str) -> torch.Tensor:
    """rcp.approx.ftz.f32 at one of its candidates: the fp32 value just below 1/x, the nearest, or just
    above (one ulp off even where 1/x is exact); exactly +-inf at +-0 and 0 at inf."""
    x = ftz(torch.as_tensor(x, dtype=F32))
    exact = 1.0 / x.double()
    nearest = exact.float()
    below = torch.where(nearest.double() < exact, nearest, torch.nextafter(nearest, torch.full_like(nearest, -float("inf"))))
    above = torch.where(nearest.double() > exact, nearest, torch.nextafter(nearest, torch.full_like(nearest, float("inf"))))
    pick = {"below": below, "nearest": nearest, "above": above}[mode]
    return ftz(torch.where(torch.isfinite(exact) & (exact != 0), pick, nearest))


def nan_ignoring_max(t: torch.Tensor) -> torch.Tensor:
    """__hmax2 over a lane: NaN only when every element is NaN."""
    m = torch.where(torch.isnan(t), torch.full_like(t, -float("inf")), t).amax(dim=-1)
    return torch.where(torch.isnan(t).all(dim=-1), torch.full_like(m, float("nan")), m)


def flashinfer_quantize(x: torch.Tensor, g: float, modes=MODES[0], zero_test_ftz: bool = True):
    """(packed codes, scale bytes) from FlashInfer's per-block rule for bf16 x [rows, K]."""
    blocks = x.float().reshape(*x.shape[:-1], -1, BLOCK)
    mag = blocks.abs()
    even, odd = nan_ignoring_max(mag[..., 0::2]), nan_ignoring_max(mag[..., 1::2])
    a = torch.where(even > odd, even, odd)  # cuda_max(T, T): a plain '>', false on NaN
    s = mul_ftz(g, mul_ftz(a, rcp(6.0, modes[0])))
    sf = torch.where(torch.isnan(s), torch.full_like(s, 0x7F, dtype=torch.uint8),
                     R.round_to_e4m3(s).view(torch.uint8))  # cvt ... e4m3x2: NaN -> 0x7F
    d = R.round_to_e4m3(s).float()
    nonzero = (ftz(a) if zero_test_ftz else a) != 0  # NaN != 0
    r = torch.where(nonzero, rcp(mul_ftz(d, rcp(g, modes[1])), modes[2]), torch.zeros_like(a))
    codes = R.encode_e2m1(mul_ftz(blocks, r.unsqueeze(-1)).reshape(x.shape))
    return R.pack_codes(codes), sf


def outcomes(x: torch.Tensor, g: float) -> list[bool]:
    """For every reciprocal candidate and reading of the zero test: does FlashInfer's output equal gpuhil's?"""
    want_packed, want_scales = R.quantize(x, torch.tensor([g]))
    want = (want_packed, want_scales.view(torch.uint8))
    return [all(torch.equal(got, w) for got, w in zip(flashinfer_quantize(x, g, modes, z), want))
            for modes in MODES for z in (True, False)]


def bf16(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=F32).to(torch.bfloat16)


def block(*head: float, fill: float = 0.5) -> list[float]:
    return [*head, *[fill] * (BLOCK - len(head))]


# -- the emulation agrees with gpuhil where both are exact, and splits where only the hardware decides


def test_away_from_ties_and_special_values_the_rules_agree_whatever_rcp_returns():
    x = bf16([block(6.0, 3.0, -1.0, 2.0, 4.0, -0.5, 1.5), block(-6.0, 0.0, -0.0, 0.5)])
    assert all(outcomes(x, 1.0)), "scale 1.0 and codes on the E2M1 grid must come out alike"


def test_an_exact_tie_under_a_scale_that_is_not_a_power_of_two_is_decided_by_rcp_approx():
    """Predicted, not shown: block max 9 gives scale 1.5 and 1.125 * (1 / 1.5) is the tie 0.75,
    which gpuhil rounds to even (1.0); FlashInfer's approximate reciprocal lands below or above it."""
    x = bf16([block(9.0, 1.125)])
    assert R.quantize(x, torch.tensor([1.0]))[1].float().item() == 1.5
    seen = set(outcomes(x, 1.0))
    assert seen == {True, False}, "the tie must split on the reciprocal's last bit"


# -- shown: certain differences (the known issues' rules)


SHOWN = {
    "nonzero block whose scale rounds to 0: r = rcp(0) = inf, codes 0x7/0xF":
        (bf16([block(1e-5, -3e-6, 0.0, fill=1e-6)]), 1.0),
    "every odd-position element NaN: scale 0x7F": (bf16([[1.0, float("nan")] * (BLOCK // 2)]), 1.0),
    "all-NaN block: scale 0x7F, gpuhil 0x00": (bf16([[float("nan")] * BLOCK]), 448.0),
    "bf16-subnormal block: FTZ scale 0 where g lifts it (g = 4e37, rcp(g) still normal)":
        (bf16([block(2.0**-130, -(2.0**-131), fill=2.0**-133)]), 4e37),
    "g > 2^126: rcp(g) flushes, so r = inf and exact zeros get 0x7": (bf16([block(3.0, 0.0, -1.0)]), 1e38),
}


@pytest.mark.parametrize("rule", SHOWN)
def test_shown_rules_differ_for_every_value_rcp_approx_may_return(rule):
    x, g = SHOWN[rule]
    assert not any(outcomes(x, g)), rule


def test_the_underflow_rule_writes_saturated_codes_where_gpuhil_writes_zeros():
    x, g = SHOWN["nonzero block whose scale rounds to 0: r = rcp(0) = inf, codes 0x7/0xF"]
    packed, scales = flashinfer_quantize(x, g)
    codes = R.unpack_codes(packed)[0]
    assert scales.tolist() == [[0]] and R.quantize(x, torch.tensor([g]))[1].view(torch.uint8).tolist() == [[0]]
    assert codes[:3].tolist() == [0x7, 0xF, 0x7]  # +6, -6, and 0 * inf = NaN -> +6
    assert R.unpack_codes(R.quantize(x, torch.tensor([g]))[0])[0, :3].tolist() == [0x0, 0x8, 0x0]


# -- the suite's cases the known issues hold fail for any seed


def load_suite():
    path = Path(__file__).parents[1] / "suites" / "nvfp4_moe" / "test_quantize.py"
    spec = importlib.util.spec_from_file_location("nvfp4_quantize_suite", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUITE = load_suite()
SEEDS = range(5)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_special_blocks_case_differs_for_every_rcp(seed):
    """Each global scale of test_special_blocks: under every reciprocal candidate some row differs."""
    for g in (1.0, 2.0**-7, 448.0, 1e38):  # test_every_provider_on_special_blocks' global scales
        per_row = [outcomes(x, g) for x in SUITE.special_blocks(torch.Generator().manual_seed(seed)).values()]
        assert not any(all(case) for case in zip(*per_row)), f"g={g}: every special row could pass"


def underflowing_blocks(x: torch.Tensor) -> int:
    """Blocks with a normal nonzero maximum whose gpuhil scale (recipe global scale) rounds to 0:
    FlashInfer's output differs there whatever rcp returns (its scale is 0 too and its codes are
    saturated, or its scale is not 0)."""
    blocks = x.float().reshape(x.shape[0], -1, BLOCK)
    a = torch.where(torch.isnan(blocks), 0, blocks.abs()).amax(dim=-1)
    scales = R.quantize(x, R.global_scale(x))[1].float()
    return int(((scales == 0) & (a >= FLT_MIN)).sum())


def test_a_block_whose_gpuhil_scale_underflows_differs_for_every_rcp():
    """The step from 'an underflowing block exists' to 'the case fails', on one drawn case in full."""
    x = SUITE.spread_rows(64, 2048, torch.Generator().manual_seed(0))
    assert underflowing_blocks(x) > 0
    assert not any(outcomes(x, R.global_scale(x).item()))


def test_the_known_issue_holds_the_special_blocks_case_on_sm100_and_newer_only():
    issues = {ki.id: ki for ki in matrix.load(Path(__file__).parents[1] / "hardware_matrix.yaml").known_issues}
    special = issues["flashinfer-fp4-quantize-nan-and-underflow-blocks"]
    assert (special.applies_to.suite, special.applies_to.test, special.applies_to.provider) == (
        "nvfp4_moe", "test_every_provider_on_special_blocks", "flashinfer")
    assert special.mode == "xfail"
    b200 = {"gpu_present": True, "arch_family": 10, "library:flashinfer-python": "0.7.2.post1"}
    assert special.predicate.holds(b200)
    assert not special.predicate.holds({**b200, "library:flashinfer-python": "0.7.3"})
    assert not special.predicate.holds({**b200, "arch_family": 9})
