"""Which NVFP4 grouped-GEMM kernel and config each catalog SKU gets, on the CPU (no DSL, no GPU).

Seed 002: an SM12x part whose CuTe DSL payload is CUDA 12.x must not be handed the native
block-scaled kernel; it falls back to the dequant kernel with an actionable warning, and the gate
table says so. Seed 001: stages come from the SKU's opt-in shared memory, never from its family.
Grid: every catalog SKU x every MoE problem (each layer, both GEMMs, decode and prefill).
"""

import dataclasses

import pytest

from gpuhil.device.probe import software_fingerprint
from gpuhil.gating import check
from gpuhil.kernels.nvfp4_grouped_gemm import GroupedShape, spec
from gpuhil.ops import nvfp4_moe
from gpuhil.ops.nvfp4_moe.problems import gemm_problems
from gpuhil.session import catalog_capabilities

PROBLEMS = gemm_problems()


def runner_caps(sku, dsl_cuda: str | None = "13.0"):
    """The SKU as its own runner decides, with a DSL of the given payload (None: no DSL)."""
    caps = catalog_capabilities(sku, software_fingerprint())
    return dataclasses.replace(caps, dsl_cuda=dsl_cuda, cutlass_dsl="4.8.1" if dsl_cuda else None)


def is_sm12x(sku) -> bool:
    return sku.arch_family == 12


def choices(caps):
    return [(p, spec.kernel_choice(p.n, p.total_tokens / p.groups, caps)) for p in PROBLEMS]


def test_the_choice_is_a_config_the_sku_runs_or_a_refusal_that_names_the_isa(sku):
    caps = runner_caps(sku)
    for p, choice in choices(caps):
        verdict = check(spec.requirements(choice.config), caps)
        runs_native = {"sm_120a", "sm_121a"} & caps.targets
        if runs_native:
            assert choice.config.kernel == spec.NATIVE and verdict.ok, (p.name, choice)
        elif "sm_90a" in caps.targets:
            assert choice.config.kernel == spec.DEQUANT and verdict.ok, (p.name, choice)
            assert choice.warning() is None  # Hopper cannot run the MMA at all: nothing to fix
        else:  # neither kernel is built for this ISA (e.g. sm_100a, sm_89)
            assert not verdict.ok
            assert any(r.feature == "ISA target" for r in verdict.reasons), verdict.explain()
        assert choice.config.stages == spec.stages_for(choice.config.kernel, choice.config.tile,
                                                       caps.smem_optin_bytes) or not verdict.ok


@pytest.mark.skus(where=is_sm12x)
@pytest.mark.parametrize("payload", ["12.9", "12.8"])
def test_sm12x_with_a_cuda12_payload_falls_back_to_dequant_with_a_warning(sku, payload):
    """Seed 002: the native kernel's gate is the payload, and dispatch says what to fix."""
    caps = runner_caps(sku, payload)
    for p, choice in choices(caps):
        assert choice.config.kernel == spec.DEQUANT and choice.fell_back, p.name
        reasons = [str(r) for r in choice.native.reasons]
        assert reasons == [f"DSL payload CUDA (cutlass.CUDA_VERSION): needs >= 13.0, probed {payload}"]
        warning = choice.warning()
        assert warning and "kind::mxf4nvf4" in warning and payload in warning
        assert "nvidia-cutlass-dsl-libs-cu13" in warning
        assert check(spec.requirements(choice.config), caps).ok  # the fallback itself runs there


@pytest.mark.skus(where=is_sm12x)
def test_the_gate_table_shows_the_fallback(sku):
    """`gpuhil gates` rows carry the decision: native refused by payload, the fallback named."""
    caps = runner_caps(sku, "12.9")
    rows = list(nvfp4_moe.gemm_gate_rows(caps))
    native = [r for r in rows if r.config.startswith("gpuhil-cute-nvfp4-native")]
    dequant = [r for r in rows if r.config.startswith("gpuhil-cute-nvfp4-dequant")]
    assert len(native) == len(spec.TILES[spec.NATIVE]) and len(dequant) == len(spec.TILES[spec.DEQUANT])
    for row in native:
        assert not check(row.requirements, caps).ok
        assert "dequant kernel" in row.details["fallback"]
    assert sum(len(r.details["chosen_for"]) for r in dequant) == len({p.name.removesuffix("-uniform")
                                                                     for p in PROBLEMS if p.name.endswith("uniform")})
    healthy = list(nvfp4_moe.gemm_gate_rows(runner_caps(sku, "13.0")))
    assert all("fallback" not in r.details for r in healthy)
    assert sum(len(r.details["chosen_for"]) for r in healthy if r.config.startswith("gpuhil-cute-nvfp4-native")) > 0


def test_stages_follow_the_probed_opt_in_smem_not_the_family(gpuhil_session):
    """Seed 001: the GB10 and the RTX 5090 get the stages their 101376 B allow; the H100 more."""
    mx = gpuhil_session.matrix
    h100, gb10 = runner_caps(mx.sku("h100")), runner_caps(mx.sku("gb10"))
    for kernel in spec.KERNELS:
        for tile in spec.TILES[kernel]:
            big, small = spec.config_for(kernel, tile, h100), spec.config_for(kernel, tile, gb10)
            assert big is not None and big.stages >= (small.stages if small else 0)
            if small:
                assert spec.smem_bytes(kernel, tile, small.stages) <= gb10.smem_optin_bytes
                assert spec.smem_bytes(kernel, tile, small.stages + 1) > gb10.smem_optin_bytes or small.stages == spec.MAX_STAGES


def test_a_tile_two_stages_of_which_do_not_fit_is_refused_with_byte_counts(gpuhil_session):
    tile = spec.Tile(128, 128, 128)
    gb10 = runner_caps(gpuhil_session.matrix.sku("gb10"))
    assert spec.config_for(spec.DEQUANT, tile, gb10) is None
    verdict = check(spec.requirements(spec.GemmConfig(spec.DEQUANT, tile, spec.MIN_STAGES)), gb10)
    assert [str(r) for r in verdict.reasons] == [
        "opt-in smem per block (MAX_SHARED_MEMORY_PER_BLOCK_OPTIN): needs 102400 B, probed 101376 B"]
    chosen = {c.config.tile for _, c in choices(dataclasses.replace(gb10, dsl_cuda="12.9"))}
    assert tile not in chosen  # the per-shape choice never picks it for a 99 KiB part


def test_choice_is_a_pure_function_of_shape_and_capabilities(gpuhil_session):
    caps = runner_caps(gpuhil_session.matrix.sku("gb10"))
    assert choices(caps) == choices(dataclasses.replace(caps))
    assert spec.kernel_choice(4096, 4, caps) != spec.kernel_choice(4096, 4096, caps)  # decode and prefill differ


def test_shapes_the_kernels_do_not_take_are_named():
    assert spec.unsupported(GroupedShape(8, 64, 1, 1.0)) is None
    assert spec.unsupported(GroupedShape(8, 2000, 1, 1.0)) == "gpuhil-cute NVFP4 grouped GEMM: K=2000 (needs a multiple of 64)"
    assert "N=12 (needs a multiple of 8)" in spec.unsupported(GroupedShape(12, 64, 1, 1.0))


def test_the_wgmma_kernel_is_offered_on_sm90a_only_and_never_picked_by_dispatch(sku):
    """gpuhil-cute-dequant-wgmma: its own provider, gated like the others (ISA sm_90a, the probed smem);
    dispatch keeps the dequant kernel on Hopper until a GPU bench shows the wgmma one faster."""
    from gpuhil.kernels import nvfp4_grouped_gemm
    from gpuhil.kernels.nvfp4_grouped_gemm import spec_wgmma

    caps = runner_caps(sku)
    rows = [r for r in nvfp4_moe.gemm_gate_rows(caps) if r.config.startswith(spec_wgmma.NAME)]
    assert len(rows) == len(spec_wgmma.TILES) and all(r.details["chosen_for"] == [] for r in rows)
    for p in PROBLEMS:
        planned = nvfp4_grouped_gemm.plan(p, caps, kernel=spec_wgmma.KERNEL)
        verdict = check(planned.requirements[0], caps)
        if "sm_90a" in caps.targets:
            assert verdict.ok and planned.config.tile == spec_wgmma.tile_for(p.tokens_per_group), p.name
            assert planned.config.stages == spec_wgmma.stages_for(planned.config.tile, caps.smem_optin_bytes)
        else:
            assert not verdict.ok and any(r.feature == "ISA target" for r in verdict.reasons), verdict.explain()
        assert nvfp4_grouped_gemm.plan(p, caps).config.kernel != spec_wgmma.KERNEL


def test_the_wgmma_kernel_names_the_shapes_it_does_not_take():
    from gpuhil.kernels.nvfp4_grouped_gemm import spec_wgmma

    assert spec_wgmma.unsupported(GroupedShape(8, 64, 1, 1.0)) is None
    assert spec_wgmma.unsupported(GroupedShape(8, 1088, 8, 1.0)) is None  # no TMA: any K % 64 == 0
    assert "K=2000 (needs a multiple of 64)" in spec_wgmma.unsupported(GroupedShape(8, 2000, 1, 1.0))
    assert "G=1025 (at most 1024 groups)" in spec_wgmma.unsupported(GroupedShape(8, 64, 1025, 1.0))
