"""The launch contract both gpuhil grouped-GEMM kernels share, checked on the host before a launch
so a wrong operand is a ValueError that names it, never a fault inside the kernel."""

from __future__ import annotations

from ..compiled import require


def check(q, out) -> tuple[int, int, int, int]:
    """q: recipes.QuantizedOperands, out: [T, N] bf16. Returns (T, N, K, G)."""
    import torch

    a, b, offs, scale_a, scale_b = q.a, q.b, q.offs, q.scale_a, q.scale_b
    f8 = torch.float8_e4m3fn
    require(a.dtype == f8, f"a must be float8_e4m3fn, got {a.dtype}")
    require(b.dtype == f8, f"b must be float8_e4m3fn, got {b.dtype}")
    require(a.dim() == 2, f"a must be 2-D [T, K], got shape {tuple(a.shape)}")
    require(b.dim() == 3, f"b must be 3-D [G, N, K], got shape {tuple(b.shape)}")
    T, K = a.shape
    G, N, Kb = b.shape
    require(Kb == K, f"b's K ({Kb}) must equal a's K ({K})")
    require(K > 0 and K % 16 == 0, f"K must be a positive multiple of 16, got {K}")
    require(N > 0 and N % 8 == 0, f"N must be a positive multiple of 8, got {N}")
    require(G > 0, "b must hold at least one group")
    require(a.is_contiguous(), "a must be contiguous (row-major [T, K])")
    require(b.is_contiguous(), "b must be contiguous ([G, N, K], K contiguous)")
    require(offs.dtype == torch.int32, f"offs must be int32, got {offs.dtype}")
    require(offs.dim() == 1 and offs.shape[0] == G, f"offs must have shape [{G}], got {tuple(offs.shape)}")
    require(offs.is_contiguous(), "offs must be contiguous")
    require(out.dtype == torch.bfloat16, f"out must be bfloat16, got {out.dtype}")
    require(tuple(out.shape) == (T, N), f"out must have shape [{T}, {N}], got {tuple(out.shape)}")
    require(out.is_contiguous(), "out must be contiguous")
    for name, t in (("scale_a", scale_a), ("scale_b", scale_b)):
        require(t.dtype == torch.float32, f"{name} must be float32, got {t.dtype}")
        require(t.is_contiguous(), f"{name} must be contiguous")
    if q.recipe == "tensor":
        require(scale_a.numel() == 1, f"tensor recipe: scale_a must have 1 element, got {scale_a.numel()}")
        require(scale_b.numel() == G, f"tensor recipe: scale_b must have G={G} elements, got {scale_b.numel()}")
    else:
        require(scale_a.numel() == T and scale_a.dim() == 1,
                 f"rowwise recipe: scale_a must be [T={T}], got {tuple(scale_a.shape)}")
        require(tuple(scale_b.shape) == (G, N), f"rowwise recipe: scale_b must be [G={G}, N={N}], got {tuple(scale_b.shape)}")
    dev = a.device
    for name, t in (("a", a), ("b", b), ("offs", offs), ("scale_a", scale_a), ("scale_b", scale_b), ("out", out)):
        require(t.is_cuda and t.device == dev, f"{name} must be a CUDA tensor on {dev}")
    for name, t in (("a", a), ("b", b), ("out", out)):
        require(t.data_ptr() % 16 == 0, f"{name} must be 16-byte aligned")
    require(T < 2**31 and G < 2**31, "T and G must fit in int32")
    return T, N, K, G
