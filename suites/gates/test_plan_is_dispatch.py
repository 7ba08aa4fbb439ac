"""Gate and dispatch ask one plan, on the CPU, for every catalog SKU x provider x problem (and every
forced option the suites sweep): what a test case is gated on (`provider.requirements_for`) is what
the config `prepare` really builds there needs, that config is the plan's, and where the gate refuses,
`prepare` refuses before compiling, naming the same feature and probed value.

`prepare` runs for real on meta tensors (shapes, no memory) up to the compile, which is replaced by a
recorder of the config it was handed. Both DSL payloads: seed 002's fallback changes the plan.
"""

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from gpuhil.gating import Requirements, UnsupportedConfig, check
from gpuhil.kernels.argmax import spec as argmax_spec
from gpuhil.kernels.contract import KernelSpec
from gpuhil.kernels.fp8_grouped_gemm import spec_warp, spec_wgmma
from gpuhil.kernels.nvfp4_grouped_gemm import spec as nvfp4_spec
from gpuhil.kernels.nvfp4_grouped_gemm import spec_wgmma as nvfp4_wgmma_spec
from gpuhil.kernels.nvfp4_quant import spec as quant_spec
from gpuhil.ops import op, providers_for
from gpuhil.ops.argmax.operands import TORCH_DTYPES
from gpuhil.ops.argmax.problems import ArgmaxProblem
from gpuhil.thirdparty.provider import LibraryNotUsable

SPEC_OF = {argmax_spec.ArgmaxConfig: argmax_spec, spec_warp.WarpGemmConfig: spec_warp,
           spec_wgmma.WgmmaConfig: spec_wgmma, nvfp4_spec.GemmConfig: nvfp4_spec,
           nvfp4_wgmma_spec.NvWgmmaConfig: nvfp4_wgmma_spec, quant_spec.QuantizeConfig: quant_spec}
META = "meta"


@pytest.fixture
def recorded(monkeypatch):
    """Every compile entry point the kernel packages call, replaced by one that hands back its config."""
    from gpuhil.kernels.argmax import cute as argmax_cute
    from gpuhil.kernels.fp8_grouped_gemm import cute_warp, cute_wgmma
    from gpuhil.kernels.nvfp4_grouped_gemm import cute_gemm
    from gpuhil.kernels.nvfp4_grouped_gemm import cute_wgmma as nvfp4_wgmma
    from gpuhil.kernels.nvfp4_quant import cute as quant_cute

    def record(config, *_variant):
        return SimpleNamespace(config=config)

    for module, name in ((argmax_cute, "compile_argmax"), (cute_warp, "compile_gemm"), (cute_wgmma, "compile_gemm"),
                         (cute_gemm, "compile_gemm"), (nvfp4_wgmma, "compile_gemm"),
                         (quant_cute, "compile_quantize")):
        monkeypatch.setattr(module, name, record)


def meta(*shape, dtype=torch.uint8):
    return torch.empty(*shape, dtype=dtype, device=META)


def inputs_of(op_name: str, problem):
    """Operands of the problem's shape, as each op's providers take them (no memory behind them)."""
    if op_name == "argmax":
        return meta(problem.m, problem.n, dtype=TORCH_DTYPES[problem.dtype])
    if op_name == "fp8_grouped_gemm":
        return SimpleNamespace(recipe="rowwise", a=meta(problem.total_tokens, problem.k),
                               b=meta(problem.groups, problem.n, problem.k))
    if op_name == "nvfp4_grouped_gemm":
        return SimpleNamespace(a=meta(problem.total_tokens, problem.k // 2), b=meta(problem.groups, problem.n, problem.k // 2))
    if op_name == "nvfp4_quantize":
        return meta(problem.rows, problem.k, dtype=torch.bfloat16), meta(1, dtype=torch.float32)
    raise AssertionError(op_name)


def forced_options(op_name: str, provider_name: str):
    """The options the suites force, with the problems they force them on (None: every problem)."""
    yield {}, None
    if provider_name == "gpuhil-cute" and op_name == "argmax":
        shapes = [ArgmaxProblem(m, 151936, "bf16") for m in (1, 2, 64)]
        for c in (*argmax_spec.FORCEABLE_CLUSTERS, 32):
            yield {"cluster_n": c}, shapes
        for c in argmax_spec.FORCEABLE_SPLITS:
            yield {"split_n": c}, shapes
    problems = op(op_name).problems()[:6]  # the adversarial shapes come first
    if provider_name == "gpuhil-cute-warp":
        for tile in spec_warp.TILES:
            yield {"tile": tile}, problems
    if provider_name == "gpuhil-cute-wgmma":
        for key in spec_wgmma.all_configs():
            yield {"tile": key.tile, "cluster_m": key.cluster_m, "cluster_n": key.cluster_n,
                   "pingpong": key.pingpong}, problems[:2]
    tiles = {"gpuhil-cute-dequant": nvfp4_spec.TILES[nvfp4_spec.DEQUANT],
             "gpuhil-cute-native": nvfp4_spec.TILES[nvfp4_spec.NATIVE],
             "gpuhil-cute-dequant-wgmma": nvfp4_wgmma_spec.TILES}.get(provider_name, ())
    if op_name == "nvfp4_grouped_gemm":
        for tile in tiles:
            yield {"tile": tile}, problems


def test_every_kernel_spec_speaks_the_contract():
    assert [s.__name__ for s in SPEC_OF.values() if not isinstance(s, KernelSpec)] == []


# The layer's GEMMs are prepared per call, from the routed counts: its parts are covered here.
OPS = ("argmax", "fp8_grouped_gemm", "nvfp4_quantize", "nvfp4_grouped_gemm")


@pytest.mark.requires(Requirements(needs_gpu=False, needs_dsl=True))
@pytest.mark.parametrize("payload", ["13.0", "12.9"])
@pytest.mark.parametrize("op_name", OPS)
def test_the_gate_is_what_prepare_builds(op_name, payload, sku, catalog_caps, recorded):
    caps = dataclasses.replace(catalog_caps, dsl_cuda=payload)
    cases = 0
    for provider in providers_for(op_name):
        for options, problems in forced_options(op_name, provider.name):
            for problem in problems or op(op_name).problems():
                if provider.unsupported(problem):
                    continue
                what = (provider.name, getattr(problem, "name", problem), options)
                cases += 1
                gate = provider.requirements_for(problem, caps, **options)
                refusals = [v for v in (check(r, caps) for r in gate) if not v.ok]
                try:
                    launch = provider.prepare(inputs_of(op_name, problem), caps, **options)
                except UnsupportedConfig as exc:
                    assert refusals, (what, "dispatch refused what the gate lets run", str(exc))
                    assert refusals[0].explain() in str(exc), (what, str(exc))
                    continue
                except LibraryNotUsable:  # a kernel library this process lacks: its cases skip alike
                    continue
                assert not refusals, (what, "dispatch built what the gate refuses", refusals[0].explain())
                plan = provider.plan(problem, caps, **options)
                assert launch.config == plan.config, what
                if launch.config is None:  # a torch peer: the gate is its own needs
                    assert gate == plan.requirements, what
                else:  # the kernel's own requirements, then only the free memory the case holds
                    kernel, *memory = gate
                    assert kernel == SPEC_OF[type(launch.config)].requirements(launch.config), what
                    assert all(r == Requirements(device_memory_bytes=r.device_memory_bytes) for r in memory), what
    assert cases, f"no {op_name} case was compared on {caps.source}"
