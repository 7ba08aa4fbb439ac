"""The two short kernel checks of runner health (their rules: gpuhil.health.checks): a matmul whose every
entry is known exactly, and a device-to-device copy's bandwidth. A second or two on a GPU."""

from __future__ import annotations

import torch

KNOWN_ANSWER_N = 1024
COPY_BYTES = 256 << 20  # well past any part's L2, so the copy streams through DRAM
COPY_ROUNDS, COPY_ITERS = 3, 10


def fixed_operands(n: int = KNOWN_ANSWER_N) -> tuple[torch.Tensor, torch.Tensor]:
    """Two n x n matrices of small integers (-6..6, -5..5): every product entry is an integer below
    2**24 in magnitude (n * 30), so fp32 (and TF32: the inputs fit its mantissa) computes it exactly
    in any summation order."""
    idx = torch.arange(n * n, dtype=torch.int64)
    a = ((idx * 7 + 3) % 13 - 6).reshape(n, n).to(torch.float32)
    b = ((idx * 5 + 1) % 11 - 5).reshape(n, n).to(torch.float32)
    return a, b


def known_answer_mismatch(device: torch.device) -> str | None:
    """None when the device's product and its sum equal the exact answer, else what differed."""
    a, b = fixed_operands()
    expected = a.double() @ b.double()  # exact: integers far below 2**53
    product = a.to(device) @ b.to(device)
    total = float(product.double().sum().item())
    got = product.cpu().double()
    wrong = (got != expected).nonzero()
    if len(wrong):
        i, j = (int(x) for x in wrong[0])
        return f"{len(wrong)} of {got.numel()} entries differ (C[{i},{j}] = {got[i, j]:g}, expected {expected[i, j]:g})"
    if total != float(expected.sum()):
        return f"sum {total:g}, expected {float(expected.sum()):g}"
    return None


def copy_bandwidth_gbs(device: torch.device) -> float:
    """Bytes read plus bytes written per second by dst.copy_(src) on the device, best of a few rounds
    (a round slowed by something passing is not the device's speed)."""
    free, _ = torch.cuda.mem_get_info(device)
    nbytes = min(COPY_BYTES, free // 4)
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch, outside the timing
    best = 0.0
    for _ in range(COPY_ROUNDS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(COPY_ITERS):
            dst.copy_(src)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1e3
        best = max(best, 2 * nbytes * COPY_ITERS / seconds / 1e9)
    return best
