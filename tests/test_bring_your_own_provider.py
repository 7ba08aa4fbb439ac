"""Bring your own kernel (docs/PROVIDERS.md): the example package examples/team_kernels, installed with
pip into a throwaway environment, joins gpuhil's suites through its entry point alone, and gets
gpuhil's gates (its own requirements, on a probed device), known issues keyed on its version, and the
fingerprint. Its numerics are checked here on the CPU against the argmax reference; on a GPU it runs
in the real argmax suites and `gpuhil bench argmax` (see docs/PERF.md).

The device is a fake driver answering like a catalog SKU, probed as if attached, so the gate decides
from probed attributes exactly as on a runner; the kernel itself is torch and runs on CPU tensors.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from fakes import FakeDriver, FakeNvml, make_checkout
from gpuhil import session as session_mod
from gpuhil.catalog import matrix as matrix_mod
from gpuhil.device.probe import probe

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "team_kernels"
MX = matrix_mod.load(REPO / "hardware_matrix.yaml")

# Run in the throwaway checkout: every argmax provider a third party registered, on the suite's rules.
SUITE = textwrap.dedent('''
    import pytest
    import torch

    from gpuhil.ops import providers_for
    from gpuhil.ops.argmax.problems import ArgmaxProblem
    from gpuhil.ops.argmax.reference import reference_argmax
    from gpuhil.testing import case

    PROBLEM = ArgmaxProblem(8, 32000, "fp32")
    TEAM = [p for p in providers_for("argmax") if p.origin.startswith("team-kernels")]

    @pytest.mark.parametrize("provider", [case(p, PROBLEM, p, id=p.name) for p in TEAM])
    def test_ties_pick_the_first_index(provider, capabilities):
        logits = torch.randint(-2, 3, (PROBLEM.m, PROBLEM.n), generator=torch.Generator().manual_seed(0)).float()
        vals = torch.full((PROBLEM.m,), -12345.0)
        idx = torch.full((PROBLEM.m,), -1, dtype=torch.int64)
        provider(logits, capabilities, out=(vals, idx))
        ref_vals, ref_idx = reference_argmax(logits)
        assert torch.equal(idx, ref_idx) and torch.equal(vals, ref_vals.float())
''')

LAST_INDEX_BUG = {
    "id": "team-kernels-last-index-ties", "when": {"library:team-kernels": "<1.0"}, "mode": "xfail",
    "applies_to": {"suite": "argmax", "provider": "team-argmax"},
    "reason": "team-kernels 0.9 returns the last of equal maxima", "link": "https://example.org/team/issues/7",
    "expires": "2099-01-01",
}


def pip_install(source: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example as released (1.0.0), and a 0.9 with the tie bug 1.0.0 fixed, each installed by pip."""
    out = {}
    for version, bug in (("1.0.0", False), ("0.9.0", True)):
        src = tmp_path_factory.mktemp(f"src-{version}")
        subprocess.run(["cp", "-r", f"{EXAMPLE}/.", str(src)], check=True)
        pyproject = src / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('version = "1.0.0"', f'version = "{version}"'))
        if bug:  # ties: the last maximal index instead of the first
            kernel = src / "src" / "team_kernels" / "__init__.py"
            kernel.write_text(kernel.read_text().replace("torch.argmax(hit.to(torch.uint8), dim=1, out=idx)",
                                                         "idx.copy_(hit.shape[1] - 1 - hit.flip(1).to(torch.uint8).argmax(1))"))
        site = tmp_path_factory.mktemp(f"site-{version}")
        pip_install(src, site)
        out[version] = site
    return out


def run(pytester, site: Path, sku: str, known_issues=(), emulate: str | None = None):
    doc = yaml.safe_load((REPO / "hardware_matrix.yaml").read_text())
    doc["known_issues"] = list(known_issues)
    make_checkout(pytester.path, yaml.safe_dump(doc, sort_keys=False))
    (pytester.path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.device")\n')
    (pytester.path / "suites" / "argmax" / "test_third_party_argmax.py").write_text(SUITE)
    pytester.syspathinsert(site)
    sys.path.insert(0, str(site))  # the probe below reads the entry point's distribution in this process
    try:
        fp = probe(driver=FakeDriver(MX.sku(sku)), nvml=FakeNvml(MX.sku(sku)))
    finally:
        sys.path.remove(str(site))
    matrix = matrix_mod.load(pytester.path / "hardware_matrix.yaml")
    session = session_mod.build(matrix, fingerprint=fp, emulate=emulate)
    path = pytester.path / "session.json"
    path.write_text(json.dumps(session.to_dict()))
    return session, pytester.runpytest("-rxs", "--session-file", str(path), "-p", "no:cacheprovider")


def test_the_installed_example_runs_in_the_suite_on_a_device_it_supports(pytester, installed):
    session, out = run(pytester, installed["1.0.0"], "h100")
    out.assert_outcomes(passed=1)
    assert session.fingerprint.libraries["team-kernels"] == "1.0.0"
    assert any("team-kernels 1.0.0" in line for line in session.header_lines())


def test_its_own_requirements_gate_it_by_the_probed_compute_capability(pytester, installed):
    out = run(pytester, installed["1.0.0"], "a100")[1]
    out.assert_outcomes(skipped=1)
    out.stdout.fnmatch_lines(["*requires GPU, cc>=9.0, team-kernels: compute capability: needs >= 9.0, probed 8.0*"])


def test_emulating_a_sibling_sku_keeps_it_on_features_not_names(pytester, installed):
    session, out = run(pytester, installed["1.0.0"], "h100", emulate="h20")
    assert session.caps.emulated_sku == "h20"
    out.assert_outcomes(passed=1)


def test_a_known_issue_keyed_on_its_version_is_a_strict_xfail_until_the_fixed_release(pytester, installed):
    out = run(pytester, installed["0.9.0"], "h100", [LAST_INDEX_BUG])[1]
    out.assert_outcomes(xfailed=1)
    out.stdout.fnmatch_lines(["*XFAIL*team-argmax*known issue team-kernels-last-index-ties*example.org/team/issues/7*"])
    # 1.0.0 fixed it: the predicate no longer holds, the case runs and passes
    run(pytester, installed["1.0.0"], "h100", [LAST_INDEX_BUG])[1].assert_outcomes(passed=1)
