"""A team's argmax: two passes over the logits (the row maximum, then the first index holding it),
the contract gpuhil's argmax suite checks (first index on ties, NaN is the maximum)."""

from __future__ import annotations

import torch


def two_pass_argmax(logits: torch.Tensor, out=None):
    m = logits.shape[0]
    vals, idx = out if out is not None else (torch.empty(m, dtype=torch.float32, device=logits.device),
                                             torch.empty(m, dtype=torch.int64, device=logits.device))
    top = logits.amax(dim=1, keepdim=True)  # NaN propagates: a row holding NaN has NaN as its maximum
    hit = (logits == top) | (logits.isnan() & top.isnan())
    torch.argmax(hit.to(torch.uint8), dim=1, out=idx)  # argmax returns the first maximal index
    vals.copy_(top[:, 0])
    return vals, idx
