"""The host-side check of the NVFP4 grouped-GEMM operands both kernels take (the operand type itself,
gpuhil.ops.nvfp4_moe.operands.Nvfp4GroupedOperands, is the op's: anything with its fields works here).

Contract (shared with the reference): E2M1 codes packed two to a byte (element 2j in the low
nibble), E4M3 block scales one per 16 consecutive K elements in a linear row-major layout, and
per-expert alpha = 1 / (global_a * global_b[g]) precomputed on the host. A wrong operand is a
ValueError that names it, raised before any launch, never a fault inside the kernel.
"""

from __future__ import annotations

from ..compiled import require
from .spec import K_MULTIPLE, N_MULTIPLE


def check(ops, out) -> tuple[int, int, int, int]:
    """Validate `ops` (fields a, a_scale, b, b_scale, offs, alpha) and `out` [T, N] bf16.
    Returns (T, N, K, G) with K in elements."""
    import torch

    a, a_scale, b, b_scale, offs, alpha = ops.a, ops.a_scale, ops.b, ops.b_scale, ops.offs, ops.alpha
    require(a.dtype == torch.uint8, f"a must be uint8 (two E2M1 codes a byte), got {a.dtype}")
    require(b.dtype == torch.uint8, f"b must be uint8 (two E2M1 codes a byte), got {b.dtype}")
    require(a.dim() == 2, f"a must be 2-D [T, K/2], got shape {tuple(a.shape)}")
    require(b.dim() == 3, f"b must be 3-D [G, N, K/2], got shape {tuple(b.shape)}")
    T, half_k = a.shape
    G, N, half_kb = b.shape
    K = 2 * half_k
    require(half_kb == half_k, f"b's packed K ({half_kb} bytes) must equal a's ({half_k} bytes)")
    require(K > 0 and K % K_MULTIPLE == 0, f"K must be a positive multiple of {K_MULTIPLE}, got {K}")
    require(N > 0 and N % N_MULTIPLE == 0, f"N must be a positive multiple of {N_MULTIPLE}, got {N}")
    require(G > 0, "b must hold at least one group")
    for name, t, shape in (("a_scale", a_scale, (T, K // 16)), ("b_scale", b_scale, (G, N, K // 16))):
        require(t.dtype == torch.float8_e4m3fn, f"{name} must be float8_e4m3fn, got {t.dtype}")
        require(tuple(t.shape) == shape, f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    require(offs.dtype == torch.int32, f"offs must be int32, got {offs.dtype}")
    require(offs.dim() == 1 and offs.shape[0] == G, f"offs must have shape [{G}], got {tuple(offs.shape)}")
    require(alpha.dtype == torch.float32, f"alpha must be float32, got {alpha.dtype}")
    require(alpha.dim() == 1 and alpha.shape[0] == G, f"alpha must have shape [{G}], got {tuple(alpha.shape)}")
    require(out.dtype == torch.bfloat16, f"out must be bfloat16, got {out.dtype}")
    require(tuple(out.shape) == (T, N), f"out must have shape [{T}, {N}], got {tuple(out.shape)}")
    named = (("a", a), ("a_scale", a_scale), ("b", b), ("b_scale", b_scale), ("offs", offs), ("alpha", alpha),
             ("out", out))
    dev = a.device
    for name, t in named:
        require(t.is_contiguous(), f"{name} must be contiguous")
        require(t.is_cuda and t.device == dev, f"{name} must be a CUDA tensor on {dev}")
    for name, t, align in (("a", a, 16), ("b", b, 16), ("out", out, 16), ("a_scale", a_scale, 4),
                           ("b_scale", b_scale, 4), ("offs", offs, 4), ("alpha", alpha, 4)):
        require(t.data_ptr() % align == 0, f"{name} must be {align}-byte aligned")
    require(T < 2**31 and G < 2**31, "T and G must fit in int32")
    return T, N, K, G
