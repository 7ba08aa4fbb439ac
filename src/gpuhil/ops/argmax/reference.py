"""Argmax reference. The contract is exact: first index of the maximum, NaN counts as the maximum."""

from __future__ import annotations


def reference_argmax(logits):
    """Ground truth on the CPU in float64 (exact for bf16/fp16/fp32 inputs): (values fp32, indices int64)."""
    x = logits.detach().to("cpu", dtype=logits.dtype).double()
    idx = x.argmax(dim=1)  # CPU argmax: first occurrence, NaN wins
    return x.gather(1, idx[:, None])[:, 0].float(), idx
