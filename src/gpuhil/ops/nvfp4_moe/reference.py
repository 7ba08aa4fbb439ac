"""NVFP4 reference: an fp32 quantizer a GPU kernel can match bit for bit, dequantization, the
128x4 scale swizzle, the grouped-GEMM reference and an NVFP4 MoE layer reference (Qwen3-style
routing). Pure torch, CPU-friendly.
The format facts and their sources live in `gpuhil.formats.nvfp4`.

Data contract (what gpuhil's NVFP4 kernels read and write):
- packed codes: torch.uint8 [..., K/2]; element 2j in the LOW nibble, 2j+1 in the HIGH nibble.
- block scales: torch.float8_e4m3fn [..., K/16], linear (row-major). `swizzle_scales` gives the
  128x4-tiled layout cuBLAS/CUTLASS read, flat [..., rows_pad * cols_pad], padding zero.
- global scale: fp32 tensor, one element per tensor, or shape x.shape[:d] (e.g. [G] for [G, N, K]).

Quantization of one block x_0..x_15 (fp32; bf16/fp16 inputs widen exactly) with global scale g.
Every step is exact or ONE IEEE-754 binary32 operation rounded to nearest even, no FMA, no
transcendental, so a kernel that issues the same operations gets the same bits:
  1. q   = g / 6                       division
  2. a   = max |x_i| over the non-NaN x_i, 0 if none      exact (+inf counts)
  3. s   = a * q                       multiplication
  4. sf  = E4M3(s)                     RNE to E4M3 with satfinite: |s| >= 448 (and inf) -> 448,
                                       s <= 2^-10 (half the smallest subnormal, tie to even) -> 0,
                                       NaN -> NaN (only from a NaN g, or inf * 0 when g == 0)
  5. d   = float(sf)                   exact
  6. r   = 0 if d == 0 else g / d      division
  7. v_i = x_i * r                     multiplication
  8. c_i = E2M1(v_i)                   RNE with saturation at 6: magnitude code = number of thresholds
                                       passed, |v| > 0.25, >= 0.75, > 1.25, >= 1.75, > 2.5, >= 3.5, > 5
                                       (a strict '>' where the tie goes to the even code below);
                                       sign bit = sign bit of v_i (so -0.0 and small negatives that
                                       round to zero encode 0x8); NaN -> 0x7 (+6).
Steps 4 and 8 follow the hardware conversions cvt.rn.satfinite.e4m3x2.f32 and .e2m1x2.f32 (PTX ISA,
cvt; NVIDIA's cuda_fp8.hpp / cuda_fp4.hpp host fallbacks spell out the same rules: RNE, |x| > MAX_NORM
-> sign-preserved MAX_NORM, E4M3 NaN -> NaN, E2M1 NaN -> +MAX_NORM, underflow keeps the sign).

Non-finite policy, one rule: NaN is ignored by the block maximum and encodes as +6; +-inf makes its
block's scale 448 and encodes as +-6; `global_scale` looks at finite values only.
A zero block (a == 0), or one whose scale underflows (s <= 2^-10), gets scale 0, r = 0 and codes
0x0 / 0x8 (by the sign of x): it dequantizes to zeros, never NaN.
With g finite, positive and <= 2^100 (what `global_scale` returns) r <= g / 2^-9 stays finite; any
other g still follows the same operations, so a kernel matches the reference there too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...formats.nvfp4 import (
    BLOCK,
    E2M1_MAGNITUDES,
    E2M1_MAX,
    E2M1_NAN_CODE,
    E2M1_THRESHOLDS,
    E4M3_MAX,
    E4M3_MIN_NORMAL,
    GLOBAL_SCALE_MAX,
    GLOBAL_SCALE_NUMERATOR,
    SWIZZLE_COLS,
    SWIZZLE_ROWS,
    swizzle_offset,
    swizzled_shape,
)

__all__ = ["NVFP4Experts", "decode_e2m1", "dequantize", "e2m1_values", "encode_e2m1", "global_scale", "moe_layer",
           "pack_codes", "quantize", "round_to_e4m3", "route", "swizzle_offset", "swizzle_scales", "swizzled_shape",
           "unpack_codes", "unswizzle_scales"]

_F32 = torch.float32


# ---------------------------------------------------------------------------
# element formats


def e2m1_values() -> torch.Tensor:
    """fp32 value of each of the 16 E2M1 codes (code 8 is -0.0)."""
    mags = torch.tensor(E2M1_MAGNITUDES, dtype=_F32)
    return torch.cat([mags, -mags])


def encode_e2m1(v: torch.Tensor) -> torch.Tensor:
    """E2M1 codes (uint8, 0..15) of fp32 values: step 8 of the module docstring."""
    mag = v.abs()
    code = torch.zeros(v.shape, dtype=torch.uint8, device=v.device)
    for threshold, tie_up in E2M1_THRESHOLDS:
        code += (mag >= threshold if tie_up else mag > threshold).to(torch.uint8)
    code |= torch.signbit(v).to(torch.uint8) << 3
    return torch.where(torch.isnan(v), torch.full_like(code, E2M1_NAN_CODE), code)


def decode_e2m1(codes: torch.Tensor) -> torch.Tensor:
    """fp32 values of E2M1 codes (any integer dtype, values 0..15), computed from the code bits on the
    codes' device (no table copied from the host, so it also runs inside a CUDA-graph capture):
    magnitude code m < 2 is m / 2, else 2^(m // 2 - 1) * (1 + (m % 2) / 2); bit 3 is the sign."""
    m = (codes & 7).to(_F32)
    e = torch.floor(m * 0.5)
    mag = torch.where(m < 2, m * 0.5, torch.exp2(e - 1) * (1 + (m - 2 * e) * 0.5))
    return torch.where((codes & 8) != 0, -mag, mag)


def round_to_e4m3(s: torch.Tensor) -> torch.Tensor:
    """fp32 -> float8_e4m3fn, round to nearest even with satfinite (step 4), computed on the E4M3 grid
    in fp32 so it does not depend on torch's own fp8 cast (whose overflow rule changed over versions)."""
    mag = torch.minimum(s.to(_F32).abs(), torch.full_like(s, E4M3_MAX, dtype=_F32))  # NaN stays NaN
    bits = mag.view(torch.int32)
    # normal range: keep 3 of fp32's 23 mantissa bits, round half to even (a carry bumps the exponent)
    normal = ((bits + 0x7FFFF + ((bits >> 20) & 1)) & ~0xFFFFF).view(_F32)
    # subnormal range: a fixed 2^-9 grid; scaling by 512 is exact and torch.round is half-to-even
    subnormal = torch.round(mag * 512.0) / 512.0
    rounded = torch.where(mag >= E4M3_MIN_NORMAL, normal, subnormal)
    rounded = torch.where(torch.signbit(s), -rounded, rounded)
    return rounded.to(torch.float8_e4m3fn)  # exact: every value is on the E4M3 grid (NaN -> 0x7F)


# ---------------------------------------------------------------------------
# packing and scale layouts


def pack_codes(codes: torch.Tensor) -> torch.Tensor:
    """[..., K] codes -> [..., K/2] bytes, element 2j in the low nibble (PTX cvt ...e2m1x2 puts its
    second source in d[3:0]; cuda_fp4.hpp's float2 -> fp4x2 stores .x there)."""
    if codes.shape[-1] % 2:
        raise ValueError(f"codes: last dim must be even, got {codes.shape[-1]}")
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack_codes(packed: torch.Tensor) -> torch.Tensor:
    """[..., K/2] bytes -> [..., K] codes (inverse of pack_codes)."""
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed: expected torch.uint8, got {packed.dtype}")
    return torch.stack([packed & 0xF, packed >> 4], dim=-1).flatten(-2)


def swizzle_scales(scales: torch.Tensor) -> torch.Tensor:
    """Linear [..., rows, cols] scales -> flat [..., rows_pad * cols_pad] in the 128x4-tiled layout
    (gpuhil.formats.nvfp4.swizzle_offset), padding zero. Same dtype (float8_e4m3fn or uint8)."""
    *lead, rows, cols = scales.shape
    rows_pad, cols_pad = swizzled_shape(rows, cols)
    raw = scales.view(torch.uint8)
    padded = torch.zeros((*lead, rows_pad, cols_pad), dtype=torch.uint8, device=scales.device)
    padded[..., :rows, :cols] = raw
    # (row tile, row // 32 in tile, row % 32, col tile, col % 4) -> (row tile, col tile, row % 32, row // 32, col % 4)
    tiles = padded.reshape(*lead, rows_pad // SWIZZLE_ROWS, 4, 32, cols_pad // SWIZZLE_COLS, SWIZZLE_COLS)
    n = len(lead)
    out = tiles.permute(*range(n), n, n + 3, n + 2, n + 1, n + 4).reshape(*lead, rows_pad * cols_pad)
    return out.view(scales.dtype)


def unswizzle_scales(flat: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Flat [..., rows_pad * cols_pad] 128x4-tiled scales -> linear [..., rows, cols] (drops padding)."""
    rows_pad, cols_pad = swizzled_shape(rows, cols)
    *lead, n_flat = flat.shape
    if n_flat != rows_pad * cols_pad:
        raise ValueError(f"swizzled scales: expected {rows_pad * cols_pad} per matrix for {rows}x{cols}, got {n_flat}")
    tiles = flat.view(torch.uint8).reshape(*lead, rows_pad // SWIZZLE_ROWS, cols_pad // SWIZZLE_COLS, 32, 4, SWIZZLE_COLS)
    n = len(lead)
    linear = tiles.permute(*range(n), n, n + 3, n + 2, n + 1, n + 4).reshape(*lead, rows_pad, cols_pad)
    return linear[..., :rows, :cols].contiguous().view(flat.dtype)


# ---------------------------------------------------------------------------
# quantize / dequantize


def global_scale(x: torch.Tensor, batch_dims: int = 0) -> torch.Tensor:
    """The usual recipe g = 448 * 6 / amax, per tensor (batch_dims=0, shape [1]) or per leading
    index (batch_dims=1 on [G, N, K] weights: shape [G]). amax is over finite values only; no finite
    nonzero value gives g = 1; g is capped at GLOBAL_SCALE_MAX (amax below ~2e-27)."""
    mag = x.to(_F32).abs()
    mag = torch.where(torch.isfinite(mag), mag, torch.zeros_like(mag))
    amax = mag.reshape(*x.shape[:batch_dims], -1).amax(dim=-1) if x.numel() else torch.zeros(x.shape[:batch_dims])
    amax = amax.reshape(x.shape[:batch_dims] or (1,))
    g = torch.full_like(amax, GLOBAL_SCALE_NUMERATOR) / amax
    g = torch.where(amax == 0, torch.ones_like(g), torch.minimum(g, torch.full_like(g, GLOBAL_SCALE_MAX)))
    return g


def _per_block(g: torch.Tensor, lead: tuple[int, ...], device) -> torch.Tensor:
    """Global scale shaped to broadcast over per-block tensors [*lead, K/16]."""
    g = torch.as_tensor(g, dtype=_F32, device=device)
    if g.numel() == 1:
        return g.reshape((1,) * (len(lead) + 1))
    if tuple(g.shape) != tuple(lead[: g.dim()]):
        raise ValueError(f"global_scale: shape {tuple(g.shape)} is neither one element nor a prefix of {lead}")
    return g.reshape(*g.shape, *(1,) * (len(lead) + 1 - g.dim()))


def quantize(x: torch.Tensor, global_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., K] (K % 16 == 0) -> (packed uint8 [..., K/2], scales float8_e4m3fn [..., K/16] linear),
    by the exact operation sequence of the module docstring."""
    if x.shape[-1] % BLOCK:
        raise ValueError(f"x: last dim must be a multiple of {BLOCK}, got {x.shape[-1]}")
    lead = tuple(x.shape[:-1])
    blocks = x.to(_F32).reshape(*lead, x.shape[-1] // BLOCK, BLOCK)
    g = _per_block(global_scale, lead, x.device)
    q = g / torch.full_like(g, E2M1_MAX)  # 1.
    mag = blocks.abs()
    amax = torch.where(torch.isnan(mag), torch.zeros_like(mag), mag).amax(dim=-1)  # 2.
    sf = round_to_e4m3(amax * q)  # 3., 4.
    d = sf.to(_F32)  # 5.
    r = torch.where(d == 0, torch.zeros_like(d), g / d)  # 6.
    codes = encode_e2m1(blocks * r.unsqueeze(-1))  # 7., 8.
    return pack_codes(codes.reshape(x.shape)), sf


def block_products(packed: torch.Tensor, scales: torch.Tensor, dtype=_F32) -> torch.Tensor:
    """[..., K] e2m1 * e4m3, without the global scale: exact in any float format with 8 significand
    bits (bf16 included: at most 2 x 4 significant bits, values within 2^-10 .. 2688), which is
    what lets a dequantize-to-bf16 MMA compute the products the native FP4 instruction computes."""
    codes = unpack_codes(packed)
    lead, k = tuple(codes.shape[:-1]), codes.shape[-1]
    if tuple(scales.shape) != (*lead, k // BLOCK):
        raise ValueError(f"scales: expected shape {(*lead, k // BLOCK)} for packed {tuple(packed.shape)}, got {tuple(scales.shape)}")
    prod = decode_e2m1(codes).reshape(*lead, k // BLOCK, BLOCK) * scales.to(_F32).unsqueeze(-1)
    return prod.reshape(*lead, k).to(dtype)


def dequantize(packed: torch.Tensor, scales: torch.Tensor, global_scale: torch.Tensor) -> torch.Tensor:
    """fp32 [..., K] from packed [..., K/2], linear scales [..., K/16] and the global scale:
    (e2m1 * e4m3) / g. The product is exact, the division rounds once."""
    prod = block_products(packed, scales)
    lead, k = tuple(prod.shape[:-1]), prod.shape[-1]
    g = _per_block(global_scale, lead, packed.device).unsqueeze(-1)
    return (prod.reshape(*lead, k // BLOCK, BLOCK) / g).reshape(*lead, k)


# ---------------------------------------------------------------------------
# Grouped GEMM


def grouped_reference(ops, offsets: list[int]) -> torch.Tensor:
    """Per expert, alpha[g] * (A codes x scales) @ (B codes x scales)^T: fp64 where a group is small
    enough, fp32 otherwise (the products are exact in both; fp32 accumulation adds far less than
    the suite's tolerance)."""
    t, n = ops.a.shape[0], ops.b.shape[1]
    out = torch.zeros(t, n, dtype=torch.float64, device=ops.a.device)
    start = 0
    for g, end in enumerate(offsets):
        if end > start:
            dtype = torch.float64 if (end - start) * n * ops.b.shape[2] <= 1 << 30 else torch.float32
            a = block_products(ops.a[start:end], ops.a_scale[start:end], dtype)
            b = block_products(ops.b[g], ops.b_scale[g], dtype)
            out[start:end] = ops.alpha[g].double() * (a @ b.T).double()
        start = end
    return out


# ---------------------------------------------------------------------------
# MoE layer


@dataclass(frozen=True)
class NVFP4Experts:
    """One NVFP4 weight set for G experts, each [N, K] (K contiguous): packed [G, N, K/2] uint8,
    scales [G, N, K/16] float8_e4m3fn (linear), global_scale [G] fp32 (one per expert)."""

    packed: torch.Tensor
    scales: torch.Tensor
    global_scale: torch.Tensor

    def __post_init__(self):
        g, n, half_k = self.packed.shape
        if self.scales.shape != (g, n, 2 * half_k // BLOCK) or self.global_scale.shape != (g,):
            raise ValueError(f"NVFP4Experts: packed {tuple(self.packed.shape)} needs scales {(g, n, 2 * half_k // BLOCK)} "
                             f"and global_scale {(g,)}, got {tuple(self.scales.shape)} and {tuple(self.global_scale.shape)}")

    @classmethod
    def quantize(cls, weights: torch.Tensor, global_scale: torch.Tensor | None = None) -> NVFP4Experts:
        """weights [G, N, K] -> NVFP4; global_scale [G] defaults to the per-expert recipe."""
        g = global_scale_of_experts(weights) if global_scale is None else torch.as_tensor(global_scale, dtype=_F32)
        g = g.reshape(weights.shape[0]).to(weights.device)
        packed, scales = quantize(weights, g)
        return cls(packed, scales, g)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(experts, N, K)"""
        g, n, half_k = self.packed.shape
        return g, n, 2 * half_k

    def dequantize(self, expert: int | None = None) -> torch.Tensor:
        """fp32 [G, N, K], or [N, K] for one expert."""
        if expert is None:
            return dequantize(self.packed, self.scales, self.global_scale)
        return dequantize(self.packed[expert], self.scales[expert], self.global_scale[expert])


def global_scale_of_experts(weights: torch.Tensor) -> torch.Tensor:
    return global_scale(weights, batch_dims=1)


def route(router_logits: torch.Tensor, top_k: int, renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen3 MoE routing: softmax over experts in fp32, top-k, then (norm_topk_prob) scale the k
    weights to sum to 1. Returns (weights fp32 [T, k], expert ids int64 [T, k])."""
    probs = torch.softmax(router_logits.to(_F32), dim=-1)
    weights, ids = torch.topk(probs, top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def moe_layer(hidden: torch.Tensor, router_logits: torch.Tensor, w13: NVFP4Experts, w2: NVFP4Experts, top_k: int, *,
              input_global_scale: torch.Tensor | None = None,
              intermediate_global_scale: torch.Tensor | None = None,
              renormalize: bool = True, activation_dtype: torch.dtype = _F32) -> torch.Tensor:
    """NVFP4 MoE layer, fp32 [T, H]:

        x      = dequant(quant(hidden, input_global_scale))                  once, shared by all experts
        h_e    = x[rows of e] @ W13_e^T          W13_e [2I, H]: rows [0, I) gate, rows [I, 2I) up
        m_e    = silu(h_e[:, :I]) * h_e[:, I:]
        y_e    = dequant(quant(m_e, intermediate_global_scale[e])) @ W2_e^T      W2_e [H, I]
        out[t] = sum over t's top-k experts e of weight(t, e) * y_e[t]

    input_global_scale: one fp32 value; default: the recipe over `hidden`.
    intermediate_global_scale: one value or one per expert [E]; default: per expert, the recipe over
    that expert's own intermediate rows (a dynamic scale; serving stacks use calibrated static ones).
    All matmuls are fp32 on dequantized operands; an expert with no tokens contributes nothing.
    activation_dtype=torch.bfloat16 rounds h_e, m_e and y_e to bf16 where a kernel path stores them
    (its GEMMs write bf16; the quantizer reads bf16), so a kernel is compared with the same dataflow.
    """
    t, h = hidden.shape
    n_exp, two_i, h_w = w13.shape
    if h_w != h or w2.shape != (n_exp, h, two_i // 2) or router_logits.shape != (t, n_exp):
        raise ValueError(f"moe_layer: hidden {tuple(hidden.shape)}, router_logits {tuple(router_logits.shape)}, "
                         f"w13 {w13.shape} and w2 {w2.shape} do not describe one [E, 2I, H] / [E, H, I] layer")
    inter = two_i // 2
    g_in = global_scale(hidden) if input_global_scale is None else input_global_scale
    x = dequantize(*quantize(hidden, g_in), g_in)
    weights, ids = route(router_logits, top_k, renormalize)
    out = torch.zeros(t, h, dtype=_F32, device=hidden.device)
    for e in range(n_exp):
        tok, slot = (ids == e).nonzero(as_tuple=True)
        if tok.numel() == 0:
            continue
        h_e = _stored(x[tok] @ w13.dequantize(e).T, activation_dtype)
        m_e = _stored(torch.nn.functional.silu(h_e[:, :inter]) * h_e[:, inter:], activation_dtype)
        if intermediate_global_scale is None:
            g_mid = global_scale(m_e)
        else:
            g_mid = torch.as_tensor(intermediate_global_scale, dtype=_F32).reshape(-1)
            g_mid = g_mid[e] if g_mid.numel() == n_exp else g_mid
        y_e = _stored(dequantize(*quantize(m_e, g_mid), g_mid) @ w2.dequantize(e).T, activation_dtype)
        out.index_add_(0, tok, weights[tok, slot].unsqueeze(-1) * y_e)
    return out


def _stored(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x as a kernel that stores it in `dtype` hands it on (rounded once), back in fp32."""
    return x if dtype == _F32 else x.to(dtype).to(_F32)


def intermediate_amax_scale(hidden: torch.Tensor, router_logits: torch.Tensor, w13: NVFP4Experts, top_k: int, *,
                            input_global_scale: torch.Tensor | None = None, renormalize: bool = True) -> torch.Tensor:
    """A calibrated static intermediate global scale: the recipe over every expert's SiLU(gate) * up
    on this batch, one value for the whole layer (what a serving stack ships from calibration)."""
    g_in = global_scale(hidden) if input_global_scale is None else input_global_scale
    x = dequantize(*quantize(hidden, g_in), g_in)
    _, ids = route(router_logits, top_k, renormalize)
    inter = w13.shape[1] // 2
    amax = torch.zeros((), dtype=_F32, device=hidden.device)
    for e in ids.unique().tolist():
        h_e = x[(ids == e).any(dim=1)] @ w13.dequantize(e).T
        m_e = torch.nn.functional.silu(h_e[:, :inter]) * h_e[:, inter:]
        amax = torch.maximum(amax, m_e.abs().amax())
    return global_scale(amax.reshape(1))
