"""Seed 003: CUTLASS has no SM120/SM121 tensor/token-scaled FP8 grouped GEMM, so a CUTLASS-C++-based
provider has no kernel on consumer Blackwell. The matrix keeps that as a strict known issue keyed on
(arch_family 12, backend cutlass-cpp): the day upstream ships it, the XPASS says to retire the entry.

Proven here on the CPU: a fake third-party provider is registered through the `gpuhil.providers`
entry point, and a session reasoning as a GB10 or an RTX 5090 (--target-sku) turns its case into a
strict xfail carrying the upstream link, while an H100 session runs it normally and gpuhil's own
providers are untouched.
"""

import textwrap

import pytest

from fakes import install_fake_distribution, make_checkout

FAKE_PROVIDER = textwrap.dedent('''
    from gpuhil.gating import Plan, Requirements
    from gpuhil.providers import PeerLaunch, Provider


    class FakeCutlassMoe(Provider):
        name, op, backend, origin = "fake-cutlass-moe", "fp8_grouped_gemm", "cutlass-cpp", "fake-cutlass-moe 0.1"

        def plan(self, problem, caps):
            return Plan("fake CUTLASS MoE", requirements=(Requirements(needs_gpu=False),))

        def prepare(self, inputs, caps):
            # Like a CUTLASS build: the SM12x collective does not exist, so there is no kernel to call.
            if caps.arch_family == 12:
                raise NotImplementedError("Could not build a collective for given parameters (Sm120)")
            return PeerLaunch(lambda inputs, out: "ran")


    def providers():
        return FakeCutlassMoe()
''')

SUITE = textwrap.dedent('''
    import pytest
    from gpuhil.ops import providers_for
    from gpuhil.ops.fp8_grouped_gemm.problems import adversarial_problems
    from gpuhil.testing import case

    PROBLEM = adversarial_problems()[0]

    @pytest.mark.parametrize("implementation", [case(p, PROBLEM, p, id=p.name) for p in providers_for("fp8_grouped_gemm")
                                                if p.name == "fake-cutlass-moe"])
    def test_third_party_provider(implementation, capabilities):
        assert implementation(None, capabilities) == "ran"
''')


@pytest.fixture
def session_with_fake_provider(pytester):
    make_checkout(pytester.path)
    (pytester.path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.device")\n')
    install_fake_distribution(pytester, "fake_cutlass_moe", FAKE_PROVIDER,
                              "[gpuhil.providers]\nfake-cutlass-moe = fake_cutlass_moe:providers\n")
    (pytester.path / "suites" / "fp8_grouped_gemm" / "test_fake_third_party_case.py").write_text(SUITE)
    return pytester


@pytest.mark.parametrize("sku", ["gb10", "rtx5090"])
def test_consumer_blackwell_makes_the_cutlass_provider_a_strict_xfail(session_with_fake_provider, sku):
    out = session_with_fake_provider.runpytest("-rx", "--target-sku", sku, "-p", "no:cacheprovider")
    out.assert_outcomes(xfailed=1)
    out.stdout.fnmatch_lines(["*XFAIL*fake-cutlass-moe*known issue cutlass-sm12x-tensor-scaled-fp8-grouped-gemm*"
                              "https://github.com/NVIDIA/cutlass/issues/3263*"])


def test_hopper_runs_the_cutlass_provider(session_with_fake_provider):
    out = session_with_fake_provider.runpytest("--target-sku", "h100", "-p", "no:cacheprovider")
    out.assert_outcomes(passed=1)


def test_gpuhils_own_provider_is_not_covered_by_the_upstream_gap():
    from gpuhil.catalog import matrix
    from gpuhil.catalog.selection import CaseIdentity, applies
    from gpuhil.ops import providers_for

    ki = next(k for k in matrix.load().known_issues if k.id == "cutlass-sm12x-tensor-scaled-fp8-grouped-gemm")
    for p in providers_for("fp8_grouped_gemm"):
        case = CaseIdentity("fp8_grouped_gemm", "test_grouped_gemm_matches_reference", {"provider": p.name},
                            p.name, p.backend, "default")
        assert not applies(ki, case), p.name
