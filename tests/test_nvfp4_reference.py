"""The NVFP4 reference against independent computations: float64 value tables for the formats, a numpy
float32 re-implementation of the quantization sequence with nearest-value table searches for the
roundings, hand-derived swizzle offsets and a hand-derived MoE layer.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from gpuhil.formats import nvfp4 as F
from gpuhil.ops.nvfp4_moe import reference as R

E2M1_MAG = np.array(F.E2M1_MAGNITUDES)


def e4m3_value(byte: int) -> float:
    """Value of an E4M3 (fn) byte from its fields: bias 7, subnormals m * 2^-9, no inf, 0x7F/0xFF NaN."""
    sign = -1.0 if byte & 0x80 else 1.0
    e, m = (byte >> 3) & 0xF, byte & 0x7
    if e == 0xF and m == 0x7:
        return math.nan
    return sign * (m * 2.0**-9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7))


E4M3_POS = np.array([e4m3_value(b) for b in range(0x7F)])  # 0x00..0x7E: every finite value >= 0


def nearest_code(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of the nearest table value (table ascending), ties to the even index, beyond the top
    saturating to the top (round-to-nearest-even with satfinite, by search instead of bit tricks)."""
    x = np.asarray(x, dtype=np.float64)
    dist = np.abs(x[..., None] - table)
    best = dist.min(axis=-1, keepdims=True)
    tied = dist == best
    even = tied & (np.arange(len(table)) % 2 == 0)
    idx = np.where(even.any(-1), even.argmax(-1), tied.argmax(-1))
    return np.where(x >= table[-1], len(table) - 1, idx)


def oracle_e2m1(v: np.ndarray) -> np.ndarray:
    code = nearest_code(np.abs(v), E2M1_MAG) | (np.signbit(v).astype(np.int64) << 3)
    return np.where(np.isnan(v), 7, code)


def oracle_quantize(x: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray]:
    """The documented sequence in numpy float32 (each op one IEEE rounding), roundings by table search.
    x [rows, K] finite float32 -> (codes [rows, K], scale bytes [rows, K/16])."""
    f32 = np.float32
    blocks = x.astype(f32).reshape(x.shape[0], -1, 16)
    q = f32(g) / f32(6.0)
    amax = np.abs(blocks).max(-1)
    sf = nearest_code(amax * q, E4M3_POS)
    d = E4M3_POS[sf].astype(f32)
    with np.errstate(divide="ignore"):
        r = np.where(d == 0, f32(0), f32(g) / d).astype(f32)
    v = (blocks * r[..., None]).astype(f32)
    return oracle_e2m1(v).reshape(x.shape), sf


def codes_of(packed: torch.Tensor) -> np.ndarray:
    return R.unpack_codes(packed).numpy().astype(np.int64)


def f32(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


# ---------------------------------------------------------------------------
# format facts


def test_e2m1_values_and_sign_bit():
    vals = R.e2m1_values()
    assert vals[:8].tolist() == [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert torch.equal(vals[8:], -vals[:8]) and torch.signbit(vals[8]), "code 8 is -0.0: bit 3 is the sign"


def test_thresholds_are_the_midpoints_with_ties_to_the_even_code():
    derived = tuple(((lo + hi) / 2, k % 2 == 1) for k, (lo, hi) in enumerate(itertools.pairwise(E2M1_MAG)))
    assert F.E2M1_THRESHOLDS == derived  # a tie between codes k and k+1 goes up iff k+1 is even


def test_round_to_e4m3_matches_the_table_search_and_torch_on_a_dense_sweep():
    grid = np.concatenate([E4M3_POS, (E4M3_POS[1:] + E4M3_POS[:-1]) / 2])  # every value and every tie
    s = np.concatenate([grid, np.nextafter(grid.astype(np.float32), np.float32(np.inf)),
                        np.nextafter(grid.astype(np.float32), np.float32(0)),
                        np.geomspace(1e-6, 600, 20000), [448, 464, 464.01, 480, 1e30, np.inf]]).astype(np.float32)
    got = R.round_to_e4m3(torch.from_numpy(s)).view(torch.uint8).numpy()
    assert np.array_equal(got, nearest_code(s, E4M3_POS)), "RNE on the E4M3 grid, >= 448 saturating to 0x7E"
    within = s <= 448  # torch's own cast agrees where no saturation rule is involved
    assert np.array_equal(got[within], torch.from_numpy(s[within]).to(torch.float8_e4m3fn).view(torch.uint8).numpy())
    neg = R.round_to_e4m3(torch.from_numpy(-s)).view(torch.uint8).numpy()
    assert np.array_equal(neg & 0x7F, got) and (neg[s > 0] & 0x80).all()


def test_e4m3_underflow_edge():
    """s <= 2^-10 (half the smallest subnormal; the tie goes to even 0) rounds to scale 0."""
    tiny = np.float32(2.0**-10)
    s = f32([tiny, np.nextafter(tiny, np.float32(1)), np.nextafter(tiny, np.float32(0)), 0.0])
    assert R.round_to_e4m3(s).view(torch.uint8).tolist() == [0x00, 0x01, 0x00, 0x00]


# ---------------------------------------------------------------------------
# dequantize


@pytest.mark.parametrize("g", [1.0, 3.0, 2688 / 3.7, 2.0**-20, 2.0**100])
def test_dequantize_every_code_times_every_finite_scale(g):
    """All 16 codes x all 127 finite non-negative E4M3 scales. The float64 quotient rounded to float32
    is the correctly rounded float32 quotient: double rounding through binary64 is innocuous for
    division (53 >= 2 * 24 + 2)."""
    codes = torch.arange(16, dtype=torch.uint8).repeat(127, 1)  # row b: one block holding every code
    scales = torch.arange(127, dtype=torch.uint8).reshape(127, 1).view(torch.float8_e4m3fn)
    got = R.dequantize(R.pack_codes(codes), scales, f32([g])).numpy()
    e2m1 = np.concatenate([E2M1_MAG, -E2M1_MAG])
    want = (e2m1[None, :] * E4M3_POS[:, None] / np.float64(np.float32(g))).astype(np.float32)
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


def test_dequantize_checks_the_scale_shape():
    with pytest.raises(ValueError, match="scales"):
        R.dequantize(torch.zeros(2, 16, dtype=torch.uint8), torch.zeros(2, 1, dtype=torch.float8_e4m3fn), f32([1.0]))


# ---------------------------------------------------------------------------
# quantize: rounding and special values

# g = 1 and a block maximum of 6 give q = fl(1/6), s = fl(6 q) = 1, d = 1, r = 1: v == x exactly, so
# these blocks test the E2M1 rounding itself.
TIES = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0]


def unit_scale_block(values) -> torch.Tensor:
    """Blocks of [6, value, 0, ...]: scale 1 (see above), the value at position 1."""
    x = torch.zeros(len(values), 16)
    x[:, 0] = 6.0
    x[:, 1] = f32(values)
    return x


def test_unit_scale_setup():
    _, scales = R.quantize(unit_scale_block([1.0]), f32([1.0]))
    assert scales.float().item() == 1.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_every_e2m1_tie_and_its_neighbours(sign):
    ties = np.float32(TIES)
    values = sign * np.concatenate([ties, np.nextafter(ties, np.float32(0)), np.nextafter(ties, np.float32(9))])
    packed, _ = R.quantize(unit_scale_block(values), f32([1.0]))
    got = codes_of(packed)[:, 1]
    assert np.array_equal(got, oracle_e2m1(values.astype(np.float32)))
    # the tie rule spelled out: 0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4
    want_ties = [0, 2, 2, 4, 4, 6, 6]
    assert (got[:7] & 7).tolist() == want_ties and (got[:7] >> 3).tolist() == [int(sign < 0)] * 7


def test_every_representable_value_is_exact():
    vals = np.concatenate([E2M1_MAG, -E2M1_MAG])
    packed, _ = R.quantize(unit_scale_block(vals), f32([1.0]))
    assert codes_of(packed)[:, 1].tolist() == list(range(16))


def test_saturation_when_the_scale_rounds_down():
    """amax 6.36: s = 1.06 rounds to d = 1, so |v| = 6.36 > 6 saturates to +-6 (code 7 / 15)."""
    x = torch.zeros(2, 16)
    x[0, 5], x[1, 5] = 6.36, -6.36
    packed, scales = R.quantize(x, f32([1.0]))
    assert scales.float().tolist() == [[1.0], [1.0]]
    assert codes_of(packed)[:, 5].tolist() == [7, 15]


@pytest.mark.parametrize("where", [0, 15])
def test_amax_at_a_block_edge(where, rng):
    """The block maximum at the first / last element of a block, neighbouring blocks different."""
    x = torch.randn(4, 64, generator=rng)
    x[:, 16:32] *= 1e-3  # |x| < 0.01 in block 1 but its edge element
    x[:, 16 + where] = torch.tensor([9.5, -9.5, 0.031, -1e4])
    g = R.global_scale(x)
    packed, scales = R.quantize(x, g)
    codes, sf = oracle_quantize(x.numpy(), g.item())
    assert np.array_equal(codes_of(packed), codes) and np.array_equal(scales.view(torch.uint8).numpy(), sf)
    assert (codes_of(packed)[:, 16 + where] & 7 >= 6).all(), "the block maximum lands on 4 or 6"


def test_zero_blocks():
    x = torch.zeros(2, 32)
    x[1] = -0.0
    x[0, 16:] = torch.linspace(-1, 1, 16)
    packed, scales = R.quantize(x, f32([7.0]))
    codes = codes_of(packed)
    assert scales.float()[:, 0].tolist() == [0.0, 0.0]
    assert (codes[0, :16] == 0).all() and (codes[1] == 8).all(), "+0 -> 0x0, -0 -> 0x8 (sign kept, as cvt does)"
    deq = R.dequantize(packed, scales, f32([7.0]))
    assert torch.equal(deq[:, :16], torch.zeros(2, 16)) and torch.isfinite(deq).all()


def test_a_block_whose_scale_underflows():
    """g = 1: s = a * fl(1/6) <= 2^-10 -> scale 0 and the block encodes as zeros (signs kept);
    just above, the scale is the smallest subnormal 2^-9."""
    q = np.float32(1) / np.float32(6)
    a_low = np.float32(2.0**-10) / q  # a * q lands on 2^-10 or next to it
    while np.float32(a_low) * q > np.float32(2.0**-10):
        a_low = np.nextafter(a_low, np.float32(0))
    a_high = np.nextafter(a_low, np.float32(1))
    while np.float32(a_high) * q <= np.float32(2.0**-10):
        a_high = np.nextafter(a_high, np.float32(1))
    x = torch.zeros(2, 16)
    x[0, 3], x[0, 4] = float(a_low), -float(a_low) / 2
    x[1, 3] = float(a_high)
    packed, scales = R.quantize(x, f32([1.0]))
    assert scales.view(torch.uint8)[:, 0].tolist() == [0x00, 0x01]
    assert codes_of(packed)[0, 3:5].tolist() == [0, 8]
    assert torch.equal(R.dequantize(packed, scales, f32([1.0]))[0], torch.zeros(16))


def test_nan_and_inf_policy():
    """NaN: ignored by the block maximum, encodes as +6 (0x7). +-inf: the block's scale saturates to
    448 and it encodes as +-6. An all-NaN block has scale 0 and codes 0x7. global_scale skips both."""
    x = torch.zeros(3, 16)
    x[0, :4] = f32([float("nan"), 3.0, -1.0, float("-nan")])
    x[1, :3] = f32([float("inf"), float("-inf"), 100.0])
    x[2] = float("nan")
    g = f32([2.0])
    packed, scales = R.quantize(x, g)
    codes = codes_of(packed)
    finite = x.clone()
    finite[0, [0, 3]] = 0.0
    _, sf0 = R.quantize(finite[:1], g)
    assert scales.view(torch.uint8)[0] == sf0.view(torch.uint8)[0], "NaN must not change the block scale"
    assert codes[0, 0] == 7 and codes[0, 3] == 7, "NaN -> +6 whatever its sign"
    assert scales.float()[1, 0] == 448.0 and codes[1, :2].tolist() == [7, 15]
    r = np.float32(2.0) / np.float32(448.0)
    assert codes[1, 2] == oracle_e2m1(np.float32(100.0) * r)
    assert scales.float()[2, 0] == 0.0 and (codes[2] == 7).all()
    assert R.global_scale(x).item() == np.float32(2688) / np.float32(100.0)


# ---------------------------------------------------------------------------
# quantize: against the independent float32 re-implementation, and the error bound


@pytest.mark.parametrize("magnitude", [1e-3, 1.0, 300.0])
def test_quantize_matches_the_float32_oracle(magnitude, rng):
    x = torch.randn(32, 256, generator=rng) * magnitude
    x[::3] *= torch.rand(32, 256, generator=rng)[::3] ** 4  # blocks of very different amax
    for g in (R.global_scale(x), f32([float(torch.rand(1, generator=rng)) * 1000])):
        packed, scales = R.quantize(x, g)
        codes, sf = oracle_quantize(x.numpy(), g.item())
        assert np.array_equal(codes_of(packed), codes)
        assert np.array_equal(scales.view(torch.uint8).numpy(), sf)


def test_bf16_input_widens_exactly(rng):
    x = torch.randn(8, 64, generator=rng).to(torch.bfloat16)
    g = R.global_scale(x)
    assert all(torch.equal(a, b) for a, b in zip(R.quantize(x, g), R.quantize(x.float(), g)))


def test_quantize_dequantize_error_bound(rng):
    """Per element |x - deq| <= (d / g) * (H(|v|) + 2^-18), d the block's E4M3 scale, v = x * g / d:
    RNE to E2M1 errs by at most half the code spacing at |v|, H = 0.25 (|v| <= 2), 0.5 (<= 4), 1
    beyond. Saturation stays inside that: with a normal E4M3 scale |s - d| <= s / 16, so
    |v| <= 6 * 16/15 = 6.4 and 6.4 - 6 < 1. The fp32 roundings of r, v and the dequantization add
    a relative 2^-22 or so of |v| <= 6.4, covered by 2^-18."""
    x = torch.randn(64, 512, generator=rng) * torch.logspace(-1, 1, 64).unsqueeze(-1)  # 2 decades: scales stay normal
    g = R.global_scale(x)
    packed, scales = R.quantize(x, g)
    d = scales.float()
    assert (d >= F.E4M3_MIN_NORMAL).all(), "the bound's argument assumes normal scales"
    step = (d / g).repeat_interleave(16, dim=-1)
    v = (x / step).abs()
    half_spacing = torch.where(v <= 2, 0.25, torch.where(v <= 4, 0.5, 1.0))
    err = (x - R.dequantize(packed, scales, g)).abs()
    assert (err <= step * (half_spacing + 2.0**-18)).all(), (err / step).max()


def test_per_expert_global_scales(rng):
    w = torch.randn(3, 32, 64, generator=rng) * torch.tensor([0.01, 1.0, 50.0]).reshape(3, 1, 1)
    g = R.global_scale(w, batch_dims=1)
    assert g.shape == (3,) and torch.equal(g, torch.cat([R.global_scale(w[e]) for e in range(3)]))
    packed, scales = R.quantize(w, g)
    for e in range(3):
        pe, se = R.quantize(w[e], g[e])
        assert torch.equal(packed[e], pe) and torch.equal(scales[e].view(torch.uint8), se.view(torch.uint8))


def test_global_scale_recipe_and_edges():
    assert R.global_scale(f32([[1.0, -3.5]])).item() == np.float32(2688) / np.float32(3.5)
    assert R.global_scale(torch.zeros(4, 16)).item() == 1.0, "all zero: g = 1, not inf"
    assert R.global_scale(torch.full((16,), 1e-38)).item() == F.GLOBAL_SCALE_MAX


def test_pack_order_even_element_low_nibble():
    codes = torch.tensor([[1, 2, 3, 4]], dtype=torch.uint8)
    assert R.pack_codes(codes).tolist() == [[0x21, 0x43]]
    assert torch.equal(R.unpack_codes(R.pack_codes(codes)), codes)


# ---------------------------------------------------------------------------
# scale swizzle


def test_swizzle_offsets_by_hand():
    # nvmath-python get_block_scale_offset docs, NVFP4 operand M = K = 128 (8 scale columns)
    assert F.swizzle_offset(5, 2, 8) == 82 and F.swizzle_offset(5, 5, 8) == 593
    # row 129 of a 5-column matrix (2 column tiles): tile (1, 1) = #3, row 129 % 32 = 1, 129 % 128 // 32 = 0
    assert F.swizzle_offset(129, 4, 5) == 3 * 512 + 16
    # row 100: (100 % 32) * 16 + (100 // 32) * 4 + col 2
    assert F.swizzle_offset(100, 2, 4) == 4 * 16 + 3 * 4 + 2


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (128, 4), (129, 7), (200, 13), (2, 130, 9)])
def test_swizzle_round_trip_and_offsets(shape, rng):
    sf = torch.randint(1, 127, shape, dtype=torch.uint8, generator=rng).view(torch.float8_e4m3fn)
    flat = R.swizzle_scales(sf)
    rows, cols = shape[-2:]
    rows_pad, cols_pad = F.swizzled_shape(rows, cols)
    assert flat.dtype == sf.dtype and flat.shape == (*shape[:-2], rows_pad * cols_pad)
    assert torch.equal(R.unswizzle_scales(flat, rows, cols).view(torch.uint8), sf.view(torch.uint8))
    raw, sf8 = flat.view(torch.uint8).reshape(-1, rows_pad * cols_pad), sf.view(torch.uint8).reshape(-1, rows, cols)
    written = torch.zeros_like(raw, dtype=torch.bool)
    for r in range(rows):
        for c in range(cols):
            off = F.swizzle_offset(r, c, cols)
            assert torch.equal(raw[:, off], sf8[:, r, c])
            written[:, off] = True
    assert (raw[~written] == 0).all(), "padding is zero"


def test_unswizzle_checks_the_size():
    with pytest.raises(ValueError, match="swizzled scales"):
        R.unswizzle_scales(torch.zeros(100, dtype=torch.uint8), 3, 5)


# ---------------------------------------------------------------------------
# MoE layer


def hand_layer():
    """E = 2 experts, top-1, H = I = 16. Every weight row and hidden row holds a 6 where its partner
    is zero, so with global scales 1 each block has scale exactly 1 and quantizes losslessly:
      hidden[t] = [6, h_t, 0..],            h = (1, -2, 3); router picks experts (0, 1, 0)
      W13_e row 0 (gate 0) = [0, wg_e, 6, 0..], row I (up 0) = [0, wu_e, 6, 0..], others 0
      W2_e row i < 3 = [c_e,i, 6, 0..], others 0
    so gate_0 = wg_e h_t, up_0 = wu_e h_t, the intermediate is [m, 0..] with m = silu(gate_0) up_0,
    and out[t, i] = deq(m) * c_e,i for i < 3."""
    h_in, inter = 16, 16
    hidden = torch.zeros(3, h_in)
    hidden[:, 0], hidden[:, 1] = 6.0, f32([1.0, -2.0, 3.0])
    logits = f32([[2.0, 0.0], [0.0, 1.5], [5.0, -1.0]])
    w13, w2 = torch.zeros(2, 2 * inter, h_in), torch.zeros(2, h_in, inter)
    for e, (wg, wu, c) in enumerate([(1.5, 2.0, (1.0, -0.5, 2.0)), (-1.0, 0.5, (3.0, 1.0, -1.5))]):
        w13[e, 0, 1:3] = f32([wg, 6.0])
        w13[e, inter, 1:3] = f32([wu, 6.0])
        w2[e, :3, 0], w2[e, :3, 1] = f32(c), 6.0
    one = torch.ones(2)
    return hidden, logits, R.NVFP4Experts.quantize(w13, one), R.NVFP4Experts.quantize(w2, one), w13, w2


def test_moe_layer_hand_checked():
    """Requantizing m with global scale 1: s = |m| / 6 rounds to an E4M3 d with |m| / d > 5, so m
    encodes as +-6 and comes back as +-6 d:
      t0: expert 0, gate 1.5, up 2:  m = 2 * 1.5 * sigmoid(1.5) = 2.4527, s = 0.40878 -> d = 0.40625 (13/32),
          deq = 2.4375; out = 2.4375 * (1, -0.5, 2)
      t1: expert 1, gate 2, up -1:   m = -2 * sigmoid(2) = -1.7616, s = 0.29360 -> d = 0.28125 (9/32),
          deq = -1.6875; out = -1.6875 * (3, 1, -1.5)
      t2: expert 0, gate 4.5, up 6:  m = 27 * sigmoid(4.5) = 26.703, s = 4.4505 -> d = 4.5, deq = 27;
          out = 27 * (1, -0.5, 2)"""
    hidden, logits, w13, w2, w13_f, w2_f = hand_layer()
    assert torch.equal(w13.dequantize(), w13_f) and torch.equal(w2.dequantize(), w2_f), "lossless by construction"
    out = R.moe_layer(hidden, logits, w13, w2, 1, input_global_scale=f32([1.0]), intermediate_global_scale=f32([1.0]))
    want = torch.zeros(3, 16)
    want[0, :3] = 2.4375 * f32([1.0, -0.5, 2.0])
    want[1, :3] = -1.6875 * f32([3.0, 1.0, -1.5])
    want[2, :3] = 27.0 * f32([1.0, -0.5, 2.0])
    assert torch.equal(out, want)


def test_routing_weights(rng):
    logits = torch.randn(64, 8, generator=rng)
    weights, ids = R.route(logits, 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64), rtol=0, atol=2e-7)  # a sum of two fp32 quotients
    probs = torch.softmax(logits.double(), -1)
    assert torch.equal(ids, probs.topk(2, -1).indices)
    picked = probs.gather(1, ids)
    torch.testing.assert_close(weights.double(), picked / picked.sum(-1, keepdim=True), rtol=1e-6, atol=0)


def random_layer(rng, experts=4, h=64, inter=32):
    w13 = R.NVFP4Experts.quantize(torch.randn(experts, 2 * inter, h, generator=rng) * 0.1)
    w2 = R.NVFP4Experts.quantize(torch.randn(experts, h, inter, generator=rng) * 0.1)
    return w13, w2


def test_an_expert_without_tokens_contributes_nothing(rng):
    hidden = torch.randn(16, 64, generator=rng)
    logits = torch.randn(16, 4, generator=rng)
    logits[:, 3] = -1e9  # expert 3 never in anyone's top 2
    w13, w2 = random_layer(rng)
    out = R.moe_layer(hidden, logits, w13, w2, 2)
    garbage = R.NVFP4Experts(w13.packed.clone(), w13.scales.clone(), w13.global_scale.clone())
    garbage.packed[3] = torch.randint(0, 256, garbage.packed[3].shape, dtype=torch.uint8, generator=rng)
    garbage.global_scale[3] = 1e-3
    assert torch.equal(out, R.moe_layer(hidden, logits, garbage, w2, 2))


def test_moe_layer_matches_a_per_token_formulation(rng):
    """Gather/scatter and weighting checked against a plain loop over (token, slot); per-expert static
    intermediate scales make each token's result independent of which others share its expert."""
    hidden = torch.randn(24, 64, generator=rng).to(torch.bfloat16)
    logits = torch.randn(24, 4, generator=rng)
    w13, w2 = random_layer(rng)
    g_in, g_mid = f32([50.0]), f32([30.0, 60.0, 90.0, 120.0])
    out = R.moe_layer(hidden, logits, w13, w2, 2, input_global_scale=g_in, intermediate_global_scale=g_mid)
    x = R.dequantize(*R.quantize(hidden, g_in), g_in)
    weights, ids = R.route(logits, 2)
    want = torch.zeros(24, 64)
    for t in range(24):
        for slot in range(2):
            e = int(ids[t, slot])
            h = x[t:t + 1] @ w13.dequantize(e).T
            m = torch.nn.functional.silu(h[:, :32]) * h[:, 32:]
            want[t] += weights[t, slot] * (R.dequantize(*R.quantize(m, g_mid[e]), g_mid[e]) @ w2.dequantize(e).T)[0]
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)  # fp32 matmuls over 32..64 terms, summation order


def test_experts_check_their_shapes():
    with pytest.raises(ValueError, match="NVFP4Experts"):
        R.NVFP4Experts(torch.zeros(2, 4, 8, dtype=torch.uint8), torch.zeros(2, 4, 2, dtype=torch.float8_e4m3fn),
                       torch.ones(3))
