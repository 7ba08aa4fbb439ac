"""Seed 002's probe, shared by the suite's seed 002 tests: compile kernels for an SM12x target on the
CPU under a chosen CuTe DSL release and native payload, in a subprocess (seed002_child.py), and
report what the compiler did; and the two predicates that must refuse what fails there (the known
issue's `when`, gpuhil's native-kernel gate), evaluated for a catalog SKU running that DSL.

Where a DSL comes from (`Dsl`):
* the installed one (`release` None): since 4.6 the DSL installs its payloads side by side
  (``_cutlass_ir.cu12.*.so`` / ``_cutlass_ir.cu13.*.so``, runtimes under nvidia_cutlass_dsl/cuNN/lib)
  and at ``import cutlass`` its loader asks libcuda.so.1 for cuDriverGetVersion and loads the newest
  payload that driver supports (no driver: the newest installed; no environment variable selects
  it). So a CUDA 12.x driver runs the 12.9 payload although libs-cu13 is installed. The subprocess
  tells the loader a driver version (ctypes.CDLL patched for libcuda.so.1 during the import);
  nothing in the environment is modified.
* another release (`release` "4.7.1", ...): unpacked once from `wheels` with pip --target into a
  cache under build/ (git-ignored) and put first on the path of a subprocess started with -S, so the
  project's own DSL stays out of it; the rest of the parent's path follows for the dependencies
  (cuda-bindings, torch, numpy, an installed flashinfer). 4.5.x wrote every payload to the same
  paths (nvidia_cutlass_dsl/python_packages: libs-base carried CUDA 12.9, libs-cu13 CUDA 13.1), so
  such an environment holds one payload, the last wheel's; later releases use dsl_packages.

FlashInfer's B12x MoE kernels import triton (FlashInfer's `fused_moe` lists it among its
requirements; CUDA builds of torch bring it). Where this interpreter has none, a cached unpack of
TRITON under build/ joins the subprocess's path: only its import is needed, nothing runs on it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from gpuhil.catalog import matrix
from gpuhil.catalog.matrix import Sku
from gpuhil.device.capabilities import Capabilities
from gpuhil.gating import check
from gpuhil.kernels.nvfp4_grouped_gemm import spec
from gpuhil.session import catalog_capabilities

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"  # ignored by git, inside the checkout
CHILD = Path(__file__).with_name("seed002_child.py")
TRITON = "triton==3.9.0"
KNOWN_ISSUE = "cutedsl-cuda12-payload-sm12x-nvfp4-mma"
# SM12x parts by the catalog row whose target the kernels are compiled for.
SKU_OF_TARGET = {"sm_121a": "gb10", "sm_120a": "rtx5090"}
B12X_KERNELS = {"b12x-micro", "b12x-dynamic"}  # FlashInfer's MoE kernels: these import triton


@dataclasses.dataclass(frozen=True)
class Dsl:
    """A CuTe DSL to compile under. `driver`: the CUDA version its loader is told the driver
    supports (picks the payload where several are installed). `release` None: the installed DSL;
    else that release unpacked from `wheels` into build/cutedsl-<release>-<label>."""

    driver: str
    release: str | None = None
    label: str = ""
    wheels: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.release or 'installed'}-{self.label or 'driver' + self.driver}"

    def driver_int(self) -> int:
        major, minor = self.driver.split(".")
        return int(major) * 1000 + int(minor) * 10


def unpacked(name: str, requirements: tuple[str, ...]) -> Path:
    """`requirements` unpacked once (pip --target, no dependencies) into build/<name>. Skips when
    the package registry cannot be reached."""
    cache = BUILD / name
    BUILD.mkdir(parents=True, exist_ok=True)
    # One unpacking per folder: two xdist workers installing into the same target at once leave a
    # release whose modules come from both (seen as a circular import, or a host function not found).
    with FileLock(str(cache) + ".lock"):
        if not (cache / ".complete").exists():
            _unpack(cache, requirements)
    return cache


def _unpack(cache: Path, requirements: tuple[str, ...]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--disable-pip-version-check",
           "--target", str(cache), *requirements]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip(f"installing {' '.join(requirements)} took over 10 minutes")
    if proc.returncode:
        pytest.skip(f"cannot install {' '.join(requirements)} from the package registry: "
                    f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    (cache / ".complete").touch()


def release_path(dsl: Dsl) -> list[str]:
    """The unpacked release's package directory (4.5.x: python_packages, later: dsl_packages) and
    its root (its distribution metadata, which FlashInfer's gate reads)."""
    root = unpacked(f"cutedsl-{dsl.release}-{dsl.label}", dsl.wheels)
    packages = next(p for p in (root / "nvidia_cutlass_dsl" / d for d in ("dsl_packages", "python_packages"))
                    if (p / "cutlass").is_dir())
    return [str(packages), str(root)]


def triton_path() -> list[str]:
    if importlib.util.find_spec("triton") is not None:
        return []
    return [str(unpacked(TRITON.replace("==", "-"), (TRITON,)))]


def probe(dsl: Dsl, kernels: list[str], target: str, tmp_path: Path, *, layer: tuple[int, int, int, int] = (0, 0, 0, 0),
          sm_count: int = 0) -> dict:
    """Compile `kernels` (seed002_child.KERNELS, or read its REPORTS) for `target` under `dsl`; the
    child's report. `layer` (experts, hidden, inter, top_k) and `sm_count`: FlashInfer's kernels'."""
    dump = tmp_path / f"dump-{dsl.id}-{target}"
    dump.mkdir()
    deps = [p for p in sys.path if p and not (Path(p) / "cutlass").is_dir()]
    path = [*(release_path(dsl) if dsl.release else []), *(triton_path() if B12X_KERNELS & set(kernels) else [])]
    if dsl.release:  # -S: no site-packages, no .pth; the parent's path without its own DSL instead
        path += deps
    request = {"path": path, "driver": dsl.driver_int(), "kernels": kernels, "layer": list(layer), "sm_count": sm_count}
    env = {**os.environ, "CUTE_DSL_ARCH": target, "CUTE_DSL_KEEP": "ptx,cubin", "CUTE_DSL_DUMP_DIR": str(dump),
           "CUDA_VISIBLE_DEVICES": "", "B12X_COMPILE_DISK_CACHE": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    flags = ["-S"] if dsl.release else []
    proc = subprocess.run([sys.executable, *flags, str(CHILD), json.dumps(request)], env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert lines, f"probe died (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE "):])


def sku_of(target: str) -> Sku:
    """The catalog row of the SM12x part `target` is compiled for."""
    return matrix.load(REPO / matrix.MATRIX_FILE).sku(SKU_OF_TARGET[target])


def sku_running(target: str, dsl_version: str, payload: str) -> Capabilities:
    """The catalog SKU of `target` as its runner would see it with that DSL release and payload."""
    return dataclasses.replace(catalog_capabilities(sku_of(target)), cutlass_dsl=dsl_version, dsl_cuda=payload)


def known_issue_applies(caps: Capabilities) -> bool:
    issue = next(ki for ki in matrix.load(REPO / matrix.MATRIX_FILE).known_issues if ki.id == KNOWN_ISSUE)
    return issue.predicate.holds(caps.facts())


def native_gate_refuses(caps: Capabilities) -> bool:
    """gpuhil's own native kernel (block-scaled MMA) for a decode shape: refused on this device?"""
    cfg = spec.staged(spec.NATIVE, spec.tile_for(spec.NATIVE, 4096, 4), caps)
    return not check(spec.requirements(cfg), caps).ok


def installed_payloads() -> set[str]:
    """CUDA majors of the payloads the installed DSL carries (read from its files, not imported)."""
    found = importlib.util.find_spec("cutlass")
    if found is None or found.origin is None:
        return set()
    libs = Path(found.origin).parent / "_mlir" / "_mlir_libs"
    return {m.group(1) for f in libs.iterdir() if (m := re.match(r"_cutlass_ir\.cu(\d+)\.", f.name))}
