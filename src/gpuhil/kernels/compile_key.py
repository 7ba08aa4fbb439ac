"""What a compiled CuTe DSL kernel depends on: the key of its entry in the persistent compile cache
(gpuhil.kernels.compile_cache). Everything that can change the binary is in it; nothing else is.

- the kernel: the module and name of its `build`, and the source of that module and of every module
  of its package it imports, transitively (static imports anywhere in a file, lazy ones included,
  and the `__init__.py` of each package on the way);
- the config (its repr: the configs are frozen dataclasses of plain values) and the variant;
- the target: an explicit one (AOT), else this GPU's, as the DSL resolves it;
- the DSL: its version, its native payload's CUDA version and every DSL setting it marks as changing
  a compile (`envar.cache_key_str()`: the resolved arch, compiler options, assertions, the runtime
  library of the payload, ...);
- gpuhil's version, the Python version and the machine (the exported object is host code).

Why the import closure rather than the whole kernel package: the closure is what the binary can
depend on, and it reaches outside kernels/ (the NVFP4 quantize kernel takes its constants from
gpuhil.formats.nvfp4), so hashing kernels/ alone could serve a stale binary, while hashing all of
gpuhil would recompile every kernel for an edit to the report. The shared device code in
kernels/grouped_gemm/ is in the closure of each GEMM that imports it and of no other kernel. A module
reached only through `importlib.import_module(name)` with a computed name would be missed: gpuhil's
kernels have none (a test says so for each of them).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import json
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = 1  # of the entries; bumped when what an entry holds changes


class NotCacheable(ValueError):
    """A compile whose inputs cannot be named stably (its config's repr holds an object address)."""


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=4096)
def _imports(path: str, mtime_ns: int, size: int, name: str, is_package: bool) -> tuple[str, ...]:
    """Absolute names of the modules the file imports anywhere in its body (`from a import b` gives a.b
    and a: which of them is a module is decided by the caller). Keyed by mtime and size: an edit is read."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(Path(path).read_bytes())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return tuple(found)


def source_files(module: str) -> dict[str, Path]:
    """Module name -> file of `module` and of every module of its top-level package it imports,
    transitively, with the packages' __init__.py on the way (importing a.b.c runs a and a.b first)."""
    top = module.partition(".")[0]
    package = sys.modules.get(top) or importlib.import_module(top)
    if not getattr(package, "__path__", None):  # a single-file module
        return {top: Path(package.__file__)}
    root = Path(package.__file__).parent
    files: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in files or not (name == top or name.startswith(top + ".")):
            continue
        path = _module_file(root, name)
        if path is None:  # `from pkg import name` where name is not a module
            continue
        files[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        stat = path.stat()
        todo += _imports(str(path), stat.st_mtime_ns, stat.st_size, name, path.name == "__init__.py")
    return files


def source_digest(module: str) -> str:
    """sha256 over the relative path and bytes of each file of `module`'s import closure."""
    files = source_files(module)
    top_dir = Path(sys.modules[module.partition(".")[0]].__file__).parent
    h = hashlib.sha256()
    for name in sorted(files):
        path = files[name]
        data = path.read_bytes()
        rel = path.relative_to(top_dir).as_posix() if path.is_relative_to(top_dir) else path.name
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def config_text(config: Any) -> str:
    text = repr(config)
    if " at 0x" in text:  # an object's default repr: not the same in the next process
        raise NotCacheable(f"config {text[:80]} has no stable repr")
    return text


def dsl_version() -> dict[str, str]:
    """The DSL this process imports: its version and its native payload's CUDA version."""
    import cutlass

    v = cutlass.CUDA_VERSION
    return {"dsl": str(cutlass.__version__), "dsl_cuda": f"{v.major}.{v.minor}" if hasattr(v, "major") else str(v)}


def dsl_identity() -> dict[str, str]:
    """The DSL that compiles here: version, payload, and the settings it marks as changing a compile
    (reading them resolves the arch: this GPU's, or the DSL's default without one)."""
    from cutlass.cutlass_dsl import CuTeDSL

    return {**dsl_version(), "dsl_settings": CuTeDSL._get_dsl().envar.cache_key_str()}


def fields(build: Callable, config: Any, variant: str, target: str | None, kind: str) -> dict[str, Any]:
    """The key's fields for `build(config, variant)` compiled for `target` (None: this GPU). `kind` names
    what the entry holds ("jit": the function; "aot": the function, its PTX, cubin and launch facts)."""
    from .. import __version__

    return {"format": FORMAT, "kind": kind, "kernel": f"{build.__module__}:{build.__qualname__}",
            "source": source_digest(build.__module__), "config": config_text(config), "variant": variant,
            "target": target, "gpuhil": __version__, "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "machine": platform.machine(), **dsl_identity()}


def digest(key_fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()
