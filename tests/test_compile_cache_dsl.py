"""The compile cache with real CuTe DSL kernels: the key follows a kernel's source (its import closure),
the DSL's export writes the object, PTX and cubin of an AOT compile on a CPU machine, and a second
process loads them instead of compiling; on a GPU, a loaded kernel computes what a compiled one does
and takes the packed fast path. The store itself: test_compile_cache.py."""

import ast
import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpuhil.kernels import compile_cache, compile_key
from gpuhil.kernels.compile_cache import CompileCache

SRC = Path(__file__).resolve().parents[1] / "src"
KERNEL_MODULES = {  # each CuTe module that builds a kernel, and modules its binary depends on outside it
    "gpuhil.kernels.argmax.cute": ["gpuhil.kernels.argmax.spec"],
    "gpuhil.kernels.cluster_reduce.cute": ["gpuhil.kernels.cluster_reduce.spec"],
    "gpuhil.kernels.fp8_grouped_gemm.cute_warp": ["gpuhil.kernels.grouped_gemm.ring", "gpuhil.kernels.grouped_gemm.epilogue"],
    "gpuhil.kernels.fp8_grouped_gemm.cute_wgmma": ["gpuhil.kernels.grouped_gemm.schedule", "gpuhil.kernels.fp8_grouped_gemm.dsl_args"],
    "gpuhil.kernels.nvfp4_grouped_gemm.cute_gemm": ["gpuhil.kernels.grouped_gemm.launcher"],
    "gpuhil.kernels.nvfp4_quant.cute": ["gpuhil.formats.nvfp4"],
}


def toy_package(root: Path, name: str) -> None:
    """pkg/kernel.py imports .helpers at the top and .lazy inside a function; pkg/unrelated.py is not imported."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kernel.py").write_text("from .helpers import SCALE\n\ndef build(config, variant):\n"
                                   "    from . import lazy\n    return SCALE * lazy.OFFSET\n")
    (pkg / "helpers.py").write_text("SCALE = 2.0\n")
    (pkg / "lazy.py").write_text("OFFSET = 1\n")
    (pkg / "unrelated.py").write_text("X = 1\n")


def test_the_source_digest_follows_the_import_closure(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    toy_package(tmp_path, "toy_closure")
    importlib.import_module("toy_closure.kernel")
    assert sorted(compile_key.source_files("toy_closure.kernel")) == [
        "toy_closure", "toy_closure.helpers", "toy_closure.kernel", "toy_closure.lazy"]
    seen = {compile_key.source_digest("toy_closure.kernel")}
    for file, text in [("unrelated.py", "X = 2\n"), ("helpers.py", "SCALE = 3.0\n"), ("lazy.py", "OFFSET = 2\n"),
                       ("__init__.py", "# a package init runs on import\n"), ("kernel.py", "# edited\n")]:
        path = tmp_path / "toy_closure" / file
        path.write_text(path.read_text() + text if file == "kernel.py" else text)
        digest = compile_key.source_digest("toy_closure.kernel")
        assert (digest in seen) == (file == "unrelated.py"), file
        seen.add(digest)


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_each_kernels_closure_holds_the_code_it_is_built_from(module):
    importlib.import_module(module)
    files = compile_key.source_files(module)
    assert {module, "gpuhil.kernels.compiled", *KERNEL_MODULES[module]} <= set(files)
    others = {m for m in KERNEL_MODULES if m != module and m.rpartition(".")[0] != module.rpartition(".")[0]}
    assert not others & set(files), "another kernel's source does not recompile this one"
    # Nothing in the kernel packages imports by a computed name (which the closure could not follow),
    # but the key itself, which imports the top package the closure starts from.
    for name, path in files.items():
        if name.startswith(("gpuhil.kernels", "gpuhil.formats")) and name != "gpuhil.kernels.compile_key":
            calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]
            assert not [c for c in calls if getattr(c.func, "attr", getattr(c.func, "id", "")) in
                        ("import_module", "__import__")], name


def test_the_key_names_config_variant_and_target():
    pytest.importorskip("cutlass")
    from gpuhil.kernels.argmax import cute
    from gpuhil.kernels.argmax.spec import ArgmaxConfig

    base = compile_key.fields(cute.build, ArgmaxConfig(256, 8, 2), "bf16", "sm_90a", "aot")
    assert base["kernel"] == "gpuhil.kernels.argmax.cute:build" and base["dsl"] and base["dsl_cuda"]
    assert "arch=" in base["dsl_settings"] and "shared_libs=" in base["dsl_settings"]
    for other in [(ArgmaxConfig(256, 8, 4), "bf16", "sm_90a"), (ArgmaxConfig(256, 8, 2), "fp16", "sm_90a"),
                  (ArgmaxConfig(256, 8, 2), "bf16", "sm_100a")]:
        assert compile_key.digest(compile_key.fields(cute.build, *other, "aot")) != compile_key.digest(base)
    with pytest.raises(compile_key.NotCacheable):
        compile_key.config_text(object())


TOY_KERNEL = textwrap.dedent("""
    import cuda.bindings.driver as cuda
    import cutlass.cute as cute
    from cutlass import Float32
    from cutlass.cute.runtime import make_ptr

    from .consts import SCALE


    def build(threads, variant):
        @cute.kernel
        def scale_kernel(x: cute.Tensor):
            tidx, _, _ = cute.arch.thread_idx()
            x[tidx] = x[tidx] * Float32(SCALE)

        @cute.jit
        def host(x_ptr: cute.Pointer, stream: cuda.CUstream):
            scale_kernel(cute.make_tensor(x_ptr, cute.make_layout(threads))).launch(
                grid=[1, 1, 1], block=[threads, 1, 1], stream=stream)

        return host


    def aot_args(threads, variant):
        return (make_ptr(Float32, 0, cute.AddressSpace.gmem, assumed_align=4), cuda.CUstream(0))
""")


def _fresh_toy(root: Path, scale: str):
    (root / "toy_cute" / "consts.py").write_text(f"SCALE = {scale}\n")
    for name in [m for m in sys.modules if m == "toy_cute" or m.startswith("toy_cute.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return importlib.import_module("toy_cute.kernel")


@pytest.mark.aot
def test_an_aot_entry_holds_the_exported_object_ptx_and_cubin_and_an_edit_recompiles(tmp_path, monkeypatch):
    pytest.importorskip("cutlass")
    from gpuhil.kernels import aot

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # an edit within the same second is read again
    (tmp_path / "toy_cute").mkdir()
    (tmp_path / "toy_cute" / "__init__.py").write_text("")
    (tmp_path / "toy_cute" / "kernel.py").write_text(TOY_KERNEL)
    cache = CompileCache(tmp_path / "cute")
    toy = _fresh_toy(tmp_path, "3.0")
    compile_ = lambda keep: aot.compile_kernel_for_target(toy.build, toy.aot_args, 128, "fp32",  # noqa: E731
                                                          target="sm_90a", keep_dir=tmp_path / keep, cache=cache)
    cold = compile_("cold")
    [entry] = cache.entries()
    assert not cold.from_cache and entry.dsl == compile_cache.dsl_folder_name(compile_key.dsl_version())
    files = {p.name: p.read_bytes() for p in entry.path.iterdir()}
    assert sorted(files) == ["kernel.cubin", "kernel.o", "kernel.ptx", "meta.json"]
    assert files["kernel.o"][:4] == b"\x7fELF" and files["kernel.o"].find(b"\x7fELF", 4) > 0, "the cubin is embedded"
    assert files["kernel.cubin"] == cold.cubin_path.read_bytes() and files["kernel.ptx"] == cold.ptx_path.read_bytes()
    assert b".target sm_90a" in files["kernel.ptx"] and b"0f40400000" in files["kernel.ptx"]  # x * 3.0
    meta = json.loads(files["meta.json"])
    assert meta["fields"]["target"] == "sm_90a" and meta["fields"]["kernel"] == "toy_cute.kernel:build"

    warm = compile_("warm")
    assert warm.from_cache and warm.ptx_path.parent.parent == tmp_path / "warm"
    assert warm.ptx_path.read_text() == cold.ptx_path.read_text() and warm.ptx_path.name == cold.ptx_path.name
    assert (warm.smem_bytes, warm.cluster_shape, warm.kernel_name) == (cold.smem_bytes, cold.cluster_shape, cold.kernel_name)
    assert warm.compiled.__class__ is cold.compiled.__class__

    toy = _fresh_toy(tmp_path, "5.0")  # an edit to a module the kernel imports
    edited = compile_("edited")
    assert not edited.from_cache and len(cache.entries()) == 2
    assert "0f40A00000" in edited.ptx_path.read_text()  # x * 5.0: the edit is in the binary


SECOND_PROCESS = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import cutlass.cute as cute
    from gpuhil.kernels import compile_cache
    from gpuhil.kernels.argmax import cute as argmax
    from gpuhil.kernels.argmax.spec import ArgmaxConfig
    from gpuhil.kernels.cluster_reduce import cute as cluster_reduce

    if sys.argv[2] == "warm":
        def refuse(*args, **kwargs):
            raise AssertionError("compiled although the cache holds this kernel")
        cute.compile = refuse
    with compile_cache.scope(compile_cache.CompileCache(Path(sys.argv[1]))):
        aot = argmax.compile_argmax(ArgmaxConfig(256, 8, 2), "bf16", target="sm_90a")
        jit = cluster_reduce.compile_reduce(2)  # for this machine's arch (the DSL's default without a GPU)
    raw = (16, 32, 48, 64, 5, 7, 8, 0)
    print(json.dumps({"packed": aot.packed.agrees(raw), "jit": type(jit.fn).__name__,
                      "entries": len(compile_cache.CompileCache(Path(sys.argv[1])).entries())}))
""")


def run_child(script: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CompileCacheWarning" not in r.stderr, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


@pytest.mark.aot
def test_a_second_process_loads_real_kernels_instead_of_compiling(tmp_path):
    pytest.importorskip("cutlass")
    script = tmp_path / "child.py"
    script.write_text(SECOND_PROCESS)
    cold = run_child(script, str(tmp_path / "cute"), "cold")
    warm = run_child(script, str(tmp_path / "cute"), "warm")
    assert cold == warm == {"packed": True, "jit": "CudaDialectJitCompiledFunction", "entries": 2}


def _gpu() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU: launches a kernel loaded from the cache"
    try:
        import cutlass  # noqa: F401
    except ImportError:
        return "needs the CuTe DSL (gpuhil[cute])"
    return None


ON_GPU = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    import torch
    import cutlass.cute as cute
    from gpuhil.kernels import compile_cache
    from gpuhil.kernels.argmax import cute as argmax
    from gpuhil.kernels.argmax.spec import ArgmaxConfig

    if sys.argv[2] == "warm":
        def refuse(*args, **kwargs):
            raise AssertionError("compiled although the cache holds this kernel")
        cute.compile = refuse
    cache = compile_cache.CompileCache(Path(sys.argv[1]))
    with compile_cache.scope(cache):
        kernel = argmax.compile_argmax(ArgmaxConfig(256, 8, 1), "bf16")  # for this GPU
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(64, 32768, device="cuda", generator=g).to(torch.bfloat16)
    val = torch.empty(64, device="cuda", dtype=torch.float32)
    idx = torch.empty(64, device="cuda", dtype=torch.int64)
    for _ in range(3):  # the first call takes the generic path, the next ones the packed fast path
        argmax.launch(kernel, x, val, idx)
    torch.cuda.synchronize()
    print(json.dumps({"idx": idx.tolist(), "val": val.tolist(), "torch": x.float().argmax(dim=1).tolist(),
                      "fast": kernel.packed.fast, "entries": len(cache.entries())}))
""")


@pytest.mark.gpu
@pytest.mark.skipif(_gpu() is not None, reason=_gpu() or "")
def test_on_a_gpu_a_loaded_kernel_computes_what_a_compiled_one_does(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(ON_GPU)
    cold = run_child(script, str(tmp_path / "cute"), "cold")
    warm = run_child(script, str(tmp_path / "cute"), "warm")
    assert cold["entries"] == warm["entries"] == 1
    assert cold["idx"] == warm["idx"] == cold["torch"] and cold["val"] == warm["val"]
    assert cold["fast"] and warm["fast"], "the loaded function takes the packed fast path too"
