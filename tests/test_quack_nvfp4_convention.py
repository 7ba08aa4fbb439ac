"""quack's NVFP4 quantizer against ours, on the CPU and without quack: its rule restated from its
source (quack-kernels 0.6.5, quack/blockscaled/quantize.py:421-441, `to_nvfp4` given a per-tensor
scale) beside gpuhil's reference, on crafted blocks. They back the `quack` nvfp4_quantize provider's
conversion (our global scale g becomes quack's divisor 1/g) and reproduce each difference that
hardware_matrix.yaml holds as a known issue of that provider:

- where the conversion is exact: g a power of two, block scales normal E4M3 (>= 2^-6), no NaN;
- quack-nvfp4-quantize-floor-and-nan: scales below 2^-6 (zero blocks included) become 2^-6, and a
  NaN makes its block's scale NaN;
- quack-nvfp4-quantize-rounding-order: with any other g, 1/(1/g) != g and the block's values land
  on the other side of an E2M1 tie.
"""

import torch

from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.thirdparty.quack.nvfp4_quantize import per_tensor_scale

E4M3_SMALLEST_NORMAL = 2.0**-6  # torch.finfo(torch.float8_e4m3fn).tiny: quack's E4M3_EPS


def quack_rule(x: torch.Tensor, pts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes [..., K] uint8, scale bytes [..., K/16]) as quack computes them: block scale
    E4M3(clamp((amax / 6) / pts, 2^-6, 448)) with amax = max |x| (NaN propagates), multiplier
    (1 / pts) / scale, codes E2M1-rounded after clamping to +-6 (finite values: our encoder rounds
    them alike, sign included)."""
    blocks = x.float().reshape(*x.shape[:-1], -1, 16)
    amax = blocks.abs().amax(dim=-1)
    scale = torch.clamp(amax / 6.0 / pts, min=E4M3_SMALLEST_NORMAL, max=448.0).to(torch.float8_e4m3fn)
    recip = (1.0 / pts) / scale.float()
    values = torch.clamp(blocks * recip[..., None], -6.0, 6.0)
    return R.encode_e2m1(values).reshape(x.shape), scale.view(torch.uint8)


def ours(x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    packed, scales = R.quantize(x, g)
    return R.unpack_codes(packed), scales.view(torch.uint8)


def block(*head: float) -> torch.Tensor:
    """One 16-element bf16 block starting with `head`, zeros after."""
    x = torch.zeros(1, 16)
    x[0, : len(head)] = torch.tensor(head)
    return x.to(torch.bfloat16)


def test_our_global_scale_becomes_quacks_divisor():
    g = torch.tensor([2688.0 / 7.25])
    assert per_tensor_scale(g).shape == ()
    assert per_tensor_scale(g).item() == (1.0 / g).item()


def test_a_power_of_two_global_scale_gives_our_bits_where_scales_are_normal():
    """Rows spread over two decades, bf16 values, g = 2^e around the recipe's 2688 / amax (every
    block scale a normal E4M3; at 2^3 times the recipe many saturate at 448): quack's division by
    1/g and its (a / 6) / pts are then exact rescalings, so its codes and scales are ours."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 256, generator=gen) * 10 ** (2 * torch.rand(64, 1, generator=gen) - 1)).to(torch.bfloat16)
    recipe_exponent = int(torch.floor(torch.log2(R.global_scale(x))).item())
    for e in (recipe_exponent + 3, recipe_exponent, recipe_exponent - 2, recipe_exponent - 4):
        g = torch.tensor([2.0**e])
        want_codes, want_scales = ours(x, g)
        assert (want_scales.view(torch.float8_e4m3fn).float() >= E4M3_SMALLEST_NORMAL).all()
        codes, scales = quack_rule(x, per_tensor_scale(g))
        assert torch.equal(scales, want_scales), e
        assert torch.equal(codes, want_codes), e


def test_quack_floors_a_zero_or_subnormal_block_scale_at_2_pow_minus_6():
    g = torch.ones(1)
    for x, want_scale in ((block(0.0, -0.0), 0x00),  # zero block: scale 0 (ours) vs 2^-6 (0x08)
                          (block(6 * 2.0**-8, 2.0**-9), 0x02)):  # scale 2^-8, an E4M3 subnormal
        want_codes, want_scales = ours(x, g)
        codes, scales = quack_rule(x, per_tensor_scale(g))
        assert want_scales.item() == want_scale and scales.item() == 0x08
    # the subnormal block's codes are rescaled by the floored scale: 6 * 2^-8 becomes 1.5, not 6
    assert want_codes[0, 0].item() == 0x7 and codes[0, 0].item() == 0x3


def test_a_nan_makes_quacks_block_scale_nan():
    g = torch.ones(1)
    x = block(3.0, float("nan"), -1.5)
    want_codes, want_scales = ours(x, g)
    _, scales = quack_rule(x, per_tensor_scale(g))
    assert want_scales.item() == 0x30  # E4M3(3 / 6): the NaN is ignored by our block maximum...
    assert want_codes[0, :3].tolist() == [0x7, 0x7, 0xD]  # ...and encodes as +6 (-1.5 / 0.5 = -3: 0xD)
    assert scales.item() == 0x7F  # NaN: every code of quack's block is then meaningless


def test_another_global_scale_rounds_a_tie_the_other_way():
    """g = 448: the block [6, 0.75] gets scale 448 in both, and ours multiplies by g / 448 = 1, an
    exact tie at 0.75 rounding to even (1.0, code 2); quack multiplies by (1 / fl(1/448)) / 448,
    which is 1 - 2^-24, and rounds 0.75 down to 0.5 (code 1)."""
    g = torch.tensor([448.0])
    assert (1.0 / per_tensor_scale(g)).item() != g.item()
    x = block(6.0, 0.75)
    want_codes, want_scales = ours(x, g)
    codes, scales = quack_rule(x, per_tensor_scale(g))
    assert scales.item() == want_scales.item() == 0x7E
    assert want_codes[0, 1].item() == 0x2 and codes[0, 1].item() == 0x1
