"""A wrong operand given to a compiled grouped GEMM is refused on the host, with a ValueError that
names it, before anything is launched; the check that does it is cached per layout, so the test
calls a launch that already ran on good operands of the same shapes (the cached path) and then
breaks one thing at a time. A launch that went ahead would fault or write the poisoned output.

Why this grid: one break per fact the cached check reads (dtype, shape, contiguity, device) and one
per-call fact (base alignment), on both of our providers, on a problem that every device that runs
either kernel supports (odd-tokens: N=200, K=512, an empty expert).
"""

from dataclasses import replace

import pytest
import torch

from fixtures.grouped_gemm import make_operands
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
from gpuhil.ops.fp8_grouped_gemm.providers import WARP, WGMMA
from gpuhil.testing import case

PROBLEM = next(p for p in adversarial_problems() if p.name == "odd-tokens-n-not-tile-multiple")


def misaligned(t):
    """The same values at a base address one byte past a 16-byte boundary."""
    flat = torch.empty(t.numel() * t.element_size() + 1, dtype=torch.uint8, device=t.device)[1:]
    view = flat.view(t.dtype).view(t.shape)
    view.copy_(t)
    return view


BREAKS = {
    "a misaligned": (lambda q, out: (replace(q, a=misaligned(q.a)), out), "a must be 16-byte aligned"),
    "a bf16": (lambda q, out: (replace(q, a=q.a.to(torch.bfloat16)), out), "a must be float8_e4m3fn"),
    "b not contiguous": (lambda q, out: (replace(q, b=q.b.transpose(1, 2).contiguous().transpose(1, 2)), out),
                         "b must be contiguous"),
    "offs int64": (lambda q, out: (replace(q, offs=q.offs.long()), out), "offs must be int32"),
    "scale_b one per expert": (lambda q, out: (replace(q, scale_b=q.scale_b[:, 0].contiguous()), out),
                               r"scale_b must be \[G="),
    "out float32": (lambda q, out: (q, out.float()), "out must be bfloat16"),
    "out on the CPU": (lambda q, out: (q, out.cpu()), "out must be a CUDA tensor"),
}


def cases():
    for provider in (WARP, WGMMA):
        yield case(provider, PROBLEM, provider, id=provider.name)


@pytest.mark.gpu
@pytest.mark.parametrize("break_name", sorted(BREAKS))
@pytest.mark.parametrize("provider", list(cases()))
def test_a_wrong_operand_is_refused_by_name_before_launch(provider, break_name, rng, capabilities):
    q = make_operands(PROBLEM, "rowwise", rng)
    out = torch.empty(PROBLEM.total_tokens, PROBLEM.n, dtype=torch.bfloat16, device="cuda")
    launch = provider.prepare(q, capabilities)
    launch(q, out)  # good operands first: the layout check is cached and the packed path is in use
    torch.cuda.synchronize()
    make_bad, message = BREAKS[break_name]
    bad_q, bad_out = make_bad(q, out)
    bad_out.fill_(float("nan"))
    with pytest.raises(ValueError, match=message):
        launch(bad_q, bad_out)
    torch.cuda.synchronize()  # a launch that went ahead anyway would fault here
    assert torch.isnan(bad_out).all(), f"{break_name}: the output was written although the call was refused"
