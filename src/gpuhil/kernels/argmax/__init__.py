"""Row-wise argmax over vocabulary logits: gpuhil's own CuTe DSL kernel, torch.argmax semantics.

    values, indices = argmax(logits)                # config chosen from the probed capabilities
    argmax(logits, cluster_n=2)                     # forced split; refused before launch if unsupported

Dispatch and the test gate share `spec.requirements` + `requirements.check`: a config the device
cannot run raises `UnsupportedConfig` naming the attribute and its probed value, never a CUDA error.
"""

from __future__ import annotations

from ...capabilities import Capabilities, current
from ...requirements import UnsupportedConfig, ensure
from .spec import ELEM_BYTES, ArgmaxConfig, dtype_name, pick_vec_ok, requirements, row_stride, select_config

__all__ = ["ArgmaxConfig", "UnsupportedConfig", "argmax", "prepare", "select_config"]

def prepare(logits, *, cluster_n: int | None = None, config: ArgmaxConfig | None = None,
            caps: Capabilities | None = None):
    """Choose, check and compile the config for these logits; returns the compiled kernel.

    Everything that can fail does so here, before any launch: a CUDA-graph capture then only
    replays `cute.launch(compiled, ...)`.
    """
    if logits.dim() != 2:
        raise ValueError(f"argmax: logits must be 2-D [M, N], got shape {tuple(logits.shape)}")
    caps = caps or current()
    dtype = dtype_name(logits.dtype)
    m, n = logits.shape
    vec_ok = pick_vec_ok(logits.data_ptr(), row_stride(logits), ELEM_BYTES[dtype], 16 // ELEM_BYTES[dtype])
    cfg = config or select_config(m, n, dtype, caps, vec_ok=vec_ok, cluster_n=cluster_n)
    ensure(f"argmax config {cfg.name} ({dtype})", requirements(cfg), caps)
    from . import cute

    return cute.compile_argmax(cfg, dtype)


def argmax(logits, *, cluster_n: int | None = None, config: ArgmaxConfig | None = None,
           out: tuple | None = None):
    """(max value as float32 [M], first index of it as int64 [M]) per row. NaN is the maximum."""
    import torch

    compiled = prepare(logits, cluster_n=cluster_n, config=config)
    m = logits.shape[0]
    vals, idx = out if out is not None else (
        torch.empty(m, dtype=torch.float32, device=logits.device),
        torch.empty(m, dtype=torch.int64, device=logits.device))
    from . import cute

    cute.launch(compiled, logits, vals, idx)
    return vals, idx
