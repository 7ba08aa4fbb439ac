"""A wrong operand given to a compiled argmax is refused on the host, with a ValueError that names it,
before anything is launched. The test calls a launch that already ran on good operands (the packed
path in use) and then breaks one thing at a time; a launch that went ahead would write the poisoned
outputs, or fault on a host address and take the process's CUDA context with it.

Why this grid: one break per fact the launch checks (device, dtype, length, stride), on the config
dispatch picks and on the split through global memory (it also hands the kernel a workspace), at
the shape the kernel exists for (batched greedy decoding over a Qwen vocabulary).
"""

import pytest
import torch

from gpuhil.ops import provider
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.testing import case

PROBLEM = ArgmaxProblem(64, 151936, "bf16")
CUTE = provider("argmax", "gpuhil-cute")
POISON_VALUE, POISON_INDEX = -12345.0, -1

BREAKS = {  # name: (logits, out_val, out_idx -> the broken ones), the message
    "logits on the CPU": (lambda x, v, i: (x.cpu(), v, i), "logits must be a CUDA tensor, got cpu"),
    "out_val on the CPU": (lambda x, v, i: (x, v.cpu(), i), "out_val must be on cuda:0 like the logits, got cpu"),
    "out_idx on the CPU": (lambda x, v, i: (x, v, i.cpu()), "out_idx must be on cuda:0 like the logits, got cpu"),
    "logits fp16": (lambda x, v, i: (x.half(), v, i), "does not match compiled bf16"),
    "logits column-strided": (lambda x, v, i: (x.t().contiguous().t(), v, i), "unit column stride"),
    "out_idx int32": (lambda x, v, i: (x, v, i.int()), "out_idx int64"),
    "out_val one short": (lambda x, v, i: (x, v[:-1], i), "at least M elements"),
}


def cases():
    for split in (None, {"split_n": 2}):
        yield case(CUTE, PROBLEM, split, id="gmem-split2" if split else "dispatch", **(split or {}))


@pytest.mark.gpu
@pytest.mark.parametrize("break_name", sorted(BREAKS))
@pytest.mark.parametrize("split", list(cases()))
def test_a_wrong_operand_is_refused_by_name_before_launch(split, break_name, rng, capabilities):
    logits = torch.randn(PROBLEM.m, PROBLEM.n, generator=rng).to(torch.bfloat16).cuda()
    vals = torch.empty(PROBLEM.m, dtype=torch.float32, device="cuda")
    idx = torch.empty(PROBLEM.m, dtype=torch.int64, device="cuda")
    launch = CUTE.prepare(logits, capabilities, **(split or {}))
    launch(logits, (vals, idx))  # good operands first: the packed path is in use
    torch.cuda.synchronize()
    make_bad, message = BREAKS[break_name]
    bad_logits, bad_vals, bad_idx = make_bad(logits, vals, idx)
    bad_vals.fill_(POISON_VALUE)
    bad_idx.fill_(POISON_INDEX)
    with pytest.raises(ValueError, match=message):
        launch(bad_logits, (bad_vals, bad_idx))
    torch.cuda.synchronize()  # a launch that went ahead anyway would fault here
    assert (bad_vals == POISON_VALUE).all() and (bad_idx == POISON_INDEX).all(), \
        f"{break_name}: an output was written although the call was refused"
