"""Seed 002's known issue on FlashInfer's real B12x provider: CuTe DSL 4.5.0 with its CUDA 12.9 native
payload lowers the SM12x block-scaled NVFP4 MMA to PTX ptxas rejects, so FlashInfer's B12x NVFP4 MoE
fails at JIT on SM120/SM121 (suites/nvfp4_moe/test_seed002_*.py compile it: 4.5.1 and later do not).
The matrix keeps that as a strict known issue keyed on (arch_family 12, DSL payload < 13, DSL < 4.5.1)
and bound to the `flashinfer-b12x` provider of the nvfp4_moe suite.

Proven here on the CPU with a session per SKU and probed DSL (the probe's DSL version and payload
reported as given): the flashinfer-b12x case of a layer suite carries the strict xfail with the upstream
link exactly on SM12x with DSL 4.5.0 and its 12.9 payload; not with the 13.1 payload, not with a later
DSL, not on an H100; gpuhil's own layer providers never (they gate their native kernel and fall back).
Every case still skips here, for want of a GPU: the binding is what a GB10 runner would act on.
"""

import importlib
import importlib.util
import textwrap

import pytest

from fakes import make_checkout
from gpuhil.device import probe as probe_mod
from gpuhil.ops import providers_for

KNOWN_ISSUE = "cutedsl-cuda12-payload-sm12x-nvfp4-mma"
LINK = "https://github.com/NVIDIA/TensorRT-LLM/issues/15853"

SUITE = textwrap.dedent('''
    import pytest
    from gpuhil.ops import providers_for
    from gpuhil.ops.nvfp4_moe.problems import layer_problems
    from gpuhil.testing import case

    PROBLEM = layer_problems()[0]

    @pytest.mark.parametrize("implementation", [case(p, PROBLEM, p, id=p.name) for p in providers_for("nvfp4_moe_layer")])
    def test_layer_provider(implementation, capabilities):
        implementation(None, capabilities)
''')


# FlashInfer's extensions abort when imported a second time in one process, and pytester drops the
# modules an inner run imported: import it out here, before any inner run reads its support metadata.
if importlib.util.find_spec("flashinfer") is not None:
    importlib.import_module("flashinfer.fused_moe")


@pytest.fixture
def session(pytester, monkeypatch):
    make_checkout(pytester.path)
    (pytester.path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.device")\n')
    (pytester.path / "suites" / "nvfp4_moe" / "test_layer_providers.py").write_text(SUITE)

    def collect(sku: str, dsl: str, payload: str) -> dict:
        """The suite's cases under `--target-sku sku`, the probe reading DSL `dsl` with `payload`
        active: {provider: the strict xfail's reason, or None}."""
        version = probe_mod._version
        monkeypatch.setattr(probe_mod, "_version", lambda dist: dsl if dist == "nvidia-cutlass-dsl" else version(dist))
        monkeypatch.setattr(probe_mod, "_dsl_payload", lambda: payload)
        probe_mod.software_fingerprint.cache_clear()
        try:
            items, _ = pytester.inline_genitems("--target-sku", sku, "-p", "no:cacheprovider")
        finally:
            probe_mod.software_fingerprint.cache_clear()
        marks = {item.callspec.id: item.get_closest_marker("xfail") for item in items}
        assert all(m is None or m.kwargs["strict"] for m in marks.values()), marks
        return {name: m and m.kwargs["reason"] for name, m in marks.items()}
    return collect


@pytest.mark.parametrize("sku", ["gb10", "rtx5090"])
def test_sm12x_with_dsl_450_and_its_cuda12_payload_makes_flashinfer_b12x_a_strict_xfail(session, sku):
    reasons = session(sku, "4.5.0", "12.9")
    assert set(reasons) == {"torch", "gpuhil-cute", "flashinfer-cutlass", "flashinfer-b12x"}
    assert reasons["flashinfer-b12x"].startswith(f"known issue {KNOWN_ISSUE}:") and LINK in reasons["flashinfer-b12x"]
    assert reasons["torch"] is None and reasons["gpuhil-cute"] is None


@pytest.mark.parametrize("dsl, payload", [("4.5.0", "13.1"), ("4.5.1", "12.9"), ("4.8.1", "12.9")])
def test_the_cuda13_payload_or_a_later_dsl_is_not_covered(session, dsl, payload):
    assert set(session("gb10", dsl, payload).values()) == {None}


def test_hopper_is_not_covered(session):
    assert set(session("h100", "4.5.0", "12.9").values()) == {None}


def test_every_case_skips_here_for_want_of_a_gpu(session, pytester):
    session("gb10", "4.5.0", "12.9")
    out = pytester.runpytest("-rs", "--target-sku", "gb10", "-p", "no:cacheprovider")
    layer_providers = len(providers_for("nvfp4_moe_layer"))
    out.assert_outcomes(skipped=layer_providers)
    out.stdout.fnmatch_lines(["SKIPPED*requires GPU*: GPU: needs a CUDA device*"] * layer_providers)
