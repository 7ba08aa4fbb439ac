"""quack's block-scaled varlen GEMM (NVFP4 x NVFP4, `quack.gemm_interface.gemm` with
`cu_seqlens_m`) as an nvfp4_grouped_gemm provider: SM100/SM110/SM120 only
(gemm_tvm_ffi_utils.py:111 "Blockscaled GEMM requires SM100/SM110/SM120"; Hopper has no FP4 MMA).

Operands as the torch peer takes them (Nvfp4GroupedOperands: codes, linear e4m3 block scales, END
offsets, per-expert alpha), converted without a host sync:
- B's scales: per expert, the 128x4 tiling (`swizzle_scales`), which is quack's
  (G, ceil(N/128), ceil(K/64), 32, 4, 4) atom layout byte for byte;
- A's scales: ONE buffer where each expert's rows start on a fresh 128-row tile, tile
  cu[g] // 128 + g (varlen_utils.py:169-183), ceil(T/128) + G - 1 tiles long
  (gemm_tvm_ffi_utils.py:191-199), then tiled the same way (`varlen_block_scales`);
- alpha: quack's is one scalar (or the product of the operands' per-tensor scales,
  gemm_interface.py:238-248), and its epilogue functions refuse block-scaled varlen operands
  (epilogue/frontend.py:776-778). So the GEMM writes fp32 and the per-expert alpha multiplies
  that, with one bf16 rounding at the end, as our kernels round.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ...formats.nvfp4 import SWIZZLE_COLS, SWIZZLE_ROWS
from ...gating import Requirements
from ...ops.nvfp4_moe.reference import swizzle_scales
from .support import BLOCKSCALED_FAMILIES, QuackProvider, blockscaled_cluster, gemm_needs

TILE = SWIZZLE_ROWS  # one scale atom covers 128 rows: quack starts each expert's A scales on a fresh one


def starts_of(offs: torch.Tensor) -> torch.Tensor:
    """quack's cu_seqlens_m (G + 1 start offsets from 0) from our G END offsets."""
    return torch.cat([offs.new_zeros(1), offs])


def padded_scale_rows(offs: torch.Tensor, total: int) -> torch.Tensor:
    """Row of quack's padded A-scale buffer that token t's scales go to: expert g's token r (its
    r-th row) lands on (cu[g] // 128 + g) * 128 + r. Computed on the offsets' device."""
    t = torch.arange(total, device=offs.device)
    ends = offs.long()
    expert = torch.searchsorted(ends, t, right=True)  # the first expert whose end is past t
    start = starts_of(ends)[expert]
    return (start // TILE + expert) * TILE + (t - start)


def varlen_block_scales(a_scale: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """Linear A scales [T, K/16] -> quack's varlen SFA (1, ceil(T/128) + G - 1, ceil(K/64), 32, 4, 4);
    the padding rows are zero."""
    total, cols = a_scale.shape
    tiles = -(-total // TILE) + offs.shape[0] - 1
    padded = torch.zeros(tiles * TILE, cols, dtype=torch.uint8, device=a_scale.device)
    padded[padded_scale_rows(offs, total)] = a_scale.view(torch.uint8)
    col_tiles = -(-cols // SWIZZLE_COLS)
    return swizzle_scales(padded).view(1, tiles, col_tiles, 32, 4, 4).view(a_scale.dtype)


def expert_block_scales(b_scale: torch.Tensor) -> torch.Tensor:
    """Linear B scales [G, N, K/16] -> quack's SFB (G, ceil(N/128), ceil(K/64), 32, 4, 4)."""
    groups, n, cols = b_scale.shape
    return swizzle_scales(b_scale).view(groups, -(-n // TILE), -(-cols // SWIZZLE_COLS), 32, 4, 4)


def row_alpha(alpha: torch.Tensor, offs: torch.Tensor, total: int) -> torch.Tensor:
    """alpha [G] -> one value per token row [T] (no host sync)."""
    counts = torch.diff(offs, prepend=offs.new_zeros(1)).clamp_min(0)
    return alpha.repeat_interleave(counts, output_size=total)


def grouped_gemm(ops, out=None):
    """out [T, N] bf16 = bf16(alpha[g] * A_g @ B_g^T) from Nvfp4GroupedOperands."""
    from quack.blockscaled import BlockScaledOperand
    from quack.gemm_interface import gemm

    total, n = ops.a.shape[0], ops.b.shape[1]
    fp4 = torch.float4_e2m1fn_x2
    a = BlockScaledOperand.from_parts(ops.a.view(fp4), varlen_block_scales(ops.a_scale, ops.offs), "nvfp4")
    # B as quack wants it, (G, K, N) quantized along K: the .mT view of our [G, N, K/2].
    b = BlockScaledOperand.from_parts(ops.b.view(fp4), expert_block_scales(ops.b_scale), "nvfp4").mT
    prod = torch.empty(total, n, dtype=torch.float32, device=ops.a.device)
    gemm(a, b, out=prod, cu_seqlens_m=starts_of(ops.offs), tuned=False)
    prod.mul_(row_alpha(ops.alpha, ops.offs, total)[:, None])  # quack's alpha is one scalar
    if out is None:
        return prod.to(torch.bfloat16)
    out.copy_(prod)
    return out


class CallShape(NamedTuple):
    """What the config quack picks depends on: total rows and N (blockscaled_default_config)."""

    name: str
    total_tokens: int
    n: int


class QuackNvfp4GroupedGemm(QuackProvider):
    name, op = "quack", "nvfp4_grouped_gemm"
    needs = Requirements(needs_dsl=True, arch_families=BLOCKSCALED_FAMILIES)

    def unsupported(self, problem) -> str | None:
        """Both operands FP4: the compiled signature takes K in multiples of 32 (16-byte rows,
        gemm_tvm_ffi_utils.py:576-580), and our fp32 D rows in multiples of 4 values (16 bytes)."""
        bad = [f"{d}={v}" for d, v, m in (("K", problem.k, 32), ("N", problem.n, 4)) if v % m]
        return f"quack's NVFP4 GEMM needs K % 32 and N % 4; problem has {', '.join(bad)}" if bad else None

    def config_needs(self, problem, caps) -> dict:
        """Without a problem (dispatch before it sees operands) the cluster is unknown: each launch
        checks the plan of its own shape."""
        m, n = (problem.total_tokens, problem.n) if problem is not None else (0, 0)
        return gemm_needs(caps.arch_family, blockscaled_cluster(caps.arch_family, m, n))

    def launcher(self, caps):
        def launch(ops, out=None):
            shape = CallShape(f"{ops.a.shape[0]} tokens, N={ops.b.shape[1]}", ops.a.shape[0], ops.b.shape[1])
            self.plan(shape, caps).ensure(caps)
            return grouped_gemm(ops, out)
        return launch
