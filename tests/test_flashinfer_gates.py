"""FlashInfer's providers are gated by what FlashInfer itself states, read from the installed library
(support tables) or from its code (the constants and dispatch the modules cite), and judged per
feature on every catalog SKU: H200 and H100 run the quantize kernel (its SM90 bug is a known issue,
not a skip), cuDNN 9.19 skips the cuDNN grouped GEMMs naming the version, Hopper skips the NVFP4
GEMM and MoE layer by FlashInfer's own tables, an SM12x part skips only the top-k shapes FlashInfer
routes to its 128 KiB radix kernel. Listing the providers imports no flashinfer; the toolkit check
names the folder and header FlashInfer's JIT would miss."""

import dataclasses
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpuhil.catalog import matrix
from gpuhil.gating import check
from gpuhil.ops import provider
from gpuhil.ops.argmax.problems import ArgmaxProblem, problems as argmax_problems
from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
from gpuhil.ops.nvfp4_moe.problems import QuantizeProblem, adversarial_gemm_problems, layer_problems
from gpuhil.session import catalog_capabilities
from gpuhil.thirdparty.flashinfer import argmax, fp8_grouped_gemm, nvfp4_quantize, prebuilt, toolkit
from gpuhil.thirdparty.provider import LibraryNotUsable

from fakes import flashinfer_jit_cache

flashinfer = pytest.importorskip("flashinfer")  # the one import: its support tables are what is tested
MX = matrix.load(Path(__file__).parents[1] / "hardware_matrix.yaml")
SRC = Path(__file__).parents[1] / "src"

TOPK = provider("argmax", "flashinfer-topk1")
FP8 = provider("fp8_grouped_gemm", "flashinfer-cudnn")
QUANTIZE = provider("nvfp4_quantize", "flashinfer")
FP4 = provider("nvfp4_grouped_gemm", "flashinfer-cudnn")
LAYER = provider("nvfp4_moe_layer", "flashinfer-cutlass")


def caps_of(sku: str, cudnn: str = "9.19.0"):
    """A catalog SKU with FlashInfer and nvcc installed and the given cuDNN backend."""
    return dataclasses.replace(catalog_capabilities(MX.sku(sku)), cudnn=cudnn,
                               libraries=(("flashinfer-python", "0.7.2.post1"),), tools=(("nvcc", "13.0.88"),))


def verdict(prov, problem, caps, **options) -> str:
    reasons = [str(r) for req in prov.requirements_for(problem, caps, **options) for r in check(req, caps).reasons]
    return "; ".join(reasons) or "runs"


FP8_PROBLEM = adversarial_problems()[0]
FP4_PROBLEM = adversarial_gemm_problems()[0]
LAYER_PROBLEM = layer_problems()[0]
QUANTIZE_PROBLEM = QuantizeProblem("q", 64, 2048)


def test_listing_the_providers_imports_no_flashinfer():
    code = ("import sys\nfrom gpuhil.ops import providers_for, OPS\n"
            "ps = [p for op in OPS for p in providers_for(op.name)]\n"
            "assert any(p.origin.startswith('flashinfer-python') for p in ps)\n"
            "from gpuhil.ops import provider\nprovider('argmax', 'flashinfer-topk1').requirements\n"
            "provider('nvfp4_quantize', 'flashinfer').requirements\n"
            "print('flashinfer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "False"


def test_hopper_runs_top_k_and_the_quantizer_and_is_refused_the_rest_with_the_probed_values():
    h200 = caps_of("h200")
    assert verdict(TOPK, ArgmaxProblem(1, 151936, "bf16"), h200) == "runs"
    assert verdict(TOPK, ArgmaxProblem(1024, 151936, "bf16"), h200) == "runs"  # radix: 131072 B of 232448
    assert verdict(QUANTIZE, QUANTIZE_PROBLEM, h200, layout="swizzled") == "runs"  # the SM90 bug stays visible
    assert verdict(FP8, FP8_PROBLEM, h200) == \
        "cuDNN backend (torch.backends.cudnn.version()): needs >= 9.21.0, probed 9.19.0"
    assert verdict(FP8, FP8_PROBLEM, caps_of("h200", cudnn="9.21.0")) == "runs"
    tables = ("compute capability (the library's support metadata): needs one of 10.0, 10.3, 10.7, 11.0, 12.0, 12.1, "
              "probed 9.0")
    assert verdict(FP4, FP4_PROBLEM, caps_of("h200", cudnn="9.21.0")) == tables
    assert verdict(LAYER, LAYER_PROBLEM, h200) == tables


def test_blackwell_and_sm12x_run_every_provider_where_cudnn_is_new_enough():
    for sku in ("b200", "b300", "rtx5090", "gb10"):
        caps = caps_of(sku, cudnn="9.21.0")
        for prov, problem in ((FP8, FP8_PROBLEM), (QUANTIZE, QUANTIZE_PROBLEM), (FP4, FP4_PROBLEM),
                              (LAYER, LAYER_PROBLEM), (TOPK, ArgmaxProblem(1, 151936, "bf16"))):
            assert verdict(prov, problem, caps) == "runs", (sku, prov.op)


def test_sm12x_is_refused_only_the_top_k_shapes_routed_to_the_radix_kernel():
    gb10 = caps_of("gb10")
    assert verdict(TOPK, ArgmaxProblem(256, 151936, "bf16"), gb10) == "runs"  # CUB: bf16 wide rows, M <= 256
    assert verdict(TOPK, ArgmaxProblem(1024, 151936, "bf16"), gb10) == \
        "opt-in smem per block (MAX_SHARED_MEMORY_PER_BLOCK_OPTIN): needs 131072 B, probed 101376 B"


def test_pre_hopper_parts_are_judged_by_the_tables_and_the_radix_kernel():
    a100, l40s = caps_of("a100", cudnn="9.21.0"), caps_of("l40s", cudnn="9.21.0")
    assert verdict(TOPK, ArgmaxProblem(1, 32000, "bf16"), a100) == "runs"  # radix: A100 has the smem
    assert "needs 131072 B, probed 101376 B" in verdict(TOPK, ArgmaxProblem(1, 32000, "bf16"), l40s)
    assert verdict(FP8, FP8_PROBLEM, l40s) == "runs"  # cc 8.9 is in grouped_mm_fp8's table
    assert "needs one of 8.9, 9.0" in verdict(FP8, FP8_PROBLEM, a100)
    assert "needs one of 9.0, 10.0" in verdict(QUANTIZE, QUANTIZE_PROBLEM, a100)


def test_the_cudnn_providers_need_no_jit_toolchain_and_the_jit_ones_need_nvcc():
    assert not FP8.requirements.tools and not FP4.requirements.tools
    assert all(p.requirements.tools == {"nvcc"} for p in (TOPK, QUANTIZE, LAYER))
    assert all(p.requirements.libraries == {"flashinfer-python"} for p in (TOPK, FP8, QUANTIZE, FP4, LAYER))


# -- what the modules state from FlashInfer's code still holds for the installed release


def test_the_support_tables_read_are_flashinfers_own():
    from flashinfer.fused_moe import CutlassNvfp4Config
    from flashinfer.grouped_mm import grouped_mm_fp4, grouped_mm_fp8

    assert FP8.needs.ccs == {f"{c // 10}.{c % 10}" for c in range(200) if grouped_mm_fp8.is_compute_capability_supported(c)}
    assert FP4.needs.ccs == {f"{c // 10}.{c % 10}" for c in range(200) if grouped_mm_fp4.is_compute_capability_supported(c)}
    assert LAYER.needs.ccs == {f"{c // 10}.{c % 10}" for c in range(200) if CutlassNvfp4Config.supported(c)}
    assert "9.0" in FP8.needs.ccs and "9.0" not in FP4.needs.ccs


def test_the_cudnn_floor_is_the_one_flashinfer_checks():
    from flashinfer.grouped_mm.cudnn import core

    v = core._CUDNN_MOE_MIN_VERSION
    assert fp8_grouped_gemm.CUDNN_MOE_MIN_VERSION == f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def test_the_quantize_gate_is_the_table_of_modules_fp4_quantize_builds():
    from flashinfer.quantization.fp4_quantization import get_fp4_quantization_module

    keys = set(re.findall(r'"(\d+)f?": gen_fp4_quantization', inspect.getsource(get_fp4_quantization_module)))
    assert nvfp4_quantize.FP4_QUANTIZATION_CCS == {f"{k[:-1]}.{k[-1]}" for k in keys}


def test_the_top_k_backend_is_the_one_flashinfers_dispatch_picks(monkeypatch):
    """chosen_backend() against top_k's own predicates (topk.py:649-743), for every argmax problem on five
    compute capabilities; the capture check and the device query answered as for an eager call."""
    from flashinfer import topk as fi_topk

    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: False)
    grid = {(p.m, p.n, p.dtype) for p in argmax_problems()} | {(8, 262147, "fp32"), (1, 7, "bf16"), (64, 1 << 22, "bf16")}
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    for cc in ("7.5", "8.0", "9.0", "10.0", "12.0"):
        monkeypatch.setattr(fi_topk, "get_compute_capability", lambda device, cc=cc: tuple(map(int, cc.split("."))))
        for m, n, dtype in grid:
            logits = torch.empty(m, n, dtype=dtypes[dtype], device="meta")
            tie = fi_topk.TopKTieBreak.SMALL
            clusters = fi_topk.can_use_clusters_topk(None, logits.device, False, tie, False)
            cub = fi_topk.can_use_cub_topk(None, logits, tie, False, False) and fi_topk.is_cub_topk_beneficial(
                None, m, n, 1, logits.dtype, tie, False, clusters)
            assert argmax.chosen_backend(ArgmaxProblem(m, n, dtype), cc) == ("cub" if cub else "radix"), (cc, m, n, dtype)


def test_the_radix_kernels_shared_memory_is_filtered_top_ks():
    header = (Path(flashinfer.__file__).parent / "data" / "include" / "flashinfer" / "topk.cuh").read_text()
    size = int(re.search(r"FILTERED_TOPK_SMEM_INPUT_SIZE = (\d+) \* 1024", header).group(1)) * 1024
    assert "sizeof(int) * 2 * FILTERED_TOPK_SMEM_INPUT_SIZE" in header
    assert argmax.FILTERED_TOPK_SMEM_BYTES == 4 * 2 * size


# -- the CUDA toolkit FlashInfer's JIT resolves


@pytest.fixture
def toolkit_root(tmp_path, monkeypatch):
    from flashinfer.jit import cpp_ext

    monkeypatch.setattr(cpp_ext, "get_cuda_path", lambda: str(tmp_path))
    (tmp_path / "include").mkdir()
    return tmp_path


def test_a_toolkit_root_without_the_headers_is_refused_naming_the_folder_and_what_to_set(toolkit_root):
    (toolkit_root / "include" / "cublas_v2.h").touch()
    with pytest.raises(LibraryNotUsable) as err:
        toolkit.require_headers(toolkit.CUBLAS, "NVFP4 quantize")
    assert f"resolved at {toolkit_root}" in str(err.value)
    assert f"{toolkit_root / 'include'} lacks cublasLt.h: set CUDA_HOME" in str(err.value)


def test_a_toolkit_root_with_the_headers_is_used(toolkit_root):
    (toolkit_root / "include" / "curand.h").touch()
    assert toolkit.require_headers(toolkit.CURAND, "top-k") == toolkit_root
    assert toolkit.include_dir(Path("/usr")) == Path("/usr/include")



def test_an_unbuilt_top_k_module_is_refused_naming_its_cache_file_and_the_command_that_builds_it(tmp_path,
                                                                                                   monkeypatch):
    from flashinfer.jit.topk import gen_topk_module

    jit_cache = flashinfer_jit_cache(tmp_path, monkeypatch)
    if gen_topk_module().is_aot:
        pytest.skip("flashinfer-jit-cache provides the topk module here")
    with pytest.raises(LibraryNotUsable) as err:
        prebuilt.require_built("topk")
    text = str(err.value)
    assert f"no {jit_cache / 'topk' / 'topk.so'}" in text
    assert (f"`FLASHINFER_WORKSPACE_BASE={tmp_path} python -c "
            "'from flashinfer.topk import get_topk_module; get_topk_module()'`") in text


def test_a_built_top_k_module_is_used(tmp_path, monkeypatch):
    flashinfer_jit_cache(tmp_path, monkeypatch, built=("topk",))
    assert prebuilt.require_built("topk") is None
