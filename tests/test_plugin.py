"""The plugin end to end in throwaway sessions (pytester): selections, gates, known issues, expiry."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest
import yaml

from fakes import NAMED_PROVIDER, make_checkout

REPO_MATRIX = Path(__file__).resolve().parents[1] / "hardware_matrix.yaml"

TEST_FILE = NAMED_PROVIDER + textwrap.dedent("""
    import pytest

    @pytest.mark.parametrize("name", [case(Named(n), None, n, id=n) for n in ("torch", "gpuhil-cute", "thirdparty-cutlass")])
    def test_kernel(name):
        assert name != "thirdparty-cutlass"  # the known bug

    @pytest.mark.requires(Requirements(needs_gpu=False, cluster_size=2))
    def test_needs_cluster():
        pass

    @pytest.mark.slow
    def test_full_tier_only():
        pass
""")


@pytest.fixture
def session(pytester):
    """A checkout with the repo's catalog, a suite, and known issues the test may replace."""
    doc = yaml.safe_load(REPO_MATRIX.read_text())

    def make(known_issues=(), selections=None):
        doc["known_issues"] = list(known_issues)
        if selections is not None:
            doc["selections"] = selections
        make_checkout(pytester.path, yaml.safe_dump(doc, sort_keys=False))
        (pytester.path / "suites/argmax/test_plugin_session_demo.py").write_text(TEST_FILE)
        return pytester
    return make


THIRD_PARTY_BUG = {
    "id": "fake-upstream-gap", "when": {"arch_family": 12}, "mode": "xfail",
    "applies_to": {"suite": "argmax", "provider": "thirdparty-*"},
    "reason": "upstream lacks the kernel", "link": "https://example.org/issue/1", "expires": "2099-01-01",
}


def test_sku_selection_becomes_markers(session):
    p = session(selections={"gb10": {"providers": ["gpuhil-*"]}, "h20": {"tier": "full"}})
    out = p.runpytest("--collect-only", "-q", "-m", "sm121")
    out.stdout.fnmatch_lines(["*test_kernel[[]gpuhil-cute[]]", "*test_needs_cluster", "*2/5 tests collected*"])
    out = p.runpytest("--collect-only", "-q", "-m", "h20")
    out.stdout.fnmatch_lines(["*test_full_tier_only", "5 tests collected*"])


def test_default_tier_deselects_slow_cases(session):
    out = session().runpytest("--collect-only", "-q")
    assert "test_full_tier_only" not in out.stdout.str()
    out = session().runpytest("--collect-only", "-q", "--tier", "full")
    assert "test_full_tier_only" in out.stdout.str()


def test_known_issue_is_a_strict_xfail_with_its_link(session):
    out = session([THIRD_PARTY_BUG]).runpytest("-rxs", "--target-sku", "gb10")
    out.assert_outcomes(passed=3, xfailed=1)
    out.stdout.fnmatch_lines(["*XFAIL*thirdparty-cutlass*known issue fake-upstream-gap*https://example.org/issue/1*"])


def test_known_issue_does_not_apply_when_its_predicate_is_false(session):
    out = session([THIRD_PARTY_BUG]).runpytest("--target-sku", "h100")
    out.assert_outcomes(passed=3, failed=1)


def test_strict_xpass_says_to_retire_the_entry(session):
    fixed = dict(THIRD_PARTY_BUG, applies_to={"suite": "argmax", "provider": "torch"})
    out = session([fixed]).runpytest("--target-sku", "rtx5090")
    out.assert_outcomes(passed=2, failed=2)
    out.stdout.fnmatch_lines(["*known issue 'fake-upstream-gap' did not reproduce here*Retire the entry*"])


def test_expired_known_issue_errors_naming_the_entry(session):
    old = dict(THIRD_PARTY_BUG, expires=(dt.date.today() - dt.timedelta(days=1)).isoformat())
    out = session([old]).runpytest("--target-sku", "gb10")
    out.assert_outcomes(passed=3, errors=1)
    out.stdout.fnmatch_lines(["*known issue 'fake-upstream-gap' expired on*hardware_matrix.yaml:*"])


def test_skip_mode_known_issue(session):
    skip = dict(THIRD_PARTY_BUG, mode="skip")
    out = session([skip]).runpytest("-rs", "--target-sku", "gb10")
    out.assert_outcomes(passed=3, skipped=1)


def test_requires_skip_names_the_feature_and_probed_value(session):
    out = session().runpytest("-rs", "--target-sku", "h20")
    out.stdout.fnmatch_lines(["*SKIPPED*requires cluster 2: cluster launch (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH): needs 1*probed 0*"])
    out = session().runpytest("-rs", "--target-sku", "h100")
    out.assert_outcomes(passed=3, failed=1)


def test_header_names_target_and_fingerprint(session):
    out = session().runpytest("--target-sku", "gb10", "--collect-only")
    out.stdout.fnmatch_lines(["gpuhil: *fingerprint*", "gpuhil: TARGET gb10:*opt-in smem 101376 B*"])


@pytest.mark.parametrize("args, message", [
    (["--target-sku", "h999"], "unknown SKU 'h999'"),
    (["--emulate-sku", "gb10", "--target-sku", "h100"], "exclude each other"),
    (["--emulate-sku", "gb10"], "no GPU here"),
])
def test_bad_options_are_usage_errors(session, args, message):
    out = session().runpytest(*args)
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines([f"*{message}*"])


def test_broken_matrix_stops_the_session_with_file_and_line(session):
    p = session()
    text = (p.path / "hardware_matrix.yaml").read_text().replace("cluster_launch: false", "cluster_launch: nope", 1)
    (p.path / "hardware_matrix.yaml").write_text(text)
    out = p.runpytest()
    assert out.ret == pytest.ExitCode.USAGE_ERROR
    out.stderr.fnmatch_lines(["*hardware_matrix.yaml:*cluster_launch*"])


def test_perf_cases_only_run_with_perf(session):
    p = session()
    (p.path / "suites/argmax/test_perf_demo_cases.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.perf
        def test_timed():
            pass
    """))
    assert "test_timed" not in p.runpytest("--collect-only", "-q").stdout.str()
    out = p.runpytest("--perf", "--results-dir", str(p.path / "res"), "-q")
    out.assert_outcomes(passed=4, failed=1)  # the perf case joins; the demo bug fails without its known issue


def test_suites_parametrize_over_the_sessions_matrix(session):
    p = session()
    doc = yaml.safe_load((p.path / "hardware_matrix.yaml").read_text())
    doc["skus"] = [s for s in doc["skus"] if s["id"] in ("h100", "gb10")]
    doc["selections"] = {k: v for k, v in doc["selections"].items() if k in ("h100", "gb10")}
    (p.path / "small.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (p.path / "suites/gates/test_catalog_grid_demo.py").write_text(textwrap.dedent("""
        def test_sku(sku):
            pass
    """))
    out = p.runpytest("--matrix", str(p.path / "small.yaml"), "--collect-only", "-q", "suites/gates")
    out.stdout.fnmatch_lines(["*test_sku[[]h100[]]", "*test_sku[[]gb10[]]", "2 tests collected*"])
