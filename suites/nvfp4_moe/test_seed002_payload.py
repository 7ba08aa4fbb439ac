"""Seed 002 on the CPU: which CuTe DSL native payload is active, what it lowers the SM12x block-scaled
MMA to, and whether the gate (native kernel only from a payload of CUDA >= 13) matches what breaks.

How a payload gets picked (read from the DSL's own loader, cutlass/_mlir/_mlir_libs/__init__.py):
* 4.8.x installs both payloads side by side (nvidia-cutlass-dsl always pulls libs-cu12; the [cu13]
  extra adds libs-cu13): ``_cutlass_ir.cu12.*.so`` / ``_cutlass_ir.cu13.*.so`` plus runtimes under
  nvidia_cutlass_dsl/cu12|cu13/lib. At ``import cutlass`` the loader asks libcuda.so.1 for
  cuDriverGetVersion and loads the newest payload whose CUDA major the driver supports (no driver:
  the newest installed). No environment variable selects it (CUTE_DSL_LIBS only points at the
  runtime library); cutlass.CUDA_VERSION is whatever got loaded. So a CUDA 12.x driver runs the 12.9
  payload although libs-cu13 is installed. Here a subprocess reports a driver version to that loader
  (ctypes.CDLL patched for libcuda.so.1 during the import), nothing in the environment is modified.
* 4.5.0 (the release of the field report) wrote both payloads to the same paths
  (nvidia_cutlass_dsl/python_packages/cutlass/...): libs-base carried CUDA 12.9, libs-cu13 CUDA 13.1,
  and whichever wheel was installed last was active. The test unpacks each into its own cached
  directory under build/ (pip --target, ~150 MB once) and runs it in a subprocess started with -S, so the
  project's own DSL stays out of its path.

What happens (asserted below): 4.5.0 + CUDA 12.9 emits the internal
``_mma.block_scale.scale_vec::4X.m16n8k64...`` and its ptxas stops with "Unexpected instruction types
specified for '_mma'" (the field failure, verbatim); 4.5.0 + CUDA 13.1 emits the public
``mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4...``. 4.8.1 emits the public spelling from both
payloads and its CUDA 12.9 payload assembles it (PTX ISA 8.8, bundled ptxas 12.9): the gate is
conservative there, and stays, as no SM12x part has run that payload's cubin for us yet.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpuhil.device.capabilities import Capabilities, mma_kinds_for, targets_for
from gpuhil.gating import Requirements, check
from gpuhil.kernels.nvfp4_grouped_gemm import spec

PUBLIC = "kind::mxf4nvf4"
SEED_002_PTXAS = "Unexpected instruction types specified for '_mma'"
FIELD_RELEASE = "4.5.0"
FIELD_WHEELS = {"12.9": "nvidia-cutlass-dsl-libs-base", "13.1": "nvidia-cutlass-dsl-libs-cu13"}
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

# One subprocess: pick the payload, compile for sm_121a, print what happened as JSON.
PROBE = r'''
import ctypes, json, os, re, sys, pathlib
how, where, kernel = sys.argv[1:4]
if how == "driver":  # the installed DSL; its loader is told the driver supports CUDA `where`
    real = ctypes.CDLL
    class Driver:
        def cuDriverGetVersion(self, out):
            out._obj.value = int(where)
            return 0
    ctypes.CDLL = lambda name, *a, **k: Driver() if name == "libcuda.so.1" else real(name, *a, **k)
    import cutlass
    ctypes.CDLL = real
else:  # another release unpacked at `where` (interpreter started with -S: no .pth ran), then the
    # parent's path without its own DSL, for the DSL's dependencies (cuda-bindings, numpy, ...)
    sys.path[:0] = [where, *os.environ["PROBE_DEPS_PATH"].split(os.pathsep)]
    import cutlass
import cutlass.cute as cute
from cutlass import BFloat16, Float4E2M1FN, Float8E4M3FN, Float32, Int8

@cute.kernel
def one_mma(c_ptr: cute.Pointer):
    tidx, _, _ = cute.arch.thread_idx()
    tiled_mma = cute.make_tiled_mma(cute.nvgpu.warp.MmaMXF4NVF4Op(Float4E2M1FN, Float32, Float8E4M3FN))
    tCgC = tiled_mma.get_slice(tidx).partition_C(cute.make_tensor(c_ptr, cute.make_layout((16, 8), stride=(8, 1))))
    acc = cute.make_fragment_like(tCgC, Float32)
    acc.fill(0.0)
    a8 = cute.make_rmem_tensor(cute.make_layout(16), Int8)
    b8 = cute.make_rmem_tensor(cute.make_layout(8), Int8)
    a8.fill(0)
    b8.fill(0)
    a = cute.make_tensor(cute.recast_ptr(a8.iterator, dtype=Float4E2M1FN), cute.make_layout(((8, 2, 2, 2), 1)))
    b = cute.make_tensor(cute.recast_ptr(b8.iterator, dtype=Float4E2M1FN), cute.make_layout(((8, 2, 2), 1)))
    sfa = cute.make_rmem_tensor(cute.make_layout(((16, 4), 1), stride=((0, 1), 0)), Float8E4M3FN)
    sfb = cute.make_rmem_tensor(cute.make_layout(((16, 4), 1), stride=((0, 1), 0)), Float8E4M3FN)
    cute.gemm(tiled_mma, acc, [a, sfa], [b, sfb], acc)
    for i in cutlass.range_constexpr(cute.size(acc)):
        tCgC[i] = acc[i].to(BFloat16)

@cute.jit
def host(c_ptr: cute.Pointer):
    one_mma(c_ptr).launch(grid=[1, 1, 1], block=[32, 1, 1])

v = cutlass.CUDA_VERSION
out = {"dsl": cutlass.__version__, "payload": f"{v.major}.{v.minor}",
       "payload_so": pathlib.Path(sys.modules["cutlass._mlir._mlir_libs._cutlass_ir"].__file__).name}
dump = pathlib.Path(os.environ["CUTE_DSL_DUMP_DIR"])
try:
    if kernel == "gpuhil":  # the suite's native kernel, the GB10 decode config
        from gpuhil.kernels.aot import compile_for_target
        from gpuhil.kernels.nvfp4_grouped_gemm import cute_gemm as k, spec
        cfg = spec.GemmConfig(spec.NATIVE, spec.Tile(64, 64, 256), 5)
        res = compile_for_target(k.build(cfg), *k.aot_args(cfg), target="sm_121a", keep_dir=dump)
        ptx, cubin = res.ptx_path, res.cubin_path
    else:  # one block-scaled MMA, written against the API both releases share
        from cutlass.cute.runtime import make_ptr
        cute.compile(host, make_ptr(BFloat16, 0, cute.AddressSpace.gmem, assumed_align=16))
        ptx, cubin = next(dump.rglob("*.ptx")), next(dump.rglob("*.cubin"))
    out["ok"] = True
except Exception as exc:
    out["ok"], out["error"] = False, str(exc)
    ptx, cubin = next(dump.rglob("*.ptx"), None), None
if ptx is not None:
    text = ptx.read_text(errors="replace")
    out["mma"] = sorted(set(re.findall(r"(?m)^\s*(_?mma[\w.:]*)", text)))
    out["ptx_isa"] = re.search(r"(?m)^\.version\s+(\S+)", text).group(1)
if cubin is not None:
    m = re.search(rb"Cuda compilation tools, release (\d+\.\d+)", cubin.read_bytes())
    out["ptxas"] = m.group(1).decode() if m else None
print("PROBE " + json.dumps(out))
'''


def probe(how: str, where: str, kernel: str, tmp_path) -> dict:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    dump = tmp_path / f"dump-{how}-{Path(where).name}-{kernel}"
    dump.mkdir()
    env = {**os.environ, "CUTE_DSL_ARCH": "sm_121a", "CUTE_DSL_KEEP": "ptx,cubin", "CUTE_DSL_DUMP_DIR": str(dump),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    env["PROBE_DEPS_PATH"] = os.pathsep.join(p for p in sys.path if p and not (Path(p) / "cutlass").is_dir())
    flags = ["-S"] if how == "release" else []
    proc = subprocess.run([sys.executable, *flags, str(script), how, where, kernel], env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert lines, f"probe died (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("PROBE "):])


def native_refused_for(payload: str) -> bool:
    """The spec's own predicate, on an SM12x part whose DSL runs `payload`."""
    caps = Capabilities(source="seed 002", gpu_present=True, cc="12.1", arch_family=12, targets=targets_for("12.1"),
                        mma_kinds=mma_kinds_for("12.1"), smem_optin_bytes=101376, dsl_cuda=payload, cutlass_dsl="x")
    cfg = spec.config_for(spec.NATIVE, spec.tile_for(spec.NATIVE, 4096, 4), caps)
    return not check(spec.requirements(cfg), caps).ok


def installed_payloads() -> set[str]:
    import cutlass

    libs = Path(cutlass.__file__).parent / "_mlir" / "_mlir_libs"
    return {m.group(1) for f in libs.iterdir() if (m := re.match(r"_cutlass_ir\.cu(\d+)\.", f.name))}


DSL_ONLY = pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))


@pytest.mark.aot
@DSL_ONLY
def test_the_installed_dsl_loads_the_payload_the_driver_allows(tmp_path):
    if not {"12", "13"} <= installed_payloads():
        pytest.skip(f"needs both CuTe DSL payloads installed side by side, found cu{sorted(installed_payloads())}")
    cuda12 = probe("driver", "12090", "minimal", tmp_path)
    cuda13 = probe("driver", "13000", "minimal", tmp_path)
    assert (cuda12["payload"], cuda12["payload_so"].split(".")[1]) == ("12.9", "cu12"), cuda12
    assert cuda13["payload"].startswith("13.") and cuda13["payload_so"].split(".")[1] == "cu13", cuda13
    # the one-MMA kernel that reproduces seed 002 on the field release compiles from both payloads here
    for got in (cuda12, cuda13):
        assert got["ok"] and len(got["mma"]) == 1 and PUBLIC in got["mma"][0], got


@pytest.mark.aot
@DSL_ONLY
@pytest.mark.parametrize("driver", ["12090", "13000"])
def test_the_native_kernel_under_each_payload_of_the_installed_dsl(driver, tmp_path):
    """gpuhil's native kernel for sm_121a: the public spelling from either payload, assembled by
    that payload's own ptxas (the CUDA 12.9 one at PTX ISA 8.8)."""
    if not {"12", "13"} <= installed_payloads():
        pytest.skip(f"needs both CuTe DSL payloads installed side by side, found cu{sorted(installed_payloads())}")
    got = probe("driver", driver, "gpuhil", tmp_path)
    assert got["ok"], got.get("error", "")[-2000:]
    assert len(got["mma"]) == 1 and PUBLIC in got["mma"][0] and not got["mma"][0].startswith("_"), got
    assert got["ptxas"].split(".")[0] == got["payload"].split(".")[0], got
    if got["payload"].startswith("12."):
        assert got["ptx_isa"] == "8.8", got
    assert native_refused_for(got["payload"]) == (not got["payload"].startswith("13."))


def unpacked_release(payload: str) -> Path:
    """DSL FIELD_RELEASE with the wheel that carried `payload`, unpacked once into a cache dir."""
    cache = REPO / "build" / f"cutedsl-{FIELD_RELEASE}-{payload}"  # ignored by git, inside the checkout
    marker = cache / ".complete"
    if not marker.exists():
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--disable-pip-version-check",
               "--target", str(cache), f"nvidia-cutlass-dsl=={FIELD_RELEASE}", f"{FIELD_WHEELS[payload]}=={FIELD_RELEASE}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip(f"installing CuTe DSL {FIELD_RELEASE} ({FIELD_WHEELS[payload]}) took over 10 minutes")
        if proc.returncode:
            pytest.skip(f"cannot install CuTe DSL {FIELD_RELEASE} ({FIELD_WHEELS[payload]}) from the package "
                        f"registry: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        marker.touch()
    return cache / "nvidia_cutlass_dsl" / "python_packages"


@pytest.mark.aot
@DSL_ONLY
@pytest.mark.parametrize("payload", list(FIELD_WHEELS))
def test_the_field_release_reproduces_seed_002_and_the_gate_refuses_exactly_that(payload, tmp_path):
    got = probe("release", str(unpacked_release(payload)), "minimal", tmp_path)
    assert (got["dsl"], got["payload"]) == (FIELD_RELEASE, payload), got
    if payload.startswith("12."):
        assert not got["ok"] and SEED_002_PTXAS in got["error"], got
        assert got["mma"] == ["_mma.block_scale.scale_vec::4X.m16n8k64.row.col.f32.e2m1.e2m1.f32.ue4m3"], got
    else:
        assert got["ok"], got.get("error", "")[-2000:]
        assert got["mma"] == ["mma.sync.aligned.m16n8k64.row.col.kind::mxf4nvf4.block_scale.scale_vec::4X.f32.e2m1.e2m1.f32.ue4m3"], got
    assert native_refused_for(got["payload"]) == (not got["ok"])
