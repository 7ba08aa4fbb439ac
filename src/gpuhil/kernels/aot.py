"""Ahead-of-time compilation of CuTe DSL kernels for a named GPU target, no GPU needed.

``compile_for_target(fn, *args, target="sm_90a")`` compiles a ``@cute.jit`` host
function with ``cute.compile`` for exactly that target, keeps the PTX and cubin
on disk and reports what the launch really uses:

* PTX / cubin: compile options ``--gpu-arch <t> --keep-ptx --keep-cubin
  --dump-dir <d>`` (nvidia-cutlass-dsl 4.8.1).  The dump directory must exist
  beforehand: 4.8.1 silently skips the dump otherwise.
* smem_bytes: static shared memory (the non-extern ``.shared`` declarations of
  the kept PTX) plus the dynamic shared memory the host launcher passes in its
  ``cudaLaunchConfig_t`` (CuTe's SmemAllocator uses dynamic smem sized by a
  compiler pass, so it only exists as a constant in the lowered host code).
  The cubin's ``.nv.shared.<kernel>`` section is also reported: on sm_90+ it
  additionally holds the 1 KiB per-CTA system reservation.
* cluster_shape: the ``cudaLaunchAttributeClusterDimension`` (id 4) attribute
  the host launcher attaches; kernels carry no ``.reqnctapercluster`` in the PTX.

``cute.compile`` always passes ``no_cache=True`` internally, and the gpu-arch is
part of its module hash anyway, so each target really recompiles.

``compile_kernel_for_target(build, aot_args, config, variant, target=...)`` is the same
compile of a kernel's ``build(config, variant)`` through a persistent compile cache
(gpuhil.kernels.compile_cache): an entry holds the exported function, the PTX, the cubin
and the facts above, and a hit writes the PTX and cubin where a compile would have.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import struct
import tempfile
import time
from typing import Any

from .. import compile_clock

__all__ = ["AotResult", "compile_for_target", "compile_kernel_for_target", "parse_target"]

_TARGET_RE = re.compile(r"^sm_(\d{2,3})([af]?)$")


@dataclasses.dataclass(frozen=True)
class AotResult:
    target: str
    ptx_path: pathlib.Path
    cubin_path: pathlib.Path
    smem_bytes: int
    cluster_shape: tuple[int, int, int]
    kernel_name: str
    compiled: Any = dataclasses.field(repr=False, compare=False)
    static_smem_bytes: int = 0
    dynamic_smem_bytes: int = 0
    cubin_shared_section_bytes: int = 0
    compile_seconds: float = 0.0  # of the compile that made it (also when it came from the cache)
    from_cache: bool = False


def parse_target(target: str) -> str:
    """Validate an ``sm_NN[a|f]`` string and return it unchanged."""
    if not isinstance(target, str) or not _TARGET_RE.match(target):
        raise ValueError(
            f"target must look like 'sm_90a', 'sm_100a', 'sm_120a' or 'sm_121a' "
            f"(sm_<digits>[a|f]); got {target!r}"
        )
    return target


# ---------------------------------------------------------------------------
# artifact readers


def _elf_sections(blob: bytes) -> dict[str, int]:
    """Section name -> size for a 64-bit little-endian ELF (a cubin)."""
    if blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
        raise ValueError("cubin is not a 64-bit little-endian ELF file")
    e_shoff = struct.unpack_from("<Q", blob, 0x28)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", blob, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    str_off = headers[e_shstrndx][4]
    out = {}
    for h in headers:
        name_end = blob.index(b"\0", str_off + h[0])
        out[blob[str_off + h[0] : name_end].decode()] = h[5]
    return out


_PTX_SHARED_RE = re.compile(
    r"^\s*\.shared\s+(?:\.align\s+\d+\s+)?\.[bsuf](8|16|32|64)\s+[\w$]+\[(\d+)\]\s*;", re.M
)


def _ptx_static_smem(ptx: str) -> int:
    # `.extern .shared` (the dynamic window) does not match: it starts with .extern
    return sum(int(bits) // 8 * int(n) for bits, n in _PTX_SHARED_RE.findall(ptx))


_LAUNCH_CFG_T = "!llvm.struct<(array<3 x i32>, array<3 x i32>, i64, ptr, ptr, i32)>"  # cudaLaunchConfig_t
_LAUNCH_ATTR_T = "!llvm.struct<(i32, array<4 x i8>, array<64 x i8>)>"  # cudaLaunchAttribute
_DIM3_T = "!llvm.struct<(i32, i32, i32)>"
_CLUSTER_DIM_ATTR = 4  # cudaLaunchAttributeClusterDimension
_CONST_RE = re.compile(r"^\s*(%\w+) = llvm\.mlir\.constant\((-?\d+) : i\d+\)")
_GEP_RE = re.compile(r"^\s*(%\w+) = llvm\.getelementptr (%\w+)\[([^\]]*)\] : .*, (!llvm\..*)$")
_STORE_RE = re.compile(r"^\s*llvm\.store (%\w+), (%\w+) ")


def _launch_facts(host_ir: str) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Dynamic smem sizes and cluster dims stored into cudaLaunchConfig_t by the host code."""
    smem: list[int] = []
    clusters: list[tuple[int, int, int]] = []
    for func in host_ir.split("llvm.func @")[1:]:
        consts, geps, stores = {}, {}, []
        for line in func.splitlines():
            if m := _CONST_RE.match(line):
                consts[m.group(1)] = int(m.group(2))
            elif m := _GEP_RE.match(line):
                idx = tuple(s.strip() for s in m.group(3).split(","))
                geps[m.group(1)] = (m.group(2), idx, m.group(4).strip())
            elif m := _STORE_RE.match(line):
                stores.append((m.group(1), m.group(2)))
        stored = {}
        for val, ptr in stores:
            stored.setdefault(ptr, []).append(val)
        for name, (base, idx, ty) in geps.items():
            if ty == _LAUNCH_CFG_T and idx == ("0", "2"):
                for v in stored.get(name, []):
                    if v not in consts:
                        raise RuntimeError("dynamic shared memory size is not a compile-time constant")
                    smem.append(consts[v])
            if ty == _LAUNCH_ATTR_T and idx == ("0", "0"):
                if not any(consts.get(v) == _CLUSTER_DIM_ATTR for v in stored.get(name, [])):
                    continue
                vals = [g for g, (b, i, t) in geps.items() if b == base and t == _LAUNCH_ATTR_T and i == ("0", "2")]
                dims = {}
                for g, (b, i, t) in geps.items():
                    if b in vals and t == _DIM3_T:
                        for v in stored.get(g, []):
                            if v not in consts:
                                raise RuntimeError("cluster dimension is not a compile-time constant")
                            dims[int(i[1])] = consts[v]
                if sorted(dims) != [0, 1, 2]:
                    raise RuntimeError(f"could not read cluster dims from host launch code: {dims}")
                clusters.append((dims[0], dims[1], dims[2]))
    return smem, clusters


# ---------------------------------------------------------------------------


def _dump_dir(target: str, keep_dir: pathlib.Path | None) -> pathlib.Path:
    if keep_dir is None:
        keep_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"gpuhil_aot_{target}_"))
    keep_dir = pathlib.Path(keep_dir).resolve()
    keep_dir.mkdir(parents=True, exist_ok=True)
    # A fresh directory per compile: CuTe names dumps <host fn>.<target>.ptx, so
    # two configs of one host function would otherwise overwrite each other.
    dump_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{target}_", dir=keep_dir))
    if any(c in str(dump_dir) for c in " '\""):
        raise ValueError(f"keep_dir must not contain spaces or quotes: {dump_dir}")
    return dump_dir


def compile_for_target(
    jit_fn,
    *args,
    target: str,
    keep_dir: pathlib.Path | None = None,
    **kwargs,
) -> AotResult:
    """Compile ``jit_fn(*args, **kwargs)`` for ``target`` without touching a GPU.

    ``args`` are compile-time stand-ins (typed null pointers, scalars; see each kernel's
    ``aot_args``).  Artifacts go to ``keep_dir`` (a fresh temp dir if None).
    """
    import cutlass.cute as cute

    target = parse_target(target)
    dump_dir = _dump_dir(target, keep_dir)
    opts = f"--gpu-arch {target} --keep-ptx --keep-cubin --dump-dir {dump_dir}"
    t0 = time.perf_counter()
    with compile_clock.compiling():
        compiled = cute.compile(jit_fn, *args, options=opts, **kwargs)
    seconds = time.perf_counter() - t0

    ptx_files = sorted(dump_dir.glob(f"*.{target}.ptx"))
    cubin_files = sorted(dump_dir.glob(f"*.{target}.cubin"))
    if len(ptx_files) != 1 or len(cubin_files) != 1:
        raise RuntimeError(
            f"expected one PTX and one cubin for {target} in {dump_dir}, got {ptx_files + cubin_files}"
        )
    ptx_path, cubin_path = ptx_files[0], cubin_files[0]
    ptx_text = ptx_path.read_text()

    m = re.search(r"^\s*\.target\s+(\S+)", ptx_text, re.M)
    got = m.group(1).rstrip(",") if m else None
    if got != target:
        raise RuntimeError(f"compiler ignored the requested target: PTX says .target {got}, wanted {target}")
    cubin = cubin_path.read_bytes()
    if not cubin:
        raise RuntimeError(f"empty cubin at {cubin_path}")

    entries = re.findall(r"^\.visible \.entry (\w+)\(", ptx_text, re.M)
    if len(entries) != 1:
        raise RuntimeError(f"expected exactly one kernel entry in PTX, found {entries}")
    kernel_name = entries[0]

    dyn, clusters = _launch_facts(str(compiled.ir_module))
    if len(set(dyn)) > 1 or len(set(clusters)) > 1:
        raise RuntimeError(f"several launches with different configs: smem={dyn} cluster={clusters}")
    dynamic = dyn[0] if dyn else 0
    static = _ptx_static_smem(ptx_text)
    return AotResult(
        target=target,
        ptx_path=ptx_path,
        cubin_path=cubin_path,
        smem_bytes=static + dynamic,
        cluster_shape=clusters[0] if clusters else (1, 1, 1),
        kernel_name=kernel_name,
        compiled=compiled,
        static_smem_bytes=static,
        cubin_shared_section_bytes=_elf_sections(cubin).get(f".nv.shared.{kernel_name}", 0),
        dynamic_smem_bytes=dynamic,
        compile_seconds=seconds,
    )


# ---------------------------------------------------------------------------
# through the persistent compile cache

_FACTS = ("target", "smem_bytes", "kernel_name", "static_smem_bytes", "dynamic_smem_bytes",
          "cubin_shared_section_bytes", "compile_seconds")


def compile_kernel_for_target(build, aot_args, config, variant: str, *, target: str,
                              keep_dir: pathlib.Path | None = None, cache=None) -> AotResult:
    """``compile_for_target(build(config, variant), *aot_args(config, variant), target=target)``
    through ``cache`` (a gpuhil.kernels.compile_cache.CompileCache; None: the process's scoped one,
    if any): a hit loads the exported function and writes the stored PTX and cubin into ``keep_dir``
    as a compile would."""
    from . import compile_cache, compile_key

    target = parse_target(target)
    cache = cache if cache is not None else compile_cache.scoped()

    def compile() -> AotResult:
        return compile_for_target(build(config, variant), *aot_args(config, variant), target=target, keep_dir=keep_dir)

    if cache is None:
        return compile()
    try:
        key_fields = compile_key.fields(build, config, variant, target, "aot")
    except compile_key.NotCacheable:
        return compile()
    return cache.fetch(key_fields, compile, _export, lambda folder, meta, key: _load(folder, meta, key, keep_dir))


def _export(res: AotResult, folder: pathlib.Path, key: str) -> dict:
    from .compile_cache import export_function

    export_function(res.compiled, folder, key)
    shutil.copyfile(res.ptx_path, folder / "kernel.ptx")
    shutil.copyfile(res.cubin_path, folder / "kernel.cubin")
    facts = {f: getattr(res, f) for f in _FACTS}
    return {"aot": {**facts, "cluster_shape": list(res.cluster_shape), "ptx_name": res.ptx_path.name,
                    "cubin_name": res.cubin_path.name}}


def _load(folder: pathlib.Path, meta: dict, key: str, keep_dir: pathlib.Path | None) -> AotResult:
    from .compile_cache import load_function

    facts = meta["aot"]
    compiled = load_function(folder, key)
    dump_dir = _dump_dir(facts["target"], keep_dir)
    ptx_path, cubin_path = dump_dir / facts["ptx_name"], dump_dir / facts["cubin_name"]
    shutil.copyfile(folder / "kernel.ptx", ptx_path)
    shutil.copyfile(folder / "kernel.cubin", cubin_path)
    return AotResult(ptx_path=ptx_path, cubin_path=cubin_path, cluster_shape=tuple(facts["cluster_shape"]),
                     compiled=compiled, from_cache=True, **{f: facts[f] for f in _FACTS})
