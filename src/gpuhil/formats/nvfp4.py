"""NVFP4 format facts as plain Python (no torch), shared by the reference and the kernels.

- E2M1 element: sign bit (bit 3) and magnitude code 0..7 = {0, 0.5, 1, 1.5, 2, 3, 4, 6}; no inf/NaN
  (PTX ISA, alternate floating-point formats; CUDA cuda_fp4.h __nv_fp4_e2m1).
- 16 consecutive elements along K share one E4M3 scale, used unsigned (cuBLAS: VEC16_UE4M3).
- One fp32 global scale per tensor; x ~= e2m1 * e4m3 / global. The usual recipe
  global = 448 * 6 / amax(tensor) (vLLM's and NVIDIA Fuser's NVFP4 tests and references) puts the
  largest block scale at the top of E4M3.
- Scales as cuBLAS/CUTLASS read them: 128x4 tiles, see `swizzle_offset`.
"""

from __future__ import annotations

import struct

BLOCK = 16  # elements per E4M3 scale, along K
E2M1_MAX = 6.0
E4M3_MAX = 448.0
E4M3_MIN_NORMAL = 2.0**-6
E4M3_SMALLEST = 2.0**-9  # smallest positive (subnormal) E4M3 value
GLOBAL_SCALE_NUMERATOR = E4M3_MAX * E2M1_MAX  # 2688, exact in fp32
GLOBAL_SCALE_MAX = 2.0**100  # keeps g / d finite for every nonzero E4M3 d (>= 2^-9)

E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
# (threshold, tie goes up): a magnitude passing k thresholds gets code k. Each threshold is the
# midpoint of two neighbours and a tie goes to the one with the even code (round half to even):
# 0.25 -> 0 (code 0), 0.75 -> 1 (code 2), 1.25 -> 1 (code 2), 1.75 -> 2 (code 4), 2.5 -> 2 (code 4),
# 3.5 -> 4 (code 6), 5 -> 4 (code 6). Past 5 everything, +inf included, saturates to 6 (code 7).
E2M1_THRESHOLDS = ((0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False), (3.5, True), (5.0, False))
E2M1_SIGN_BIT = 0x8
E2M1_NAN_CODE = 0x7  # cvt.rn.satfinite.e2m1x2.f32: NaN -> positive MAX_NORM (cuda_fp4.hpp host path)

SWIZZLE_ROWS, SWIZZLE_COLS = 128, 4  # one 512-byte tile of the cuBLAS/CUTLASS scale layout


def f32_bits(x: float) -> int:
    """IEEE binary32 bit pattern of x as a signed 32-bit int."""
    return struct.unpack("<i", struct.pack("<f", x))[0]


def e2m1_threshold_bits() -> tuple[tuple[int, bool], ...]:
    """E2M1_THRESHOLDS as fp32 bit patterns: non-negative floats order like their bits, so a kernel
    can compare magnitude bits as integers (exact, and immune to flush-to-zero)."""
    return tuple((f32_bits(t), up) for t, up in E2M1_THRESHOLDS)


def swizzled_shape(rows: int, cols: int) -> tuple[int, int]:
    """(rows, cols) of a scale matrix padded to whole 128x4 tiles."""
    return -(-rows // SWIZZLE_ROWS) * SWIZZLE_ROWS, -(-cols // SWIZZLE_COLS) * SWIZZLE_COLS


def swizzle_offset(row: int, col: int, cols: int) -> int:
    """Byte offset of scale (row, col) in the 128x4-tiled layout of a [*, cols] scale matrix.

    cuBLAS docs, "1D block scaling factors layout": 512-byte tiles of 128 rows x 4 scale columns,
    tiles ordered row-tile major with the K tiles inner; inside a tile row r sits at
    (r % 32) * 16 + (r % 128) // 32 * 4, plus the column % 4. nvmath-python's get_block_scale_offset
    (which links that section) documents two instances for an M = K = 128 NVFP4 operand:
    (5, 2) -> 82 and (5, 5) -> 593; NVIDIA Fuser's linear_to_swizzled_128_4 is the same permutation
    as a reshape to (row tiles, 4, 32, K tiles, 4) with axes 1 and 3 swapped.
    """
    col_tiles = swizzled_shape(1, cols)[1] // SWIZZLE_COLS
    tile = (row // SWIZZLE_ROWS) * col_tiles + col // SWIZZLE_COLS
    return tile * 512 + (row % 32) * 16 + (row % SWIZZLE_ROWS) // 32 * 4 + col % SWIZZLE_COLS
