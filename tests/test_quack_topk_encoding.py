"""quack's top-1 (the `quack-topk1` argmax provider) against our argmax contract, on the CPU and
without quack: its selection restated from its source (quack-kernels 0.6.5, quack/topk.py:112-166,
k = 1) beside gpuhil's reference. It reproduces known issue quack-topk-fp32-index-bits (fp32 values
lose their low log2(N) bits) and shows the NaN and inf rows the suite cannot reach through quack
(its special values run at vocabulary sizes quack refuses), and that bf16 and fp16 come out exact.
"""

import torch

from gpuhil.ops.argmax.reference import reference_argmax
from gpuhil.thirdparty.quack.argmax import MAX_N

N = MAX_N


def quack_top1(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values fp32 [M], indices int64 [M]) by quack's rule: widen to fp32, write the column into
    the low log2(N) bits (bit-inverted where the value is >= 0, so the earlier column wins a tie),
    take the NaN-dropping maximum of the row, read the column back and clear those bits."""
    n = x.shape[1]
    mask = n - 1
    wide = x.float()
    col = torch.arange(n, dtype=torch.int32).expand(x.shape)
    packed = ((wide.view(torch.int32) & ~mask) | (torch.where(wide >= 0, ~col, col) & mask)).view(torch.float32)
    best = torch.where(torch.isnan(packed), float("-inf"), packed).amax(dim=1)
    bits = best.view(torch.int32)
    index = torch.where(best >= 0, ~(bits & mask), bits & mask) & mask
    return (bits & ~mask).view(torch.float32), index.long()


def row(values: dict[int, float], dtype=torch.float32, fill=-1.0) -> torch.Tensor:
    x = torch.full((1, N), fill)
    for i, v in values.items():
        x[0, i] = v
    return x.to(dtype)


def test_bf16_and_fp16_come_out_exact():
    """Widened to fp32 they keep 16 and 13 zero bits, more than the 12 index bits of N = 4096."""
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.bfloat16, torch.float16):
        x = (torch.randn(256, N, generator=gen) * 4).to(dtype)
        x[:8] = torch.randint(-2, 3, (8, N), generator=gen).to(dtype)  # many exact ties: first wins
        vals, idx = quack_top1(x)
        want_vals, want_idx = reference_argmax(x)
        assert torch.equal(idx, want_idx), dtype
        assert torch.equal(vals, want_vals), dtype


def test_fp32_values_lose_their_index_bits():
    """Known issue quack-topk-fp32-index-bits: the value comes back with its low 12 mantissa bits
    cleared, and values within 4096 ulp tie, the earlier column winning."""
    top = torch.nextafter(torch.tensor(10.0), torch.tensor(11.0)).item()
    x = row({7: 10.0, 9: top})
    vals, idx = quack_top1(x)
    want_vals, want_idx = reference_argmax(x)
    assert want_idx.item() == 9 and want_vals.item() == top
    assert idx.item() == 7 and vals.item() == 10.0
    x = row({100: 1.2345678})
    vals, _ = quack_top1(x)
    assert vals.item() != reference_argmax(x)[0].item()


def test_nan_never_wins_and_inf_is_lost():
    """Our contract: NaN is the maximum (first NaN wins), +inf beats every finite value. quack's
    maximum drops NaN, and +inf with index bits written into it is a NaN."""
    for dtype in (torch.bfloat16, torch.float32):
        x = row({100: float("nan"), 200: 5.0}, dtype)
        assert reference_argmax(x)[1].item() == 100 and quack_top1(x)[1].item() == 200
        x = row({100: float("inf"), 200: 5.0}, dtype)
        assert reference_argmax(x)[1].item() == 100 and quack_top1(x)[1].item() == 200
