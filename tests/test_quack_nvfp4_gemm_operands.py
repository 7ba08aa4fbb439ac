"""The `quack` NVFP4 grouped-GEMM provider's operand conversion, on the CPU and without quack: our
linear block scales and END offsets become the scale buffers quack's varlen block-scaled GEMM
reads, and our per-expert alpha a per-row factor.

quack's layouts, restated from its source (quack-kernels 0.6.5):
- a scale atom: element [.., rm, rk, i, j, k] of a (.., rm, rk, 32, 4, 4) buffer is the scale of row
  rm * 128 + j * 32 + i and scale column rk * 4 + k (pack_scale_2d_to_blocked_contig,
  blockscaled/quantize.py:637-662), zero past the matrix;
- varlen A: expert g's rows start at atom row cu[g] // 128 + g of ONE buffer
  (varlen_utils.py:169-183) of ceil(T / 128) + G - 1 atom rows (gemm_tvm_ffi_utils.py:191-199).
Splits: empty experts (first, middle, last), single tokens, experts ending on a 128 boundary, a
total that is a multiple of 128; scale columns not a multiple of 4.
"""

import pytest
import torch

from gpuhil.thirdparty.quack.nvfp4_grouped_gemm import (expert_block_scales, padded_scale_rows, row_alpha, starts_of,
                                                        varlen_block_scales)

SPLITS = {
    "empty-first-middle-last": (0, 5, 0, 131, 1, 0),
    "ends-on-tile-boundaries": (128, 128, 1, 127, 0, 256),
    "one-expert-one-token": (1,),
    "many-small": (3, 0, 7, 1, 1, 0, 2, 9, 0, 0, 4, 1),
}


def random_scales(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, 0x7F, shape, generator=gen, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn)


def offsets(split):
    return torch.tensor(split, dtype=torch.int32).cumsum(0).to(torch.int32)


def atom(buffer, row, col):
    """The byte quack reads for (row, scale column) of a (rm, rk, 32, 4, 4) buffer."""
    return int(buffer[row // 128, col // 4, row % 32, (row % 128) // 32, col % 4])


@pytest.mark.parametrize("split", SPLITS.values(), ids=SPLITS.keys())
def test_each_experts_a_scales_start_on_their_own_atom_row(split):
    offs = offsets(split)
    total, cols = int(offs[-1]), 5
    a_scale = random_scales((total, cols), len(split))
    sfa = varlen_block_scales(a_scale, offs)
    tiles = -(-total // 128) + len(split) - 1
    assert sfa.shape == (1, tiles, 2, 32, 4, 4) and sfa.dtype == torch.float8_e4m3fn
    got = sfa.view(torch.uint8)[0]
    written = torch.zeros(got.shape, dtype=torch.bool)
    for g, (start, end) in enumerate(zip(starts_of(offs).tolist(), offs.tolist())):
        for r in range(end - start):
            row = (start // 128 + g) * 128 + r
            for c in range(cols):
                assert atom(got, row, c) == int(a_scale.view(torch.uint8)[start + r, c]), (g, r, c)
                written[row // 128, c // 4, row % 32, (row % 128) // 32, c % 4] = True
    assert (got[~written] == 0).all(), "padding must be zero"


@pytest.mark.parametrize("split", SPLITS.values(), ids=SPLITS.keys())
def test_the_padded_rows_fit_quacks_bound_and_never_collide(split):
    offs = offsets(split)
    total = int(offs[-1])
    rows = padded_scale_rows(offs, total)
    assert rows.unique().numel() == total
    assert int(rows.max()) < (-(-total // 128) + len(split) - 1) * 128


def test_b_scales_are_per_expert_atoms():
    b_scale = random_scales((3, 200, 7), 1)
    sfb = expert_block_scales(b_scale)
    assert sfb.shape == (3, 2, 2, 32, 4, 4) and sfb.dtype == torch.float8_e4m3fn
    got, want = sfb.view(torch.uint8), b_scale.view(torch.uint8)
    for g in range(3):
        for n in (0, 31, 32, 127, 128, 199):
            for c in range(7):
                assert atom(got[g], n, c) == int(want[g, n, c]), (g, n, c)
        assert atom(got[g], 200, 0) == 0 and atom(got[g], 0, 7) == 0


def test_per_expert_alpha_becomes_one_factor_per_row():
    split = SPLITS["empty-first-middle-last"]
    alpha = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    rows = row_alpha(alpha, offsets(split), sum(split))
    assert rows.tolist() == [2.0] * 5 + [4.0] * 131 + [5.0]
