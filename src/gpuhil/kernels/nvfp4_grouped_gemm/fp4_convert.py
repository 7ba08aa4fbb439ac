"""E2M1 codes times their E4M3 block scale, as bf16, in a few integer instructions (trace-time helpers).

Why bf16 is exact here: an E2M1 magnitude is 0 or has a significand of at most 2 bits (0.5, 1, 1.5,
2, 3, 4, 6) and an E4M3 scale one of at most 4 bits (1.mmm, or 0.mmm * 2^-6 when subnormal), so a
product has at most 2 + 4 = 6 significant bits (3 * 15 = 45 = 101101b) and lies in
[0.5 * 2^-9, 6 * 448] = [2^-10, 2688]: inside bf16's 8-bit significand and normal range
(2^-126 .. 3.4e38), so every product is exact in bf16. A bf16 x bf16 product has at most 16
significant bits and lies in [2^-20, 7.3e6]: exact in fp32. Dequantize-to-bf16 followed by a bf16
MMA with fp32 accumulation therefore forms exactly the products the native block-scaled FP4
instruction forms; only the order of the fp32 additions differs.

The conversion never forms a subnormal: codes become bf16 bit patterns through byte lookups (`prmt`
picks bytes of an 8-entry table by the 3-bit magnitude), the sign bit is OR-ed in, and one exact
`mul.rn.bf16x2` applies the scale. The instruction sequence is written once against an `ops`
backend: `DSL` emits inline PTX; a test emulates the same sequence bit for bit on the CPU.
"""

from __future__ import annotations

# bf16 bit patterns of the E2M1 magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6, split into low and high
# bytes; each table is two 32-bit words holding entries 0-3 and 4-7 (entry i is byte i).
LO_TABLE = (0xC0800000, 0xC0804000)  # 00 00 80 C0 | 00 40 80 C0
HI_TABLE = (0x3F3F3F00, 0x40404040)  # 00 3F 3F 3F | 40 40 40 40
SIGN_MASK = 0x80008000  # bit 15 of each bf16 half
# prmt selectors (nibble i picks byte i of the result): interleave the low and high bytes of
# table entries 0,1 (or 2,3) into two bf16 halves ...
PAIR_SEL = (0x5140, 0x7362)
# ... and bring the bytes whose bit 7 is the sign of code 2j (word << 4) and of code 2j + 1 (word)
# to result bytes 1 and 3, where bf16 keeps its sign bits.
SIGN_SEL = (0x4400, 0x5511, 0x6622, 0x7733)
LOP3_AND_OR = 0xEA  # lop3 truth table of (a & b) | c


def e2m1x8_to_bf16(word, scale_x2, out, base: int, ops=None) -> None:
    """Eight E2M1 codes (`word`, code j in nibble j) times `scale_x2` (the scale as bf16 in both
    halves): writes out[base + j] for j in 0..3, holding codes 2j (low half) and 2j + 1 (high half)."""
    ops = ops or DSL
    mag = ops.and_(word, 0x77777777)  # 3-bit magnitudes: prmt reads a selector's bit 3 as a mode flag
    mag_hi = ops.shr(mag, 16)  # prmt reads the low four selector nibbles only
    lo = (ops.prmt(LO_TABLE[0], LO_TABLE[1], mag), ops.prmt(LO_TABLE[0], LO_TABLE[1], mag_hi))
    hi = (ops.prmt(HI_TABLE[0], HI_TABLE[1], mag), ops.prmt(HI_TABLE[0], HI_TABLE[1], mag_hi))
    word4 = ops.shl(word, 4)
    for j in range(4):
        unsigned = ops.prmt(lo[j // 2], hi[j // 2], PAIR_SEL[j % 2])
        signs = ops.prmt(word4, word, SIGN_SEL[j])
        out[base + j] = ops.mul_bf16x2(ops.lop3(signs, SIGN_MASK, unsigned, LOP3_AND_OR), scale_x2)


def e4m3_to_bf16x2(code, ops=None):
    """The E4M3 scale in `code`'s low byte as bf16 in both halves (exact: 4-bit significand,
    exponents 2^-9 .. 2^8; a subnormal scale stays exact through f16 and f32; NaN stays NaN)."""
    return (ops or DSL).e4m3_to_bf16x2(code)


def _signed(x):
    return x - (1 << 32) if isinstance(x, int) and x >= 1 << 31 else x


class _DslOps:
    """Inline PTX through the CuTe DSL (cutlass imported on first use: this module stays importable
    without the DSL for the CPU emulation)."""

    @staticmethod
    def _asm(text: str, *args):
        from cutlass import Int32
        from cutlass._mlir.dialects import llvm
        from cutlass.cutlass_dsl import T

        operands = [Int32(_signed(a)).ir_value() for a in args]
        return Int32(llvm.inline_asm(T.i32(), operands, text, "=r" + ",r" * len(operands),
                                     has_side_effects=False, is_align_stack=False,
                                     asm_dialect=llvm.AsmDialect.AD_ATT))

    def and_(self, a, mask):
        return self._asm("and.b32 $0, $1, $2;", a, mask)

    def shr(self, a, n: int):
        return self._asm(f"shr.u32 $0, $1, {n};", a)

    def shl(self, a, n: int):
        return self._asm(f"shl.b32 $0, $1, {n};", a)

    def prmt(self, a, b, sel):
        return self._asm("prmt.b32 $0, $1, $2, $3;", a, b, sel)

    def lop3(self, a, b, c, lut: int):
        return self._asm(f"lop3.b32 $0, $1, $2, $3, {lut:#x};", a, b, c)

    def mul_bf16x2(self, a, b):
        return self._asm("mul.rn.bf16x2 $0, $1, $2;", a, b)

    def e4m3_to_bf16x2(self, code):
        return self._asm("{\n\t.reg .b16 s, h0, h1;\n\t.reg .b32 h2;\n\t.reg .f32 f;\n\t"
                         "cvt.u16.u32 s, $1;\n\tcvt.rn.f16x2.e4m3x2 h2, s;\n\tmov.b32 {h0, h1}, h2;\n\t"
                         "cvt.f32.f16 f, h0;\n\tcvt.rn.bf16x2.f32 $0, f, f;\n\t}", code)


DSL = _DslOps()
