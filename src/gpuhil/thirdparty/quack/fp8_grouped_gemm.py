"""quack's varlen GEMM as an FP8 grouped-GEMM provider: the experts' tokens are quack's sequences
(`cu_seqlens_m`), and a small epilogue multiplies the fp32 accumulator by our scales.

Same inputs, output and semantics as the torch peer (torch._scaled_grouped_mm): per-tensor scales
are written out rowwise exactly (`rowwise_scales`), then
    out[t, n] = bf16(acc[t, n] * scale_a[t] * scale_b[g, n])      for token t of expert g,
rounded once. quack's plain `gemm` epilogue cannot do this: its alpha is one scalar and its
row/column vectors are added (gemm_default_epi.py:22-67), so the scales ride an epilogue function
(@gemm_epilogue, epilogue/frontend.py:1737) with both operands pinned, because quack infers an
operand's kind from its shape and a (G, N) or (T,) vector would be ambiguous when sizes coincide
(frontend.py:217-243). Untuned: quack's per-arch default config (tuned=True would benchmark its
config space on first sight of each shape).
"""

from __future__ import annotations

import functools

from ...gating import Requirements
from ...ops.fp8_grouped_gemm.operands import rowwise_scales
from .support import FP8_GEMM_FAMILIES, QuackProvider, default_gemm_cluster, gemm_needs


def _scale_rows_and_columns(acc, scale_a, scale_b):
    """The epilogue quack traces once per accumulator element (no globals: its cache key
    fingerprints this function's source and what it references)."""
    return {"D": acc * scale_a * scale_b}


@functools.cache
def _scaled_epilogue():
    from quack.epilogue import gemm_epilogue
    from quack.epilogue.ops import ColVecLoad, RowVecLoad

    # ColVecLoad under varlen reads a (T,) vector at each expert's cu_seqlens offset; RowVecLoad
    # reads row g of a (G, N) one (epilogue/ops.py:720-740).
    return gemm_epilogue(ops={"scale_a": ColVecLoad("scale_a"),
                              "scale_b": RowVecLoad("scale_b")})(_scale_rows_and_columns)


def grouped_gemm(q, out=None):
    """out [T, N] bf16 from QuantizedOperands (a [T, K] and b [G, N, K] e4m3, offs [G] int32 ends)."""
    import torch

    scale_a, scale_b = rowwise_scales(q)
    starts = torch.cat([q.offs.new_zeros(1), q.offs])  # quack's cu_seqlens_m: G + 1 offsets from 0
    # B is passed (G, K, N) as the torch convention has it, a view of our K-contiguous [G, N, K]:
    # FP8 operands must be k-major (gemm_sm90.py:2275).
    res = _scaled_epilogue()(q.a, q.b.mT, cu_seqlens_m=starts, out=None if out is None else {"D": out},
                             out_dtype=torch.bfloat16, tuned=False, scale_a=scale_a, scale_b=scale_b)
    return res["D"]


class QuackFp8GroupedGemm(QuackProvider):
    name, op = "quack", "fp8_grouped_gemm"
    needs = Requirements(needs_dsl=True, arch_families=FP8_GEMM_FAMILIES)

    def unsupported(self, problem) -> str | None:
        """The compiled signature takes strides that are multiples of 16 bytes
        (gemm_tvm_ffi_utils.py:590-592): rows of K e4m3 values (A, B) and of N bf16 values (D)."""
        bad = [f"{d}={v}" for d, v, m in (("K", problem.k, 16), ("N", problem.n, 8)) if v % m]
        return f"quack's GEMM needs K % 16 and N % 8 (16-byte rows); problem has {', '.join(bad)}" if bad else None

    def config_needs(self, problem, caps) -> dict:
        return gemm_needs(caps.arch_family, default_gemm_cluster(caps.arch_family))

    def launcher(self, caps):
        return grouped_gemm
