"""What FlashInfer's providers hand the library and make of its answer, on the CPU in pure torch.

Each library call is replaced by a double that checks the arguments as FlashInfer does and answers
by FlashInfer's documented contract (the file:line each module cites): grouped_mm reads the group
starts of m_indptr and 128x4-tiled scale matrices, fp4_quantize returns its codes and its linear or
padded-tiled scale bytes, the CUTLASS MoE reads int64-packed weights with FC1 as [up, gate], 0-d
activation global scales and int32-viewed tiled block scales. Against gpuhil's references the
providers' launches must give what the suites demand. The kernels' own numerics are the GPU
suites' business; what is checked here is every conversion around them.
"""

import pytest
import torch

from fakes import flashinfer_jit_cache
from fixtures.grouped_gemm import assert_close_per_group
from gpuhil.formats.nvfp4 import swizzled_shape
from gpuhil.ops import provider
from gpuhil.ops.argmax.reference import reference_argmax
from gpuhil.ops.fp8_grouped_gemm.operands import RECIPES, quantize as fp8_quantize
from gpuhil.ops.fp8_grouped_gemm.reference import reference as fp8_reference
from gpuhil.ops.moe import GroupedGemmProblem
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.ops.nvfp4_moe.operands import LayerInputs, Nvfp4GroupedOperands, random_codes, random_scales
from gpuhil.thirdparty.flashinfer.layouts import ConvertedOnce, indptr, per_row

flashinfer = pytest.importorskip("flashinfer")  # the launchers import it; every call below is a double
CAPS = None  # the launchers read nothing of the device


@pytest.fixture(autouse=True)
def toolkit(tmp_path, monkeypatch):
    """A CUDA toolkit root with the headers FlashInfer's JIT modules include."""
    from flashinfer.jit import cpp_ext

    (tmp_path / "include").mkdir()
    for header in ("curand.h", "cublasLt.h", "cublas_v2.h"):
        (tmp_path / "include" / header).touch()
    monkeypatch.setattr(cpp_ext, "get_cuda_path", lambda: str(tmp_path))


def group_rows(m_indptr: torch.Tensor, rows: int):
    """(group, start, end) as the cuDNN graph reads m_indptr: its G starts; a group ends where the
    next starts, the last at the row count (grouped_mm/cudnn/core.py:253, 559)."""
    starts = m_indptr[:-1].tolist()
    for g, (start, end) in enumerate(zip(starts, [*starts[1:], rows])):
        yield g, start, end


def test_groups_offsets_and_per_row_values():
    offs = torch.tensor([2, 2, 5, 9], dtype=torch.int32)
    assert indptr(offs).tolist() == [0, 2, 2, 5, 9] and indptr(offs).dtype == torch.int32
    assert per_row(torch.tensor([10.0, 20.0, 30.0, 40.0]), offs, 9).tolist() == [10, 10, 30, 30, 30, 40, 40, 40, 40]


def test_a_conversion_is_redone_for_other_or_rewritten_weights_only():
    calls = []
    once = ConvertedOnce(lambda t: calls.append(1) or t * 2)
    w = torch.ones(4)
    once(w)
    once(w)
    assert len(calls) == 1
    w.add_(1)  # rewritten in place: its version counter moves
    assert once(w).tolist() == [4.0] * 4 and len(calls) == 2
    once(torch.ones(4))  # another tensor, even where the allocator hands out the same storage
    assert len(calls) == 3


# -- argmax


def test_top1_is_copied_into_the_callers_buffers_from_the_view_it_was_given(tmp_path, monkeypatch):
    flashinfer_jit_cache(tmp_path, monkeypatch, built=("topk",))  # the launcher refuses an unbuilt module
    seen = []

    def top_k(logits, k, tie_break=None, **kw):
        assert k == 1 and tie_break == flashinfer.topk.TopKTieBreak.SMALL
        seen.append(logits.stride())
        idx = logits.float().argmax(dim=1, keepdim=True)
        return logits.gather(1, idx), idx

    monkeypatch.setattr(flashinfer, "top_k", top_k)
    storage = torch.randn(5, 1000, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    logits = storage[:, 3:903]
    vals, idx = torch.full((5,), -1.0), torch.full((5,), -1, dtype=torch.int64)
    provider("argmax", "flashinfer-topk1").launcher(CAPS)(logits, (vals, idx))
    want_vals, want_idx = reference_argmax(logits)
    assert torch.equal(idx, want_idx) and torch.equal(vals, want_vals)
    assert seen == [(1000, 1)], "the strided view goes to top_k as it is"


# -- FP8 grouped GEMM


def fake_grouped_mm_fp8(a, b, m_indptr, alpha=None, out=None, out_dtype=torch.bfloat16, *, backend="cudnn", tactic=-1):
    assert a.dtype == b.dtype == torch.float8_e4m3fn and m_indptr.dtype == torch.int32
    assert m_indptr.shape == (b.shape[0] + 1,) and m_indptr[0] == 0 and alpha is None and out_dtype == torch.float32
    acc = torch.zeros(a.shape[0], b.shape[1])
    for g, start, end in group_rows(m_indptr, a.shape[0]):
        acc[start:end] = a[start:end].float() @ b[g].float().T
    return acc


@pytest.mark.parametrize("recipe", RECIPES)
def test_fp8_scales_are_applied_per_token_and_per_expert_after_the_fp32_accumulator(recipe, monkeypatch):
    monkeypatch.setattr(flashinfer.grouped_mm, "grouped_mm_fp8", fake_grouped_mm_fp8)
    problem = GroupedGemmProblem("odd", 48, 96, (5, 0, 1, 17, 3))
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(problem.total_tokens, problem.k, generator=gen) * torch.logspace(-1, 1, problem.total_tokens)[:, None]
    b = torch.randn(problem.groups, problem.n, problem.k, generator=gen) * torch.tensor([0.5, 1, 2, 4, 8])[:, None, None]
    q = fp8_quantize(a.bfloat16(), b.bfloat16(), torch.tensor(problem.offsets(), dtype=torch.int32), recipe)
    out = torch.full((problem.total_tokens, problem.n), float("nan"), dtype=torch.bfloat16)
    provider("fp8_grouped_gemm", "flashinfer-cudnn").launcher(CAPS)(q, out)
    assert_close_per_group(out, fp8_reference(q), problem)


# -- NVFP4 quantize


def fake_fp4_quantize(input, global_scale=None, sf_vec_size=16, sf_use_ue8m0=False, is_sf_swizzled_layout=True,
                      is_sf_8x4_layout=False, is_global_scale_inversed=False, enable_pdl=None, backend="cuda",
                      nvfp4_4over6="from the environment"):
    assert input.is_contiguous(), "fp4Quantize.cpp:43 CHECK_CONTIGUOUS"
    assert (sf_vec_size, sf_use_ue8m0, is_sf_8x4_layout, is_global_scale_inversed) == (16, False, False, False)
    assert backend == "cuda"
    assert nvfp4_4over6 is None, "the 4over6 recipe must be off, not read from the environment"
    packed, scales = R.quantize(input, global_scale)
    k16 = input.shape[-1] // sf_vec_size
    if is_sf_swizzled_layout:  # fp4_quantization.py:1220-1222
        return packed, R.swizzle_scales(scales).view(torch.uint8).reshape(-1, swizzled_shape(1, k16)[1])
    return packed, scales.view(torch.uint8).reshape(-1, k16)


@pytest.mark.parametrize("layout", ["linear", "swizzled"])
@pytest.mark.parametrize("strided", [False, True])
def test_quantize_outputs_land_in_both_layouts_poisoned_buffers(layout, strided, monkeypatch):
    from gpuhil.kernels.nvfp4_quant.spec import output_shapes

    monkeypatch.setattr(flashinfer, "fp4_quantize", fake_fp4_quantize)
    storage = torch.randn(130, 1024 + 64, generator=torch.Generator().manual_seed(2)).bfloat16()
    x = storage[:, 8:8 + 80] if strided else storage[:, :80].contiguous()  # K/16 = 5: padded scale columns
    g = R.global_scale(x)
    packed_shape, scale_shape = output_shapes(130, 80, layout)
    out = (torch.full(packed_shape, 0x5A, dtype=torch.uint8),
           torch.full(scale_shape, 0x5A, dtype=torch.uint8).view(torch.float8_e4m3fn))
    provider("nvfp4_quantize", "flashinfer").launcher(CAPS, layout=layout)((x, g), out)
    want_packed, want_scales = R.quantize(x, g)
    want_scales = R.swizzle_scales(want_scales) if layout == "swizzled" else want_scales
    assert torch.equal(out[0], want_packed)
    assert torch.equal(out[1].view(torch.uint8), want_scales.view(torch.uint8))


# -- NVFP4 grouped GEMM


def fake_grouped_mm_fp4(a, b, a_descale, b_descale, m_indptr, alpha=None, out=None, out_dtype=torch.bfloat16,
                        block_size=16, *, backend="cudnn", tactic=-1):
    """cuDNN's block-scaled grouped GEMM reading F8_128x4 scale matrices (cudnn/core.py:348, 370)."""
    t, k = a.shape[0], 2 * a.shape[1]
    g, n = b.shape[:2]
    assert a.dtype == b.dtype == torch.uint8 and block_size == 16 and alpha is None and out_dtype == torch.float32
    assert a_descale.dtype == b_descale.dtype == torch.float8_e4m3fn
    assert a_descale.shape == swizzled_shape(t, k // 16) and b_descale.shape == (g, *swizzled_shape(n, k // 16))
    a_scale = R.unswizzle_scales(a_descale.reshape(-1), t, k // 16)
    b_scale = R.unswizzle_scales(b_descale.reshape(g, -1), n, k // 16)
    acc = torch.zeros(t, n, dtype=torch.float64)
    for e, start, end in group_rows(m_indptr, t):
        acc[start:end] = R.block_products(a[start:end], a_scale[start:end], torch.float64) @ \
            R.block_products(b[e], b_scale[e], torch.float64).T
    return acc.float()


def test_nvfp4_gemm_gets_tiled_scales_and_applies_each_experts_alpha(monkeypatch):
    monkeypatch.setattr(flashinfer.grouped_mm, "grouped_mm_fp4", fake_grouped_mm_fp4)
    problem = GroupedGemmProblem("tails", 200, 80, (5, 131, 1, 0, 63))  # T, N not tile multiples; K/16 = 5
    gen = torch.Generator().manual_seed(3)
    t, n, k, g = problem.total_tokens, problem.n, problem.k, problem.groups
    ops = Nvfp4GroupedOperands(random_codes((t, k // 2), gen), random_scales((t, k // 16), gen),
                               random_codes((g, n, k // 2), gen), random_scales((g, n, k // 16), gen),
                               torch.tensor(problem.offsets(), dtype=torch.int32),
                               torch.empty(g).uniform_(0.01, 0.5, generator=gen))
    out = torch.full((t, n), float("nan"), dtype=torch.bfloat16)
    provider("nvfp4_grouped_gemm", "flashinfer-cudnn").launcher(CAPS)(ops, out)
    assert_close_per_group(out, R.grouped_reference(ops, problem.offsets()), problem)


# -- NVFP4 MoE layer


def fake_cutlass_fused_moe(input, token_selected_experts, token_final_scales, fc1_expert_weights,
                           fc2_expert_weights, output_dtype, quant_scales, *, output=None, **kw):
    """FlashInfer's NVFP4 CUTLASS MoE by its contract: FC1 rows [up, gate], weights int64-packed,
    scales tiled per expert and viewed as int32, the FC1/FC2 dequant the GEMM alphas, bf16 between."""
    ids, route_w = token_selected_experts, token_final_scales
    assert fc1_expert_weights.dtype == fc2_expert_weights.dtype == torch.int64 and ids.dtype == torch.int32
    g_in, s1, alpha1, g_mid, s2, alpha2 = quant_scales
    assert g_in.dim() == 0 and g_mid.dim() == 0 and s1.dtype == s2.dtype == torch.int32
    e, two_i, h16 = fc1_expert_weights.shape
    inter = two_i // 2

    def experts(w, scales):
        codes = w.view(torch.uint8)
        rows, k = codes.shape[1], codes.shape[2] * 2
        linear = R.unswizzle_scales(scales.view(torch.uint8).reshape(e, -1), rows, k // 16).view(torch.float8_e4m3fn)
        return R.block_products(codes, linear)

    w1, w2 = experts(fc1_expert_weights, s1), experts(fc2_expert_weights, s2)
    x = R.block_products(*R.quantize(input, g_in))
    out = torch.zeros(input.shape[0], w2.shape[1])
    for t in range(input.shape[0]):
        for slot in range(ids.shape[1]):
            ex = int(ids[t, slot])
            h = (x[t] @ w1[ex].T * alpha1[ex]).bfloat16().float()
            up, gate = h[:inter], h[inter:]
            m = (torch.nn.functional.silu(gate) * up).bfloat16()
            y = R.block_products(*R.quantize(m, g_mid)) @ w2[ex].T * alpha2[ex]
            out[t] += route_w[t, slot] * y.bfloat16().float()
    output.copy_(out.to(output_dtype))
    return [output]


def test_moe_layer_swaps_fc1_halves_and_passes_the_six_scales(monkeypatch):
    monkeypatch.setattr(flashinfer.fused_moe, "cutlass_fused_moe", fake_cutlass_fused_moe)
    gen = torch.Generator().manual_seed(4)
    experts, hidden, inter, tokens, top_k = 4, 64, 32, 8, 2
    hidden_states = torch.randn(tokens, hidden, generator=gen).bfloat16()
    logits = torch.randn(tokens, experts, generator=gen)
    w13 = R.NVFP4Experts.quantize(torch.randn(experts, 2 * inter, hidden, generator=gen) * hidden**-0.5)
    w2 = R.NVFP4Experts.quantize(torch.randn(experts, hidden, inter, generator=gen) * inter**-0.5)
    g_in = R.global_scale(hidden_states)
    g_mid = R.intermediate_amax_scale(hidden_states, logits, w13, top_k, input_global_scale=g_in)
    inputs = LayerInputs(hidden_states, logits, w13, w2, top_k, g_in, g_mid)
    out = torch.full((tokens, hidden), float("nan"))
    provider("nvfp4_moe_layer", "flashinfer-cutlass").launcher(CAPS)(inputs, out)
    ref = R.moe_layer(hidden_states, logits, w13, w2, top_k, input_global_scale=g_in, intermediate_global_scale=g_mid)
    err = ((out - ref).norm() / ref.norm()).item()
    assert err <= 2.0**-4, f"relative Frobenius error {err:.3f} (gate and up mixed up: ~0.8)"
