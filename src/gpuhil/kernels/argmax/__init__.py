"""Row-wise argmax over vocabulary logits: gpuhil's own CuTe DSL kernel, torch.argmax semantics.

    values, indices = argmax(logits, caps=caps)     # config chosen from the device's capabilities
    launch = prepare(logits, caps=caps, cluster_n=2)  # forced cluster split; refused before launch if unsupported
    launch = prepare(logits, caps=caps, split_n=4)    # forced split through global memory (any device)
    launch(logits, out=(values, indices))            # graph-capturable; launch.config is what runs

Dispatch and the test gate share `spec.requirements` + `gating.check`: a config the device cannot run
raises `UnsupportedConfig` naming the attribute and its probed value, never a CUDA error.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...gating import UnsupportedConfig, ensure
from ...device.current import device_capabilities
from ..compiled import Launch
from .spec import ELEM_BYTES, ArgmaxConfig, dtype_name, pick_vec_ok, requirements, row_stride, select_config

__all__ = ["ArgmaxConfig", "UnsupportedConfig", "argmax", "plan", "prepare", "select_config"]


def plan(m: int, n: int, dtype: str, caps: Capabilities, *, vec_ok: bool = True, cluster_n: int | None = None,
         split_n: int | None = None, config: ArgmaxConfig | None = None) -> ArgmaxConfig:
    """The config dispatch launches for this shape on this device, checked (no DSL, no GPU needed)."""
    cfg = config or select_config(m, n, dtype, caps, vec_ok=vec_ok, cluster_n=cluster_n, split_n=split_n)
    ensure(f"argmax config {cfg.name} ({dtype})", requirements(cfg), caps)
    return cfg


def _outputs(logits):
    import torch

    m = logits.shape[0]
    return (torch.empty(m, dtype=torch.float32, device=logits.device),
            torch.empty(m, dtype=torch.int64, device=logits.device))


class _Launcher:
    """Launches a compiled config, with the zeroed workspace a split through global memory needs:
    made here, before any capture, for the rows of the logits it was prepared for (more rows later
    get a larger one). One stream at a time: concurrent launches would share the counters."""

    def __init__(self, logits, config: ArgmaxConfig) -> None:
        from . import cute

        self.config, self.workspace, self._launch = config, None, cute.launch
        if config.gmem_split:
            self._grow(logits)

    def _grow(self, logits) -> None:
        import torch

        self.workspace = torch.zeros(self.config.workspace_words(logits.shape[0]), dtype=torch.int32,
                                     device=logits.device)

    def __call__(self, compiled, logits, out) -> None:
        if self.workspace is not None and self.workspace.numel() < self.config.workspace_words(logits.shape[0]):
            self._grow(logits)
        self._launch(compiled, logits, *out, workspace=self.workspace)


def prepare(logits, *, caps: Capabilities | None = None, cluster_n: int | None = None, split_n: int | None = None,
            config: ArgmaxConfig | None = None) -> Launch:
    """Choose, check and compile the config for these logits. Everything that can fail does so here,
    before any launch: a CUDA-graph capture then only replays the launch."""
    if logits.dim() != 2:
        raise ValueError(f"argmax: logits must be 2-D [M, N], got shape {tuple(logits.shape)}")
    caps = caps or device_capabilities(logits.device.index or 0)
    dtype = dtype_name(logits.dtype)
    m, n = logits.shape
    vec_ok = pick_vec_ok(logits.data_ptr(), row_stride(logits), ELEM_BYTES[dtype], 16 // ELEM_BYTES[dtype])
    cfg = plan(m, n, dtype, caps, vec_ok=vec_ok, cluster_n=cluster_n, split_n=split_n, config=config)
    from . import cute

    return Launch(cute.compile_argmax(cfg, dtype), _Launcher(logits, cfg), _outputs)


def argmax(logits, *, caps: Capabilities | None = None, cluster_n: int | None = None, split_n: int | None = None,
           config: ArgmaxConfig | None = None, out: tuple | None = None):
    """(max value as float32 [M], first index of it as int64 [M]) per row. NaN is the maximum."""
    return prepare(logits, caps=caps, cluster_n=cluster_n, split_n=split_n, config=config)(logits, out=out)
