"""Peak bytes of the tensors torch allocates inside a block, on any device (the CPU included): every
op's output storage is counted from its first appearance until its last tensor is freed. Storages
that existed before the block (operands) are not counted. Used to check memory estimates on the CPU."""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class PeakBytes(TorchDispatchMode):
    def __init__(self, *existing: torch.Tensor) -> None:
        super().__init__()
        self.external = {t.untyped_storage().data_ptr() for t in existing}
        self.refs: dict[int, int] = {}  # storage address -> live tensors on it
        self.sizes: dict[int, int] = {}
        self.now = self.peak = 0

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.now -= self.sizes.pop(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            key = t.untyped_storage().data_ptr()
            if not key or key in self.external:
                continue
            if key not in self.refs:
                self.refs[key], self.sizes[key] = 0, t.untyped_storage().nbytes()
                self.now += self.sizes[key]
                self.peak = max(self.peak, self.now)
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)
        return out
