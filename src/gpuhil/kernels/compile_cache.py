"""A persistent compile cache for gpuhil's own CuTe DSL kernels: one folder per machine, shared by
every pytest-xdist worker and every run, so a kernel config is compiled once per key
(gpuhil.kernels.compile_key: kernel source closure, config, variant, target, DSL and payload, gpuhil).

The facility is the DSL's own export and load (nvidia-cutlass-dsl 4.8.1):
- `JitCompiledFunction.export_to_c(dir, name, prefix)` writes `<name>.h`, a C header we drop, and
  `<name>.o`, an ELF relocatable object: the host launch function compiled for this CPU, the kernel's
  cubin embedded as a constant array (`<prefix>_cubin`) and the metadata a load needs (the pickled
  signature, kernel names, object-file version 1.1). Writing it resolves the DSL runtime's `_cuda*`
  symbols in this process, so the runtime library (`cutlass.runtime.find_runtime_libraries`, the one
  load_module loads) is loaded RTLD_GLOBAL first: without that the export fails on a machine
  without a GPU. The export needs no GPU: AOT entries are written on a CPU machine.
- `cutlass.cute.runtime.load_module(path)[prefix]` links the object into the process (LLVM JITLink,
  about 2 ms) and gives a CudaDialectJitCompiledFunction, the class cute.compile returns: it is
  called with the same DSL arguments, loads its cubin on the first call through the same
  cuda_init / cuda_load_to_device path, and has what PackedCall's fast path uses
  (generate_execution_args, run_compiled_program, the executor `to()` makes), so CompiledKernel and
  PackedCall need no call path of their own. It has no IR (ir_module is None): what AOT reads off
  the IR (launch facts) is stored in the entry beside the PTX and cubin.

Not the DSL's own file cache (CUTE_DSL_CACHE_DIR, base_dsl/cache_helpers.py): it serves only the
implicit compile of a @cute.jit function called directly, while cute.compile sets compile_only and
no_cache and so never reads or writes it; it is keyed by the hash of the traced module (a hit still
pays the Python trace), holds MLIR bytecode rather than the binary, and has no lock and no bound.

Layout under the cache's root (`gpuhil run`: $GPUHIL_CACHE_DIR/cute, default ~/.cache/gpuhil/cute):
    dsl-<version>-cuda<payload>/<key>/       an entry: meta.json, kernel.o (AOT: + kernel.ptx, kernel.cubin)
    dsl-<version>-cuda<payload>/<key>.lock   that key's lock
    dsl-<version>-cuda<payload>/.<key>.*.tmp an entry being written, renamed into place whole
An entry of another DSL version or payload is in another folder under another key, and its meta.json,
compared field by field with this process's key, refuses it even if moved: it is never loaded.

Concurrency: every read, write and removal of an entry holds its key's lock (filelock), so workers
that need the same config compile it once and the others load it; an entry is written into a private
folder and renamed into place, so no reader sees half of one. meta.json records each file's size and
sha256: a truncated or corrupt entry (or one that fails to load) is removed and compiled again, with
one CompileCacheWarning. The cache is bounded: after a write, entries are removed in order of last
use (meta.json's mtime, set on every hit) until the whole cache is within `max_bytes`.

Which cache a compile uses is the caller's: `compile_kernel(..., cache=)` and
`aot.compile_kernel_for_target(..., cache=)` take one. Where none is passed they use the one the
process is scoped to (`scope`), which the pytest plugin opens from `--compile-cache DIR` (`gpuhil run`
passes its cache root); no cache is the default, today's behaviour: a plain `pytest` compiles
everything and writes nothing outside the checkout. A scope rather than an argument through every
layer: the cache never changes what is compiled or decided (a miss compiles exactly what a hit loads),
like compile_kernel's own per-process memo, and an argument would run through the provider
protocol, every provider (torch peers, third-party and entry-point ones included) and each test.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import compile_key

T = TypeVar("T")
DEFAULT_MAX_BYTES = 2 << 30
SUBDIR = "cute"  # under gpuhil's cache root, beside the kernel libraries' caches
META = "meta.json"
OBJECT = "kernel.o"
LOCK_TIMEOUT_S = 900.0  # a compile another worker runs for this key; then this one compiles uncached
STALE_TMP_S = 3600.0  # a folder being written that long ago belongs to a process that died


class CompileCacheWarning(UserWarning):
    """An entry was unusable (rebuilt) or could not be written (compiled without the cache)."""


def location(cache_root: Path) -> Path:
    """The compile cache's folder under gpuhil's cache root (GPUHIL_CACHE_DIR)."""
    return Path(cache_root) / SUBDIR


def dsl_folder_name(key_fields: dict[str, Any]) -> str:
    safe = lambda s: "".join(c if c.isalnum() or c in ".-_" else "_" for c in str(s))  # noqa: E731
    return f"dsl-{safe(key_fields['dsl'])}-cuda{safe(key_fields['dsl_cuda'])}"


def _is_key(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


@dataclass(frozen=True)
class EntryInfo:
    path: Path
    dsl: str  # the folder it is in: dsl-<version>-cuda<payload>
    bytes: int
    last_used: float  # meta.json's mtime; 0 when the entry has none (then it is removed first)


@dataclass(frozen=True)
class CompileCache:
    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    lock_timeout_s: float = LOCK_TIMEOUT_S

    def __post_init__(self):
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        object.__setattr__(self, "root", Path(self.root))

    # -- the one operation compiles go through --------------------------------------------------

    def fetch(self, key_fields: dict[str, Any], compile: Callable[[], T],
              export: Callable[[T, Path, str], dict], load: Callable[[Path, dict, str], T]) -> T:
        """The value for `key_fields`: loaded from its entry (`load(folder, meta, key)`) when the entry
        is whole and of this key, else compiled (`compile()`) and stored (`export(value, folder, key)`
        writes the files into a new folder and returns what else meta.json keeps)."""
        from filelock import FileLock, Timeout

        key = compile_key.digest(key_fields)
        folder = self.root / dsl_folder_name(key_fields)
        entry = folder / key
        try:
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(folder / f"{key}.lock"), timeout=self.lock_timeout_s)
            lock.acquire()
        except (OSError, Timeout) as exc:
            _warn(f"{entry}: cannot take its lock ({exc}); compiling without the cache")
            return compile()
        try:
            if entry.exists():
                try:
                    meta = _verified(entry, key_fields)
                    value = load(entry, meta, key)
                except Exception as exc:  # noqa: BLE001 - anything wrong with an entry means: build it again
                    _warn(f"{entry}: unusable entry ({_one_line(exc)}); compiling it again")
                    _remove(entry)
                else:
                    os.utime(entry / META)  # last use: what eviction orders by
                    return value
            value = compile()
            if self._store(folder, key, key_fields, value, export):
                self.evict(keep=entry)
            return value
        finally:
            lock.release()

    def _store(self, folder: Path, key: str, key_fields: dict, value, export) -> bool:
        tmp = folder / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.mkdir()
            extra = export(value, tmp, key)
            files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir())}
            meta = {"fields": key_fields, "files": files, "created": time.time(), **(extra or {})}
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            os.rename(tmp, folder / key)
            return True
        except Exception as exc:  # noqa: BLE001 - a compile that cannot be stored still runs
            _warn(f"{folder / key}: not stored ({_one_line(exc)}); this config compiles again next time")
            return False
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # -- size bound, listing, clearing ----------------------------------------------------------

    def entries(self) -> list[EntryInfo]:
        """Every entry under the root (any DSL version), oldest use first."""
        found = []
        for dsl in sorted(self.root.glob("dsl-*")) if self.root.is_dir() else ():
            if dsl.is_symlink() or not dsl.is_dir():
                continue
            for entry in dsl.iterdir():
                if _is_key(entry.name) and entry.is_dir() and not entry.is_symlink():
                    meta = entry / META
                    found.append(EntryInfo(entry, dsl.name, _folder_bytes(entry),
                                           meta.stat().st_mtime if meta.is_file() else 0.0))
        return sorted(found, key=lambda e: e.last_used)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove least recently used entries until the cache holds at most max_bytes (never `keep`,
        never one whose lock another process holds), and folders left by writers that died."""
        self._remove_stale_tmp()
        entries = self.entries()
        total = sum(e.bytes for e in entries)
        removed = []
        for e in entries:
            if total <= self.max_bytes:
                break
            if e.path == keep:
                continue
            if self._remove_locked(e.path):
                total -= e.bytes
                removed.append(e.path)
        return removed

    def clear(self) -> tuple[int, int, int]:
        """Remove every entry not in use now: (entries removed, bytes freed, entries in use left)."""
        self._remove_stale_tmp(older_than_s=0.0)
        removed = freed = busy = 0
        for e in self.entries():
            if self._remove_locked(e.path):
                removed, freed = removed + 1, freed + e.bytes
            else:
                busy += 1
        for dsl in self.root.glob("dsl-*") if self.root.is_dir() else ():
            if dsl.is_dir() and not dsl.is_symlink():
                for lock in dsl.glob("*.lock"):
                    if _is_key(lock.stem) and not (dsl / lock.stem).exists():
                        self._remove_lock_file(lock)
                with contextlib.suppress(OSError):
                    dsl.rmdir()  # only when nothing else is left in it
        return removed, freed, busy

    def _remove_locked(self, entry: Path) -> bool:
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(entry.parent / f"{entry.name}.lock"), timeout=0):
                _remove(entry)
            return True
        except (Timeout, OSError):
            return False

    @staticmethod
    def _remove_lock_file(lock: Path) -> None:
        """Only a lock no process holds (one compiling that key now keeps its file)."""
        from filelock import FileLock, Timeout

        with contextlib.suppress(Timeout, OSError), FileLock(str(lock), timeout=0):
            lock.unlink(missing_ok=True)

    def _remove_stale_tmp(self, older_than_s: float = STALE_TMP_S) -> None:
        now = time.time()
        for tmp in self.root.glob("dsl-*/.*.tmp") if self.root.is_dir() else ():
            with contextlib.suppress(OSError):
                if tmp.is_dir() and not tmp.is_symlink() and now - tmp.stat().st_mtime >= older_than_s:
                    shutil.rmtree(tmp, ignore_errors=True)


# -- entries -----------------------------------------------------------------------------------


def _verified(entry: Path, key_fields: dict) -> dict:
    """The entry's meta.json when the entry is of exactly this key and every file is whole."""
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"meta.json unreadable: {_one_line(exc)}") from None
    if not isinstance(meta, dict) or meta.get("fields") != key_fields:
        theirs = meta.get("fields", {}) if isinstance(meta, dict) else {}
        differ = sorted(k for k in set(key_fields) | set(theirs or {}) if (theirs or {}).get(k) != key_fields.get(k))
        raise ValueError(f"written for another key (differs in {', '.join(differ) or 'format'})")
    for name, facts in meta.get("files", {}).items():
        path = entry / name
        if not path.is_file() or path.stat().st_size != facts["bytes"] or _sha256(path) != facts["sha256"]:
            raise ValueError(f"{name} is truncated or corrupt")
    if OBJECT not in meta.get("files", {}):
        raise ValueError(f"no {OBJECT}")
    return meta


def _remove(entry: Path) -> None:
    """Rename aside, then delete: a process killed half way leaves a .tmp folder, not half an entry."""
    aside = entry.with_name(f".{entry.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.rename(entry, aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and not p.is_symlink())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _warn(message: str) -> None:
    warnings.warn(f"gpuhil compile cache: {message}", CompileCacheWarning, stacklevel=3)


# -- the DSL's export and load -----------------------------------------------------------------


def prefix_of(key: str) -> str:
    """The exported symbols' prefix: unique per key, so two loaded entries never share a name."""
    return f"gpuhil_{key[:24]}"


@functools.cache
def _runtime_loaded_globally() -> tuple[ctypes.CDLL, ...]:
    """The DSL runtime library, loaded RTLD_GLOBAL (export resolves its symbols in the process); the
    handles stay referenced here so the library stays loaded."""
    from cutlass.runtime import find_runtime_libraries

    return tuple(ctypes.CDLL(p, mode=ctypes.RTLD_GLOBAL) for p in find_runtime_libraries(enable_tvm_ffi=False))


def export_function(compiled, folder: Path, key: str) -> dict:
    """Write a cute.compile result into `folder` as kernel.o (host code + embedded cubin)."""
    if getattr(compiled, "total_added_arguments", 0):  # workspace arguments: a loaded copy would not know them
        raise ValueError("the compiled function takes extra workspace arguments, which a loaded one would lose")
    _runtime_loaded_globally()
    compiled.export_to_c(str(folder), Path(OBJECT).stem, prefix_of(key))
    (folder / "kernel.h").unlink(missing_ok=True)
    if not (folder / OBJECT).is_file():
        raise RuntimeError("export_to_c wrote no kernel.o")
    return {"prefix": prefix_of(key)}


def load_function(folder: Path, key: str):
    """The compiled function of an entry, linked into this process."""
    from cutlass.cute.runtime import load_module

    return load_module(str(folder / OBJECT))[prefix_of(key)]


def jit(cache: CompileCache, build: Callable, config, variant: str, compile: Callable[[], Any]):
    """`compile()` (cute.compile of build(config, variant) for this GPU) through `cache`."""
    try:
        key_fields = compile_key.fields(build, config, variant, None, "jit")
    except compile_key.NotCacheable:
        return compile()
    return cache.fetch(key_fields, compile, export_function, lambda folder, meta, key: load_function(folder, key))


# -- the process's cache ------------------------------------------------------------------------

_SCOPED: ContextVar[CompileCache | None] = ContextVar("gpuhil_compile_cache", default=None)


@contextlib.contextmanager
def scope(cache: CompileCache | None) -> Iterator[CompileCache | None]:
    """Within this block, compiles given no cache use `cache` (the pytest plugin opens one per process)."""
    token = _SCOPED.set(cache)
    try:
        yield cache
    finally:
        _SCOPED.reset(token)


def scoped() -> CompileCache | None:
    return _SCOPED.get()


def parse_size(text: str) -> int:
    """'2GiB', '500MiB', '1G', '123456' -> bytes (binary units); ValueError naming the value."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    s = str(text).strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (s[:-1], s[-1]) if s and s[-1] in units else (s, "")
    try:
        value = int(float(number) * units[unit]) if number else 0
    except (ValueError, OverflowError):
        value = 0
    if value <= 0:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M, G or T: 2G, 500MiB)")
    return value
