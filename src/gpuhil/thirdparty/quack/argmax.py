"""quack's top-k at k = 1 as an argmax provider, `quack-topk1`: quack has no argmax.

Its limits, quack's own asserts (topk.py:33-36): N a power of two and N <= 4096. Of our vocabulary
sizes only N = 4096 qualifies, so it runs there and every other problem skips with that reason.

How it selects (topk.py:112-166): each value is widened to fp32 and the column index is written
into the low log2(N) bits of it (inverted for non-negative values, so the earlier column wins a
tie), the row is reduced with the NaN-dropping fmax (sort/bitonic_sort.py:81), and the index bits
are read back and cleared. Where that breaks our contract (first index of the maximum, NaN is the
maximum, exact value), shown on the CPU in tests/test_quack_topk_encoding.py:
- fp32: the low 12 mantissa bits (N = 4096) are overwritten, so the value comes back truncated and
  values within 4096 ulp tie (known issue quack-topk-fp32-index-bits: the suite's fp32 cases);
- NaN never wins (fmax drops it) and +inf is lost (inf with index bits is a NaN). The suite's
  special values run at vocabulary sizes quack refuses, so no case of ours reaches this.
bf16 and fp16 keep 16 and 13 zero bits once widened: their values and ties are exact.
"""

from __future__ import annotations

from ...gating import Requirements
from .support import README_FAMILIES, QuackProvider

MAX_N = 4096  # topk.py:36
DTYPES = ("bf16", "fp16", "fp32")  # topk.py:247
# TopK.compile builds its fake values and indices with a row stride divisible by 128 bits / element
# width (topk.py:220-223: 8 for bf16, 4 for fp32). Buffers of one column would have stride 1 (which
# topk_fwd allocates, and TVM-FFI refuses): rows of 8, of which column 0 is read.
ROW = 8


def unsupported_reason(problem) -> str | None:
    n = problem.n
    if n & (n - 1) or n > MAX_N:
        return f"quack's topk needs N a power of two and N <= {MAX_N} (topk.py:33-36), problem has N={n}"
    if problem.dtype not in DTYPES:
        return f"quack's topk takes {', '.join(DTYPES)} (topk.py:247), problem is {problem.dtype}"
    return None


def argmax(logits, out=None):
    """(values fp32 [M], indices int64 [M]) as the torch peer returns them."""
    import torch
    from quack.topk import _topk_fwd

    m, device = logits.shape[0], logits.device
    values = torch.empty(m, ROW, dtype=logits.dtype, device=device)[:, :1]
    indices = torch.empty(m, ROW, dtype=torch.int32, device=device)[:, :1]
    _topk_fwd(logits, 1, False, values, indices)
    vals, idx = out if out is not None else (torch.empty(m, dtype=torch.float32, device=device),
                                             torch.empty(m, dtype=torch.int64, device=device))
    vals.copy_(values[:, 0])
    idx.copy_(indices[:, 0])
    return vals, idx


class QuackTopk1(QuackProvider):
    name, op = "quack-topk1", "argmax"
    # topk has no arch table of its own: held to the GPUs quack's README supports.
    needs = Requirements(needs_dsl=True, arch_families=README_FAMILIES)

    def unsupported(self, problem) -> str | None:
        return unsupported_reason(problem)

    def launcher(self, caps):
        return argmax
