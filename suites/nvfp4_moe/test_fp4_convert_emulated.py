"""The dequant kernel's E2M1 x E4M3 -> bf16 instruction sequence, run bit for bit on the CPU.

fp4_convert writes the sequence once against an `ops` backend; here each PTX instruction it uses
(and, shr, shl, prmt, lop3, mul.rn.bf16x2, the e4m3 -> bf16x2 cvt chain) is emulated from its PTX
ISA definition, and every output must equal the exact product, bit for bit: the exactness claim
(every E2M1 x E4M3 product is a bf16) makes exact equality the contract, no tolerance.
Grid: every code byte in every byte position of a word, against every E4M3 scale code in the first
position and representative ones (zero, subnormals, extremes, negative) in the others; NaN apart.
"""

import math
import struct

import pytest
import torch

from gpuhil.kernels.nvfp4_grouped_gemm import fp4_convert

M32 = 0xFFFFFFFF
E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def bf16_bits(x: float) -> int:
    """Round-to-nearest-even bf16 bit pattern of a float (NaN kept quiet)."""
    if math.isnan(x):
        return 0x7FC0
    f = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((f + 0x7FFF + ((f >> 16) & 1)) >> 16) & 0xFFFF


def bf16_value(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", (bits & 0xFFFF) << 16))[0]


class PtxEmulator:
    """The PTX ISA semantics of the instructions fp4_convert emits, on Python ints (u32)."""

    def and_(self, a, m):
        return a & m & M32

    def shr(self, a, n):
        return (a & M32) >> n

    def shl(self, a, n):
        return (a << n) & M32

    def prmt(self, a, b, sel):
        pool = [((a >> (8 * i)) & 0xFF) for i in range(4)] + [((b >> (8 * i)) & 0xFF) for i in range(4)]
        out = 0
        for i in range(4):
            nib = (sel >> (4 * i)) & 0xF
            byte = pool[nib & 7]
            if nib & 8:  # default mode: replicate the selected byte's sign bit
                byte = 0xFF if byte & 0x80 else 0
            out |= byte << (8 * i)
        return out

    def lop3(self, a, b, c, lut):
        out = 0
        for bit in range(32):
            idx = (((a >> bit) & 1) << 2) | (((b >> bit) & 1) << 1) | ((c >> bit) & 1)
            # lop3's table is indexed as F(a, b, c) with a = 0xF0, b = 0xCC, c = 0xAA
            out |= ((lut >> idx) & 1) << bit
        return out

    def mul_bf16x2(self, a, b):
        halves = [bf16_bits(bf16_value(a >> s) * bf16_value(b >> s)) for s in (0, 16)]
        return halves[0] | (halves[1] << 16)

    def e4m3_to_bf16x2(self, code):
        h = bf16_bits(e4m3(code & 0xFF))
        return h | (h << 16)


EMU = PtxEmulator()
SCALE_CODES = [c for c in range(256) if c & 0x7F != 0x7F]  # every E4M3 code but the two NaNs
_E4M3 = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).float().tolist()


def e4m3(code: int) -> float:
    """E4M3 decoded by torch, independently of the kernel's cvt chain."""
    return _E4M3[code]


def e2m1(code: int) -> float:
    return -E2M1[code & 7] if code & 8 else E2M1[code & 7]


def convert(word: int, scale_code: int) -> list[int]:
    out = [None] * 4
    fp4_convert.e2m1x8_to_bf16(word, fp4_convert.e4m3_to_bf16x2(scale_code, EMU), out, 0, EMU)
    return [h for w in out for h in (w & 0xFFFF, w >> 16)]


# every scale in byte position 0; zero, subnormal, smallest/largest normal, negative elsewhere
SCALES_AT = {0: SCALE_CODES, 1: [0x00, 0x01, 0x07, 0x08, 0x38, 0x7E, 0xB8, 0xFE]}


@pytest.mark.parametrize("position", range(4))
def test_every_code_byte_times_every_scale_is_exact(position):
    # the other three bytes walk through codes too, so every nibble position sees every code
    for byte in range(256):
        others = [(byte * 37 + 11 * p) & 0xFF for p in range(4)]
        others[position] = byte
        word = sum(b << (8 * i) for i, b in enumerate(others))
        for sc in SCALES_AT[min(position, 1)]:
            got = convert(word, sc)
            for j in range(8):
                want = e2m1((word >> (4 * j)) & 0xF) * e4m3(sc)
                assert bf16_bits(want) == got[j], (hex(word), hex(sc), j, want, bf16_value(got[j]))
                assert bf16_value(got[j]) == want  # the product was representable: nothing rounded


def test_nan_scale_gives_nan_for_every_code():
    for word in (0x00000000, 0x76543210, 0xFEDCBA98):
        for sc in (0x7F, 0xFF):
            assert all(math.isnan(bf16_value(h)) for h in convert(word, sc))


def test_products_need_at_most_six_significant_bits_and_stay_normal_in_bf16():
    """The arithmetic behind the exactness claim in fp4_convert's docstring, checked exhaustively."""
    prods = {abs(a * e4m3(s)) for a in E2M1 for s in SCALE_CODES} - {0.0}
    for p in prods:
        mant, _ = math.frexp(p)
        bits = 0
        while mant != int(mant):
            mant *= 2
            bits += 1
        assert bits <= 6, p
    assert min(prods) == 2.0**-10 and max(prods) == 6 * 448
    assert min(prods) >= 2.0**-126  # bf16 normal; and their squares stay fp32 normal
    assert min(prods) ** 2 >= 2.0**-126 and max(prods) ** 2 < 2.0**128
