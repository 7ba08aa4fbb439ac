"""quack's varlen GEMM as an FP8 grouped-GEMM provider: the experts' tokens are quack's sequences
(`cu_seqlens_m`), and a small epilogue multiplies the fp32 accumulator by our scales.

Same inputs, output and semantics as the torch peer (torch._scaled_grouped_mm): per-tensor scales
are written out rowwise exactly (`rowwise_scales`), then
    out[t, n] = bf16(acc[t, n] * scale_a[t] * scale_b[g, n])      for token t of expert g,
rounded once. quack's plain `gemm` epilogue cannot do this: its alpha is one scalar and its
row/column vectors are added (gemm_default_epi.py:22-67), so the scales ride an epilogue function
(@gemm_epilogue, epilogue/frontend.py:1737) with both operands pinned, because quack infers an
operand's kind from its shape and a (G, N) or (T,) vector would be ambiguous when sizes coincide
(frontend.py:217-243). Untuned (tuned=True would benchmark quack's config space on first sight of each
shape): quack's per-arch default config, except on SM90, see SM90_CONFIG.
"""

from __future__ import annotations

import functools

from ...gating import Requirements
from ...ops.fp8_grouped_gemm.operands import rowwise_scales
from .support import FP8_GEMM_FAMILIES, QuackProvider, default_gemm_cluster, gemm_needs

# quack's SM90 default, 128x192 ping-pong on a 2x1 cluster (gemm_config.py:364-372), spills its
# accumulators to local memory with FP8 operands: each MMA warpgroup owns a whole 128x192 tile (ping-pong
# atom layout 1x1, gemm_sm90.py:270-271), 192 fp32 registers a thread, and FP8 always takes the
# two-level "slow" accumulation (fp8_slow_accum, gemm_sm90.py:211; its fp8_fast_accum switch,
# gemm_sm90.py:160, is reached by no entry point), which keeps a second copy (acc_slow,
# gemm_sm90.py:1207-1208, 1656-1658): 384 registers against the 240 of setmaxnreg (gemm_sm90.py:297-319).
# Compiled for sm_90a (nvidia-cutlass-dsl 4.8.1) our call gets 872 B of stack per thread and 724
# STL/LDL, and ptxas serializes every wgmma (a WARPGROUP.DEPBAR after each QGMMA): measured on an H100
# at 5 % of roofline, 10-15x slower than torch. The cooperative 128x192 tile on the same cluster splits
# M over two warpgroups (gemm_sm90.py:264-267): 96 + 96 registers, no stack, the wgmmas of a k-tile
# batched under one wait. Only pingpong changes, so the cluster (and our gate) stays quack's default's.
# Kept as plain fields: quack is not importable where gates are checked (see __init__).
SM90_CONFIG = dict(tile_m=128, tile_n=192, pingpong=False, cluster_m=2, cluster_n=1, is_dynamic_persistent=False,
                   device_capacity=9)


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


@functools.cache
def pinned_config(family: int | None):
    """The GemmConfig we pin on this arch family, or None for quack's default. One object per family:
    quack's warm path keys a pinned config by its id (epilogue/frontend.py:1439-1442)."""
    if family != 9:
        return None
    from quack.gemm_config import GemmConfig

    return GemmConfig(**SM90_CONFIG)


def grouped_gemm(q, out=None, *, family: int | None = None):
    """out [T, N] bf16 from QuantizedOperands (a [T, K] and b [G, N, K] e4m3, offs [G] int32 ends), with
    the config pinned for the device's arch `family` (quack is imported here, at the first launch)."""
    import torch

    scale_a, scale_b = rowwise_scales(q)
    starts = torch.cat([q.offs.new_zeros(1), q.offs])  # quack's cu_seqlens_m: G + 1 offsets from 0
    # B is passed (G, K, N) as the torch convention has it, a view of our K-contiguous [G, N, K]:
    # FP8 operands must be k-major (gemm_sm90.py:2275).
    res = _scaled_epilogue()(q.a, q.b.mT, cu_seqlens_m=starts, out=None if out is None else {"D": out},
                             out_dtype=torch.bfloat16, tuned=False, config=pinned_config(family),
                             scale_a=scale_a, scale_b=scale_b)
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
        cluster = (SM90_CONFIG["cluster_m"] * SM90_CONFIG["cluster_n"] if caps.arch_family == 9
                   else default_gemm_cluster(caps.arch_family))
        return gemm_needs(caps.arch_family, cluster)

    def launcher(self, caps):
        return functools.partial(grouped_gemm, family=caps.arch_family)
