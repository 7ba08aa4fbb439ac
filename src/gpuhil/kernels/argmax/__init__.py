"""Row-wise argmax over vocabulary logits: gpuhil's own CuTe DSL kernel, torch.argmax semantics.

    values, indices = argmax(logits, caps=caps)     # config chosen from the device's capabilities
    launch = prepare(logits, caps, cluster_n=2)      # forced cluster split; refused before launch if unsupported
    launch = prepare(logits, caps, split_n=4)        # forced split through global memory (any device)
    launch(logits, out=(values, indices))            # graph-capturable; launch.config is what runs
    plan(ArgmaxShape(m, n, "bf16"), caps)            # what dispatch would run, and what it needs (no GPU)

Dispatch and the test gate read the same `plan`: a config the device cannot run raises
`UnsupportedConfig` naming the attribute and its probed value, never a CUDA error.
"""

from __future__ import annotations

from ...device.capabilities import Capabilities
from ...device.current import device_capabilities
from ...gating import Plan, UnsupportedConfig
from ..compiled import Launch
from . import spec
from .spec import ELEM_BYTES, ArgmaxConfig, ArgmaxShape, dtype_name, pick_vec_ok, row_stride

__all__ = ["ArgmaxConfig", "ArgmaxShape", "UnsupportedConfig", "argmax", "plan", "prepare"]


def plan(problem, caps: Capabilities, *, vec_ok: bool = True, cluster_n: int | None = None,
         split_n: int | None = None, config: ArgmaxConfig | None = None) -> Plan:
    """The config dispatch launches for `problem` (m, n, dtype) on this device, and what it needs:
    `config`, a forced `cluster_n` (a cluster) or `split_n` (through global memory) override the choice."""
    refused = spec.unsupported(problem)
    if refused:
        return Plan("argmax", why_not=refused)
    cfg = config or spec.choose(problem, caps, vec_ok=vec_ok, cluster_n=cluster_n, split_n=split_n)
    return Plan(f"argmax config {cfg.name} ({problem.dtype})", cfg, (spec.requirements(cfg),))


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


def prepare(logits, caps: Capabilities | None = None, *, cluster_n: int | None = None, split_n: int | None = None,
            config: ArgmaxConfig | None = None) -> Launch:
    """Plan, check and compile the config for these logits. Everything that can fail does so here,
    before any launch: a CUDA-graph capture then only replays the launch."""
    if logits.dim() != 2:
        raise ValueError(f"argmax: logits must be 2-D [M, N], got shape {tuple(logits.shape)}")
    caps = caps or device_capabilities(logits.device.index or 0)
    dtype = dtype_name(logits.dtype)
    vec_ok = pick_vec_ok(logits.data_ptr(), row_stride(logits), ELEM_BYTES[dtype], 16 // ELEM_BYTES[dtype])
    cfg = plan(ArgmaxShape(*logits.shape, dtype), caps, vec_ok=vec_ok, cluster_n=cluster_n, split_n=split_n,
               config=config).ensure(caps)
    from . import cute

    return Launch(cute.compile_argmax(cfg, dtype), _Launcher(logits, cfg), _outputs)


def argmax(logits, *, caps: Capabilities | None = None, cluster_n: int | None = None, split_n: int | None = None,
           config: ArgmaxConfig | None = None, out: tuple | None = None):
    """(max value as float32 [M], first index of it as int64 [M]) per row. NaN is the maximum."""
    return prepare(logits, caps, cluster_n=cluster_n, split_n=split_n, config=config)(logits, out=out)
