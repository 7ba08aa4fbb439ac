"""FlashInfer JIT modules that must be built before a case calls them, because building one takes
longer than a case may run.

FlashInfer builds a module on its first call (JitSpec.build_and_load, flashinfer/jit/core.py:337-358):
one ninja build of all the module's sources, for the archs of FLASHINFER_CUDA_ARCH_LIST or else of
every visible GPU (flashinfer/compilation_context.py:112-129), one nvcc per source with --threads=1
(jit/cpp_ext.py:95-112). Its `topk` module (jit/topk.py:21-32: topk.cu, cub_topk.cu and two
bindings) did not finish within 19 minutes on a 16-core H100 host, longer than any case may run
(gpuhil.pytest_plugin.TIER_TIMEOUTS): csrc/cub_topk.cu alone is one translation unit that
instantiates CUB's DeviceBatchedTopK for every entry point x dtype x tie-break configuration x
segment-size bound (cub_topk.cu:41-50, 326-372), so more cores do not shorten it. A case that
started that build would time out, and so would every case after it.

So a provider calling such a module first asks FlashInfer whether the module is there: an AOT copy
from the flashinfer-jit-cache wheel or a finished JIT build in FlashInfer's cache
(`JitSpec.is_compiled`, jit/core.py:503-505). If not, it refuses at once, naming the module, the
folder FlashInfer builds it in and the command that builds it there once; the runner keeps that
cache between runs (gpuhil.thirdparty.cache_env).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from .. import FLASHINFER
from ..provider import LibraryNotUsable


class SlowModule(NamedTuple):
    spec: str  # "module:function" returning FlashInfer's JitSpec of it
    getter: str  # "module:function" that builds and loads it, as FlashInfer's own API calls it
    why: str  # what makes its build slow, as measured


SLOW_TO_BUILD = {
    "topk": SlowModule("flashinfer.jit.topk:gen_topk_module", "flashinfer.topk:get_topk_module",
                       "did not finish within 19 minutes on a 16-core H100 host (csrc/cub_topk.cu is one "
                       "translation unit of CUB DeviceBatchedTopK instantiations)"),
}


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def build_command(module: str, workspace_base: str) -> str:
    """The shell command that builds `module` into FlashInfer's cache under `workspace_base`. Run on the
    machine that runs the cases, it builds for the same archs the cache folder is named for (those of
    its GPUs, FLASHINFER_CUDA_ARCH_LIST unset: flashinfer/jit/env.py:382-396)."""
    getter_module, _, getter = SLOW_TO_BUILD[module].getter.partition(":")
    return f"{FLASHINFER.cache_env}={workspace_base} python -c 'from {getter_module} import {getter}; {getter}()'"


def require_built(module: str) -> None:
    """Nothing when FlashInfer has `module` (AOT or built in its JIT cache); else LibraryNotUsable
    naming the file it lacks and the command that builds it there."""
    from flashinfer.jit import env as jit_env

    slow = SLOW_TO_BUILD[module]
    spec = _resolve(slow.spec)()
    if spec.is_compiled:
        return
    raise LibraryNotUsable(
        f"FlashInfer's JIT module {module} is not built: no AOT copy (flashinfer-jit-cache) and no "
        f"{spec.jit_library_path}. Its build {slow.why}, longer than a case may run, so no case starts "
        f"it: build it once into that cache with `{build_command(module, str(jit_env.FLASHINFER_BASE_DIR))}`, "
        f"or install flashinfer-jit-cache")
