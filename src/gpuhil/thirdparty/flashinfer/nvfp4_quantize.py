"""NVFP4 quantize with FlashInfer's CUDA kernel (provider `flashinfer`): `flashinfer.fp4_quantize(x,
g, sf_vec_size=16, sf_use_ue8m0=False, is_sf_swizzled_layout=<layout>, nvfp4_4over6=None)`, in both
of gpuhil's scale layouts (option `layout`), copied into gpuhil's (packed uint8 [rows, K/2], scales).

Contract match. g is the quantization multiplier in both (fp4Quantize.cpp:29: "(448 * 6) /
amax"); codes pack element 2j in the low nibble (`cvt.rn.satfinite.e2m1x2.f32 byte0, %2, %1`,
quantization_utils.cuh:123); linear scales are [rows, K/16] row-major, swizzled ones the 128x4
tiles over rows padded to 128 and scale columns padded to 4, padding written 0
(fp4_quantization.py:1216-1225, quantization.cuh:306-330) = gpuhil's `swizzle_scales`.
Input: fp16, bf16 or e4m3, contiguous (fp4Quantize.cpp:43, 63, 127), K a multiple of 16. A strided
view is passed as a contiguous copy (a caller must copy it too).

The per-block rule (fast math, the default; quantization_utils.cuh:448-506, 670-683, all fp32
multiplications `mul.ftz`, the module compiled with -use_fast_math), for a block x of 16 and g:
  1. a   = (x_even > x_odd) ? x_even : x_odd, where x_even / x_odd are the NaN-ignoring maxima
           (__hmax2) of |x| over the even / odd positions: NaN when every odd-position x is NaN
           (quantization_utils.cuh:465 selects with `cuda_max(T, T)`, a plain `>`,
           cudaTypeUtils.cuh:525-528)
  2. s   = g * (a * rcp(6))                rcp = rcp.approx.ftz.f32, an approximation
  3. sf  = E4M3(s)                         cvt.rn.satfinite: RNE, >= 448 -> 448, NaN -> 0x7F
  4. r   = a != 0 ? rcp(float(sf) * rcp(g)) : 0
  5. c_i = E2M1(x_i * r)                   cvt.rn.satfinite.e2m1x2: RNE, saturating, NaN -> 0x7
gpuhil's reference (ops/nvfp4_moe/reference.py) computes s = a * (g / 6) and r = g / d, each one
IEEE operation, no FTZ, and ignores every NaN in a. So, with FlashInfer 0.7.2.post1 on SM100+/SM12x:
shown (tests/test_flashinfer_quantize_rules.py emulates the rule on the CPU, for every value
rcp.approx may return within its one-ulp bound and both readings of `a != 0` under FTZ, and
finds the difference every time):
  - a scale that rounds to 0 while a != 0: r = rcp(0) = +inf, codes 0x7 / 0xF (and 0x7 for exact
    zeros, 0 * inf = NaN) where gpuhil writes 0x0 / 0x8;
  - a block whose odd-position elements are all NaN (an all-NaN block included): scale 0x7F and,
    r being NaN, every code 0x7, where gpuhil scales by the non-NaN maximum (0x00 for an all-NaN
    block);
  - a block whose maximum is an fp32 subnormal (as every bf16 subnormal is): FTZ makes s = 0, scale 0,
    where gpuhil scales it normally once g lifts it above 2^-10 (g = 1e38 in the suite);
  - g > 2^126: rcp(g) flushes to 0, so r = +inf in every nonzero block: exact zeros there get 0x7.
predicted, not shown (they depend on the bits rcp.approx returns): a scale one E4M3 step away where
s lands within a few ulps of an E4M3 rounding midpoint; a code one step away where x * r lands
within a few ulps of an E2M1 threshold, exact ties with a scale that is not a power of two first.
The suite holds bit-exactness; the shown rules are known issues for the test cases they make fail.
On SM90 the kernel body is compiled out (`#if __CUDA_ARCH__ >= 1000`, quantization.cuh:236) and
the outputs, allocated with torch.empty, come back unwritten: a known issue, not a gate.

Requirements: no support metadata. fp4_quantize builds a module for cc 9.0, 10.0, 10.3, 10.7, 11.0,
12.0 and 12.1 and raises ValueError("Invalid backend") for any other (get_fp4_quantization_module,
fp4_quantization.py:274-297). The gate keeps 9.0, so the SM90 bug is held by its known issue,
never hidden by a skip. JIT: nvcc, and cuBLAS headers from the toolkit (toolkit.py).

Environment that changes results, left unset by gpuhil: FLASHINFER_NVFP4_4OVER6 and its
_ERR_MODE, _ERR_USE_FAST_MATH, _E4M3_USE_256 (a different per-block recipe; ignored here, the call
passes nvfp4_4over6=None: fp4_quantization.py:1110-1113, 1167), FLASHINFER_DISABLE_FP4_QUANT_FAST_MATH
or TRTLLM_DISABLE_FP4_QUANT_FAST_MATH (no API argument: envUtils.cpp:365-368; s = a * (g * RN(1/6)),
r = min(RN(1 / (d * RN(1 / g))), FLT_MAX), quantization_utils.cuh:479-492), FLASHINFER_CUDA_ARCH_LIST
(which target the module is compiled for).
"""

from __future__ import annotations

import torch

from ...formats.nvfp4 import BLOCK
from ...gating import Plan, Requirements
from ...kernels.nvfp4_quant.spec import check_layout, output_shapes
from .. import FLASHINFER as LIBRARY
from ..provider import LibraryProvider
from . import toolkit

# The compute capabilities get_fp4_quantization_module builds a module for (fp4_quantization.py:275-285).
FP4_QUANTIZATION_CCS = frozenset({"9.0", "10.0", "10.3", "10.7", "11.0", "12.0", "12.1"})


class Quantize(LibraryProvider):
    name, op, backend, library = "flashinfer", "nvfp4_quantize", "cuda-cpp", LIBRARY
    needs = Requirements(ccs=FP4_QUANTIZATION_CCS)
    refusal_text = r"Invalid backend|only supports input tensor with dtypes"

    def unsupported(self, problem) -> str | None:
        ok = problem.k > 0 and problem.k % BLOCK == 0
        return None if ok else f"fp4_quantize takes K a multiple of {BLOCK} (fp4Quantize.cpp:63), got {problem.k}"

    def plan(self, problem, caps, *, layout: str = "linear") -> Plan:
        check_layout(layout)
        return super().plan(problem, caps)

    def launcher(self, caps, *, layout: str = "linear"):
        from flashinfer import fp4_quantize

        toolkit.require_headers(toolkit.CUBLAS, "NVFP4 quantize")
        swizzled = check_layout(layout) == "swizzled"

        def quantize(inputs, out=None):
            x, g = inputs
            packed, scales = fp4_quantize(x.contiguous(), g, sf_vec_size=BLOCK, sf_use_ue8m0=False,
                                          is_sf_swizzled_layout=swizzled, nvfp4_4over6=None)
            packed_shape, scale_shape = output_shapes(x.shape[0], x.shape[1], layout)
            scales = scales.reshape(scale_shape).view(torch.float8_e4m3fn)
            if out is None:
                return packed.reshape(packed_shape), scales
            out[0].copy_(packed.reshape(packed_shape))
            out[1].copy_(scales)
            return out
        return quantize
