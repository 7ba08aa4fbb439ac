"""Seed 002: CuTe DSL 4.5.0 with its CUDA 12.9 native payload lowers the SM12x block-scaled NVFP4
MMA to PTX ptxas rejects, so a third-party CuTe DSL NVFP4 MoE provider fails at JIT on SM120/SM121
(suites/nvfp4_moe/test_seed002_payload.py compiles it: 4.5.1 and later do not). The matrix keeps that
as a strict known issue keyed on (arch_family 12, DSL payload < 13, DSL < 4.5.1) for third-party
cute-dsl providers of the nvfp4_moe suite.

Proven here on the CPU: a fake third-party provider registered through the `gpuhil.providers` entry
point fails like a kernel compiled by that DSL. A session reasoning as a GB10 or an RTX 5090 with
DSL 4.5.0 and its payload probed as 12.9 turns its case into a strict xfail with the upstream link;
with the CUDA 13 payload, or a later DSL, it runs and passes; on an H100 the issue does not apply;
gpuhil's own NVFP4 providers are never covered (they gate the native kernel and fall back instead).
"""

import textwrap

import pytest

from fakes import install_fake_distribution, make_checkout
from gpuhil.device import probe as probe_mod

KNOWN_ISSUE = "cutedsl-cuda12-payload-sm12x-nvfp4-mma"

FAKE_PROVIDER = textwrap.dedent('''
    from gpuhil.gating import Plan, Requirements
    from gpuhil.providers import PeerLaunch, Provider
    from gpuhil.versions import version_at_least


    class FakeB12xMoe(Provider):
        name, op, backend, origin = "fake-b12x-moe", "nvfp4_moe_layer", "cute-dsl", "fake-b12x-moe 0.1"

        def plan(self, problem, caps):
            return Plan("fake B12x MoE layer", requirements=(Requirements(needs_gpu=False),))

        def prepare(self, inputs, caps):
            # Like a kernel of DSL 4.5.0: its block-scaled MMA under the CUDA 12.9 payload fails in ptxas.
            if (caps.arch_family == 12 and not version_at_least(caps.dsl_cuda, "13.0")
                    and not version_at_least(caps.cutlass_dsl, "4.5.1")):
                raise RuntimeError("ptxas application ptx input, line 969; error : Unexpected instruction types "
                                   "specified for '_mma'")
            return PeerLaunch(lambda inputs, out: "ran")


    def providers():
        return [FakeB12xMoe()]
''')

SUITE = textwrap.dedent('''
    import pytest
    from gpuhil.ops import providers_for
    from gpuhil.ops.nvfp4_moe.problems import layer_problems
    from gpuhil.testing import case

    PROBLEM = layer_problems()[0]

    @pytest.mark.parametrize("implementation", [case(p, PROBLEM, p, id=p.name) for p in providers_for("nvfp4_moe_layer")])
    def test_layer_provider_compiles(implementation, capabilities):
        assert implementation(None, capabilities) == "ran"
''')


@pytest.fixture
def session(pytester, monkeypatch):
    make_checkout(pytester.path)
    (pytester.path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.device")\n')
    install_fake_distribution(pytester, "fake_b12x_moe", FAKE_PROVIDER,
                              "[gpuhil.providers]\nfake-b12x-moe = fake_b12x_moe:providers\n")
    (pytester.path / "suites" / "nvfp4_moe" / "test_fake_third_party_layer.py").write_text(SUITE)

    def run(sku: str, dsl: str, payload: str):
        # The software probe reads the DSL's version from its distribution and the active payload from
        # cutlass.CUDA_VERSION: report `dsl` and `payload`.
        version = probe_mod._version
        monkeypatch.setattr(probe_mod, "_version", lambda dist: dsl if dist == "nvidia-cutlass-dsl" else version(dist))
        monkeypatch.setattr(probe_mod, "_dsl_payload", lambda: payload)
        probe_mod.software_fingerprint.cache_clear()
        try:
            return pytester.runpytest("-rx", "--target-sku", sku, "-p", "no:cacheprovider")
        finally:
            probe_mod.software_fingerprint.cache_clear()
    return run


@pytest.mark.parametrize("sku", ["gb10", "rtx5090"])
def test_sm12x_with_a_cuda12_payload_makes_the_third_party_provider_a_strict_xfail(session, sku):
    out = session(sku, "4.5.0", "12.9")
    out.assert_outcomes(skipped=2, xfailed=1)  # gpuhil's two layer providers: their own gate (no GPU), no xfail
    out.stdout.fnmatch_lines([f"*XFAIL*fake-b12x-moe*known issue {KNOWN_ISSUE}*"
                              "https://github.com/NVIDIA/TensorRT-LLM/issues/15853*"])


def test_the_cuda13_payload_runs_it(session):
    session("gb10", "4.5.0", "13.1").assert_outcomes(passed=1, skipped=2)


def test_a_later_dsl_runs_it_from_the_cuda12_payload(session):
    session("gb10", "4.5.1", "12.9").assert_outcomes(passed=1, skipped=2)


def test_hopper_is_not_covered(session):
    session("h100", "4.5.0", "12.9").assert_outcomes(passed=1, skipped=2)
