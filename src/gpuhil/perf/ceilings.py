"""Hardware ceilings measured in the same run as the cases they judge, cached per process."""

from __future__ import annotations

import functools

from .timer import Timer

COPY_BYTES = 1 << 30  # 1 GiB each way: far past any L2, long enough to hide launch cost


@functools.cache
def copy_gbps(timer: Timer) -> float:
    """Device-to-device copy bandwidth, counting bytes read plus bytes written."""
    import torch

    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    t = timer.events(lambda: dst.copy_(src))
    return 2 * COPY_BYTES / (t.median_us * 1e-6) / 1e9


GEMM_N = 8192  # square, large enough to run the tensor cores at their sustained rate


def fp8_gemm(m: int, n: int, k: int):
    """A call of torch._scaled_mm on random e4m3 [m, k] x [k, n] (B column-major, as it wants), unit
    scales, bf16 out: the dense FP8 GEMM both the ceiling and per-shape comparisons time."""
    import torch

    a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16).to(torch.float8_e4m3fn)
    b = torch.randn(n, k, device="cuda", dtype=torch.bfloat16).to(torch.float8_e4m3fn)
    one = torch.ones((), device="cuda")
    return lambda: torch._scaled_mm(a, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)


@functools.cache
def gemm_tflops(timer: Timer, kind: str) -> float:
    """Dense GEMM TFLOP/s through torch on random data: 'bf16' (matmul) or 'fp8' (_scaled_mm, e4m3)."""
    import torch

    n = GEMM_N
    if kind == "bf16":
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        out = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
        t = timer.events(lambda: torch.matmul(a, b, out=out))
    elif kind == "fp8":
        t = timer.events(fp8_gemm(n, n, n))
    else:
        raise ValueError(f"gemm_tflops: kind must be 'bf16' or 'fp8', got {kind!r}")
    return 2 * n**3 / (t.median_us * 1e-6) / 1e12
