"""The launch contract both gpuhil grouped-GEMM kernels share, checked on the host before a launch
so a wrong operand is a ValueError that names it, never a fault inside the kernel.

The check runs on every call, so it is split by cost: everything that depends only on the operands'
layout (shapes, dtypes, contiguity, device) is decided once per layout and cached; per call only the
layout tuple and the base addresses are read (once each: the launch passes the same addresses and
reads its stream on the same device index) and the alignment checked."""

from __future__ import annotations

import functools

from ..compiled import require

NAMES = ("a", "b", "offs", "scale_a", "scale_b", "out")


def check(q, out) -> tuple[tuple[int, ...], tuple[int, int, int, int], int]:
    """q: recipes.QuantizedOperands, out: [T, N] bf16. Returns the operands' base addresses in the
    kernels' pointer order (a, b, out, offs, scale_a, scale_b), (T, N, K, G) and the CUDA device
    index they all share (the launch reads its stream there)."""
    a, b, offs, sa, sb = q.a, q.b, q.offs, q.scale_a, q.scale_b
    device = a.get_device()
    # One flat tuple, written out: this runs on every launch, and a generator of per-operand tuples
    # took 45 % longer (a nested tuple written out, 23 %).
    dims = check_layout(q.recipe, a.shape, a.dtype, a.is_contiguous(), device,
                        b.shape, b.dtype, b.is_contiguous(), b.get_device(),
                        offs.shape, offs.dtype, offs.is_contiguous(), offs.get_device(),
                        sa.shape, sa.dtype, sa.is_contiguous(), sa.get_device(),
                        sb.shape, sb.dtype, sb.is_contiguous(), sb.get_device(),
                        out.shape, out.dtype, out.is_contiguous(), out.get_device())
    addresses = (a.data_ptr(), b.data_ptr(), out.data_ptr(), offs.data_ptr(), sa.data_ptr(), sb.data_ptr())
    if (addresses[0] | addresses[1] | addresses[2]) % 16:
        for name, address in zip(("a", "b", "out"), addresses):
            require(address % 16 == 0, f"{name} must be 16-byte aligned")
    return addresses, dims, device


@functools.lru_cache(maxsize=256)
def check_layout(recipe: str, *layout) -> tuple[int, int, int, int]:
    """The whole contract on (shape, dtype, contiguous, device index; -1 off the GPU) per operand, in
    NAMES order, flattened."""
    import torch

    meta = {name: layout[4 * i:4 * i + 4] for i, name in enumerate(NAMES)}
    (a_shape, a_dtype, a_contig, dev), (b_shape, b_dtype, b_contig, _) = meta["a"], meta["b"]
    f8 = torch.float8_e4m3fn
    require(a_dtype == f8, f"a must be float8_e4m3fn, got {a_dtype}")
    require(b_dtype == f8, f"b must be float8_e4m3fn, got {b_dtype}")
    require(len(a_shape) == 2, f"a must be 2-D [T, K], got shape {tuple(a_shape)}")
    require(len(b_shape) == 3, f"b must be 3-D [G, N, K], got shape {tuple(b_shape)}")
    T, K = a_shape
    G, N, Kb = b_shape
    require(Kb == K, f"b's K ({Kb}) must equal a's K ({K})")
    require(K > 0 and K % 16 == 0, f"K must be a positive multiple of 16, got {K}")
    require(N > 0 and N % 8 == 0, f"N must be a positive multiple of 8, got {N}")
    require(G > 0, "b must hold at least one group")
    require(a_contig, "a must be contiguous (row-major [T, K])")
    require(b_contig, "b must be contiguous ([G, N, K], K contiguous)")
    offs_shape, offs_dtype, offs_contig, _ = meta["offs"]
    require(offs_dtype == torch.int32, f"offs must be int32, got {offs_dtype}")
    require(len(offs_shape) == 1 and offs_shape[0] == G, f"offs must have shape [{G}], got {tuple(offs_shape)}")
    require(offs_contig, "offs must be contiguous")
    out_shape, out_dtype, out_contig, _ = meta["out"]
    require(out_dtype == torch.bfloat16, f"out must be bfloat16, got {out_dtype}")
    require(tuple(out_shape) == (T, N), f"out must have shape [{T}, {N}], got {tuple(out_shape)}")
    require(out_contig, "out must be contiguous")
    for name in ("scale_a", "scale_b"):
        _, dtype, contig, _ = meta[name]
        require(dtype == torch.float32, f"{name} must be float32, got {dtype}")
        require(contig, f"{name} must be contiguous")
    sa_shape, sb_shape = meta["scale_a"][0], meta["scale_b"][0]
    if recipe == "tensor":
        require(sa_shape.numel() == 1, f"tensor recipe: scale_a must have 1 element, got {sa_shape.numel()}")
        require(sb_shape.numel() == G, f"tensor recipe: scale_b must have G={G} elements, got {sb_shape.numel()}")
    else:
        require(len(sa_shape) == 1 and sa_shape[0] == T, f"rowwise recipe: scale_a must be [T={T}], got {tuple(sa_shape)}")
        require(tuple(sb_shape) == (G, N), f"rowwise recipe: scale_b must be [G={G}, N={N}], got {tuple(sb_shape)}")
    for name in NAMES:
        device = meta[name][3]
        require(device >= 0, f"{name} must be a CUDA tensor")
        require(device == dev, f"{name} must be on cuda:{dev} like a, got cuda:{device}")
    require(T < 2**31 and G < 2**31, "T and G must fit in int32")
    return T, N, K, G
