"""The NVFP4 cases' device-memory estimates (ops/nvfp4_moe/memory.py) against the peak of live tensors
torch really allocates, measured on the CPU on scaled-down shapes: an estimate must never be short
(the case would die in OutOfMemoryError instead of being skipped) nor wildly long (it would skip
cases that fit)."""

import dataclasses

import pytest
import torch

from gpuhil.ops.nvfp4_moe import memory, torch_peer
from gpuhil.ops.nvfp4_moe import reference as R
from gpuhil.ops.nvfp4_moe.layer import LayerKernels, moe_layer
from gpuhil.ops.nvfp4_moe.operands import LayerInputs, Nvfp4GroupedOperands
from gpuhil.ops.nvfp4_moe.problems import GroupedGemmProblem, LayerProblem, MoeLayer, uniform
from memory_peak import PeakBytes

LOOSE = 2.0  # an estimate may be this many times the measured peak at most (at these small shapes)


def grouped_operands(problem: GroupedGemmProblem, gen) -> Nvfp4GroupedOperands:
    t, n, k, g = problem.total_tokens, problem.n, problem.k, problem.groups
    scales = lambda *shape: torch.randint(0x20, 0x59, shape, generator=gen).to(torch.uint8).view(torch.float8_e4m3fn)
    return Nvfp4GroupedOperands(torch.randint(0, 256, (t, k // 2), generator=gen, dtype=torch.uint8), scales(t, k // 16),
                                torch.randint(0, 256, (g, n, k // 2), generator=gen, dtype=torch.uint8),
                                scales(g, n, k // 16), torch.tensor(problem.offsets(), dtype=torch.int32),
                                torch.rand(g, generator=gen) + 0.5)


@pytest.mark.parametrize("problem", [GroupedGemmProblem("decode", 256, 512, uniform(64, 8)),
                                     GroupedGemmProblem("prefill", 512, 1024, uniform(2048, 4)),
                                     GroupedGemmProblem("over-a-slice", 2048, 4096, uniform(96, 3))], ids=str)
def test_the_torch_gemm_peers_peak_is_within_its_estimate(problem):
    gen = torch.Generator().manual_seed(1)
    ops = grouped_operands(problem, gen)
    out = torch.empty(problem.total_tokens, problem.n, dtype=torch.bfloat16)
    operands = sum(t.untyped_storage().nbytes() for t in (*dataclasses.astuple(ops), out))
    assert operands <= memory.gemm_operand_bytes(problem.total_tokens, problem.n, problem.k, problem.groups)
    with PeakBytes(*dataclasses.astuple(ops), out) as peak:
        torch_peer.grouped_gemm(ops, out, grouped_mm=False)
    measured, estimate = operands + peak.peak, memory.grouped_gemm_bytes(problem, peer=True)
    assert measured <= estimate <= LOOSE * measured, (measured, estimate)


def test_the_peer_dequantizes_a_slice_at_a_time(monkeypatch):
    """Over one slice, the peer's temporaries stop growing with the weights: a weight set 4x the slice
    costs its bf16 copy and one slice's temporaries, not ~28 bytes an element of all of it."""
    monkeypatch.setattr(torch_peer, "SLICE_ELEMENTS", 1 << 18)
    problem = GroupedGemmProblem("four-slices", 512, 1024, uniform(16, 2))
    ops = grouped_operands(problem, torch.Generator().manual_seed(2))
    with PeakBytes(*dataclasses.astuple(ops)) as peak:
        torch_peer.grouped_gemm(ops, grouped_mm=False)
    weights = problem.groups * problem.n * problem.k
    assert weights == 4 << 18
    assert 2 * weights < peak.peak <= 2 * weights + memory.DEQUANTIZE_TEMP_BYTES * (1 << 18) * 1.1
    assert peak.peak <= memory.torch_gemm_workspace(16, 512, 1024, 2)


def layer_inputs(problem: LayerProblem, gen) -> LayerInputs:
    layer, t = problem.layer, problem.tokens
    hidden = torch.randn(t, layer.hidden, generator=gen).to(torch.bfloat16)
    logits = torch.randn(t, layer.experts, generator=gen)
    w13 = R.NVFP4Experts.quantize(torch.randn(layer.experts, 2 * layer.inter, layer.hidden, generator=gen) * 0.05)
    w2 = R.NVFP4Experts.quantize(torch.randn(layer.experts, layer.hidden, layer.inter, generator=gen) * 0.05)
    return LayerInputs(hidden, logits, w13, w2, layer.top_k, R.global_scale(hidden), torch.ones(1))


def _tensors(inputs: LayerInputs):
    return (inputs.hidden, inputs.router_logits, *dataclasses.astuple(inputs.w13), *dataclasses.astuple(inputs.w2),
            inputs.input_global_scale, inputs.intermediate_global_scale)


def _outputs_only(x, g):
    """gpuhil's kernels allocate their outputs and nothing else: these kernels do only that."""
    rows, k = x.shape
    return torch.zeros(rows, k // 2, dtype=torch.uint8), torch.zeros(rows, k // 16, dtype=torch.uint8).view(torch.float8_e4m3fn)


def _gemm_outputs_only(ops):
    return torch.zeros(ops.a.shape[0], ops.b.shape[1], dtype=torch.bfloat16)


LAYERS = [LayerProblem("decode", MoeLayer("small", 8, 256, 128, 2), 16, "uniform"),
          LayerProblem("prefill", MoeLayer("wide", 16, 512, 256, 4), 512, "uniform")]


@pytest.mark.parametrize("problem", LAYERS, ids=str)
@pytest.mark.parametrize("peer", [True, False], ids=["torch", "outputs-only-kernels"])
def test_a_layers_peak_is_within_its_estimate(problem, peer):
    inputs = layer_inputs(problem, torch.Generator().manual_seed(3))
    out = torch.empty(problem.tokens, problem.layer.hidden)
    held = sum(t.untyped_storage().nbytes() for t in (*_tensors(inputs), out))
    assert held <= memory.layer_input_bytes(problem)
    kernels = (LayerKernels(torch_peer.quantize, lambda ops: torch_peer.grouped_gemm(ops, grouped_mm=False)) if peer
               else LayerKernels(_outputs_only, _gemm_outputs_only))
    with PeakBytes(*_tensors(inputs), out) as peak:
        moe_layer(inputs, kernels, out)
    measured, estimate = held + peak.peak, memory.layer_bytes(problem, peer=peer)
    assert measured <= estimate <= LOOSE * measured, (measured, estimate)


def test_deepseek_v3s_torch_layer_is_what_a_139_gib_gpu_once_ran_out_on():
    """The numbers behind issue 29: with every expert dequantized at once (~28 bytes an element of
    gate_up's 7.5 G) the peer needed ~210 GB; a slice at a time it needs its bf16 copies, ~30 GB."""
    from gpuhil.ops.nvfp4_moe.problems import layer_problems

    prefill = next(p for p in layer_problems() if p.name == "deepseek-v3-prefill-uniform")
    need = memory.layer_bytes(prefill, peer=True)
    bf16_gate_up = 2 * 256 * 4096 * 7168
    assert bf16_gate_up < need < 40 * 2**30
    assert memory.layer_bytes(prefill, peer=False) < need / 2
