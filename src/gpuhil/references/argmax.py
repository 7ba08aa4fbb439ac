"""Argmax references. The contract is exact: first index of the maximum, NaN counts as the maximum."""

from __future__ import annotations


def reference_argmax(logits):
    """Ground truth on the CPU in float64 (exact for bf16/fp16/fp32 inputs): (values fp32, indices int64)."""
    x = logits.detach().to("cpu", dtype=logits.dtype).double()
    idx = x.argmax(dim=1)  # CPU argmax: first occurrence, NaN wins
    return x.gather(1, idx[:, None])[:, 0].float(), idx


def torch_argmax(logits, *, cluster_n=None, out=None):
    """The peer provider: torch.argmax on the logits' device, values gathered as float32."""
    import torch

    if cluster_n is not None:
        raise ValueError("torch provider has no cluster_n")
    m = logits.shape[0]
    vals, idx = out if out is not None else (torch.empty(m, dtype=torch.float32, device=logits.device),
                                             torch.empty(m, dtype=torch.int64, device=logits.device))
    torch.argmax(logits, dim=1, out=idx)
    vals.copy_(logits.gather(1, idx[:, None])[:, 0])
    return vals, idx
