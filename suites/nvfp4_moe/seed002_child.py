"""The subprocess of seed002_probe: load one CuTe DSL payload, compile the named kernels for one
target (CUTE_DSL_ARCH, kept PTX and cubin in CUTE_DSL_DUMP_DIR, all set by the parent) and print one
line `PROBE <json>`: the DSL and its payload, and per kernel whether it compiled, the MMA
instructions of its PTX (and whether they sit in inline asm), the PTX ISA version and the ptxas
release that assembled the cubin, or the error.

    python [-S] seed002_child.py REQUEST_JSON

REQUEST_JSON: {"path": [...] (put first on sys.path: another DSL release, and what it needs),
"driver": 12090 (the cuDriverGetVersion the DSL's loader is told: it loads the newest payload
that driver supports), "kernels": [names in KERNELS or REPORTS], "layer": [experts, hidden, inter,
top_k] and "sm_count": N (FlashInfer's kernels')}.
Nothing is written outside the dump directory and no GPU is touched (the parent hides devices and
turns FlashInfer's compile cache off).
"""

import ctypes
import json
import os
import pathlib
import re
import sys

request = json.loads(sys.argv[1])
sys.path[:0] = request["path"]


class FakeDriver:
    def cuDriverGetVersion(self, out):
        out._obj.value = int(request["driver"])
        return 0


real_cdll = ctypes.CDLL
ctypes.CDLL = lambda name, *a, **k: FakeDriver() if name == "libcuda.so.1" else real_cdll(name, *a, **k)
import cutlass  # noqa: E402  (the payload is picked here)

ctypes.CDLL = real_cdll
import cutlass.cute as cute  # noqa: E402
from cutlass import BFloat16, Float4E2M1FN, Float8E4M3FN, Float32, Int8  # noqa: E402

DUMP = pathlib.Path(os.environ["CUTE_DSL_DUMP_DIR"])


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
def one_mma_host(c_ptr: cute.Pointer):
    one_mma(c_ptr).launch(grid=[1, 1, 1], block=[32, 1, 1])


def compile_one_mma():
    """One block-scaled MMA, written against the API every probed release shares."""
    from cutlass.cute.runtime import make_ptr

    cute.compile(one_mma_host, make_ptr(BFloat16, 0, cute.AddressSpace.gmem, assumed_align=16))


def compile_gpuhil_native():
    """gpuhil's native NVFP4 grouped GEMM, the GB10 decode config."""
    from gpuhil.kernels.aot import compile_for_target
    from gpuhil.kernels.nvfp4_grouped_gemm import cute_gemm as k
    from gpuhil.kernels.nvfp4_grouped_gemm import spec

    cfg = spec.GemmConfig(spec.NATIVE, spec.Tile(64, 64, 256), 5)
    compile_for_target(k.build(cfg), *k.aot_args(cfg), target=os.environ["CUTE_DSL_ARCH"], keep_dir=DUMP)


def b12x_impl():
    """FlashInfer's fused-MoE implementation, ready to compile without a device: its factories ask
    torch for the current stream only to pass it to cute.compile (FlashInfer's own offline compile
    workers answer the same way)."""
    import torch

    class OfflineStream:
        cuda_stream = 0

    torch.cuda.current_stream = lambda device=None: OfflineStream()
    from b12x.moe.fused_moe import _impl

    return _impl


def compile_b12x(backend: str, tokens: int) -> dict:
    """FlashInfer's NVFP4 (ModelOpt weights, NVFP4 activations) fused MoE kernel for `tokens`
    decode tokens of the layer, through its own kernel factory; `backend` is the kernel asked for,
    and the result says which one FlashInfer's policy picks for that batch."""
    import torch

    impl = b12x_impl()
    experts, hidden, inter, top_k = request["layer"]
    picked = impl.select_tp_moe_backend(num_tokens=tokens, num_topk=top_k, quant_mode="nvfp4")
    common = dict(topk_ids_dtype=torch.int32, fast_math=True, mac_override=request["sm_count"], quant_mode="nvfp4")
    if backend == "micro":
        impl._get_micro_kernel(experts, tokens, hidden, inter, top_k, single_token=tokens == 1, device=None, **common)
    else:
        impl._get_dynamic_kernel(experts, tokens, hidden, inter, top_k, tokens * top_k, **common)
    return {"tokens": tokens, "policy_backend": picked}


def b12x_gate() -> dict:
    """FlashInfer's own CuTe DSL requirement for b12x, as its is_supported checks it (imported as a
    module: attribute access on b12x._lib would load its compiler, which this DSL may not carry)."""
    import importlib

    gating = importlib.import_module("b12x._lib.gating")
    return {"min_dsl": gating.MIN_CUTLASS_DSL, "dsl_seen": gating.cutlass_dsl_version(),
            "dsl_ok": gating.has_cutlass_dsl()}


KERNELS = {
    "one-mma": compile_one_mma,
    "gpuhil-native": compile_gpuhil_native,
    "b12x-micro": lambda: compile_b12x("micro", 1),
    "b12x-dynamic": lambda: compile_b12x("dynamic", 8),
}
REPORTS = {"b12x-gate": b12x_gate}  # facts read without compiling


def mma_lines(ptx: str) -> tuple[list[str], bool]:
    """The distinct MMA opcodes of the PTX, and whether every one sits in an inline-asm block."""
    found, inline = set(), True
    previous = ""
    for line in ptx.splitlines():
        m = re.match(r"\s*(_?mma[\w.:]*)", line)
        if m:
            found.add(m.group(1))
            inline = inline and "begin inline asm" in previous
        if line.strip():
            previous = line
    return sorted(found), inline and bool(found)


def compiled_files(before: set) -> tuple[pathlib.Path | None, pathlib.Path | None]:
    new = sorted(set(DUMP.rglob("*")) - before)
    return (next((p for p in new if p.suffix == ".ptx"), None), next((p for p in new if p.suffix == ".cubin"), None))


def probe(name: str) -> dict:
    before = set(DUMP.rglob("*"))
    out: dict = {}
    try:
        out.update(KERNELS[name]() or {})
        out["ok"] = True
    except Exception as exc:  # noqa: BLE001 - what the compiler said is the result
        out["ok"], out["error"] = False, f"{type(exc).__name__}: {exc}"
    ptx, cubin = compiled_files(before)
    if ptx is not None:
        text = ptx.read_text(errors="replace")
        out["mma"], out["mma_inline_asm"] = mma_lines(text)
        out["ptx_isa"] = re.search(r"(?m)^\.version\s+(\S+)", text).group(1)
    if cubin is not None and out["ok"]:
        m = re.search(rb"Cuda compilation tools, release (\d+\.\d+)", cubin.read_bytes())
        out["ptxas"] = m.group(1).decode() if m else None
    return out


version = cutlass.CUDA_VERSION
result = {"dsl": cutlass.__version__, "payload": f"{version.major}.{version.minor}",
          "payload_so": pathlib.Path(sys.modules["cutlass._mlir._mlir_libs._cutlass_ir"].__file__).name,
          "kernels": {}}
for kernel in request["kernels"]:
    result["kernels"][kernel] = REPORTS[kernel]() if kernel in REPORTS else probe(kernel)
print("PROBE " + json.dumps(result), flush=True)
