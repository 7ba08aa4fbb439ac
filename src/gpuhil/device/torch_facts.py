"""Facts about the installed torch build that Requirements can name (`torch_ops`).

An operator counts as available when this build has it and the device's arch is one the build
dispatches it on (the arch list torch's own checks enforce). On an attached device the session
also tries each once with a tiny call, since a build can have the symbol and still refuse the arch.
"""

from __future__ import annotations

import functools

# torch._scaled_grouped_mm (rowwise FP8): torch checks for sm_90 / sm_100 in its CUDA dispatch.
# torch._grouped_mm (bf16, 2d x 3d): the same CUTLASS grouped kernels, sm_90 / sm_100.
_OP_ARCH_FAMILIES = {"_scaled_grouped_mm": frozenset({9, 10}), "_scaled_mm": frozenset({8, 9, 10, 12}),
                     "_grouped_mm": frozenset({9, 10})}


def ops_for(arch_family: int | None) -> frozenset[str]:
    """Operators this torch build offers for devices of `arch_family` (no device needed)."""
    if not any(arch_family in families for families in _OP_ARCH_FAMILIES.values()):
        return frozenset()  # none could apply: no need to import torch (seconds of CPU) to say so
    try:
        import torch
    except ImportError:
        return frozenset()
    return frozenset(op for op, families in _OP_ARCH_FAMILIES.items()
                     if hasattr(torch, op) and arch_family in families)


def confirmed_on_device(ops: frozenset[str]) -> frozenset[str]:
    """The subset of `ops` that really runs on the current CUDA device."""
    return frozenset(op for op in ops if _runs_on_device(op))


@functools.cache
def _runs_on_device(op: str) -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        if op == "_scaled_grouped_mm":
            a = torch.zeros(32, 32, device="cuda").to(torch.float8_e4m3fn)
            b = torch.zeros(2, 32, 32, device="cuda").to(torch.float8_e4m3fn).transpose(-2, -1)
            offs = torch.tensor([16, 32], device="cuda", dtype=torch.int32)
            torch._scaled_grouped_mm(a, b, torch.ones(32, device="cuda"), torch.ones(2, 32, device="cuda"),
                                     offs=offs, out_dtype=torch.bfloat16)
        elif op == "_grouped_mm":
            a = torch.zeros(32, 32, device="cuda", dtype=torch.bfloat16)
            b = torch.zeros(2, 32, 32, device="cuda", dtype=torch.bfloat16).transpose(-2, -1)
            torch._grouped_mm(a, b, offs=torch.tensor([16, 32], device="cuda", dtype=torch.int32))
        elif op == "_scaled_mm":
            a = torch.zeros(32, 32, device="cuda").to(torch.float8_e4m3fn)
            one = torch.ones((), device="cuda")
            torch._scaled_mm(a, a.t(), one, one, out_dtype=torch.bfloat16)
        torch.cuda.synchronize()
        return True
    except (RuntimeError, NotImplementedError):
        return False
