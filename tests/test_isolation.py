"""Unattended runs survive their tests: a test that kills its process or hangs fails alone, named in
the report with its cause, and the rest of the run goes on (CPU: the planted segfault and host sleep;
the GPU faults are proven on a GPU with `--plant-faults all`). And nothing reports green without
having run."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakes import make_checkout

REPO = Path(__file__).resolve().parents[1]


def gpuhil(*args, cwd, env=None, timeout=300):
    import os

    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def checkout(tmp_path):
    """A checkout with the planted-fault module, its tests and three ordinary tests beside them."""
    make_checkout(tmp_path)
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "__init__.py").write_text("")
    shutil.copy(REPO / "fixtures" / "faults.py", tmp_path / "fixtures" / "faults.py")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ("gpuhil.pytest_plugin", "fixtures.faults")\n')
    shutil.copy(REPO / "tests" / "planted" / "test_planted_faults.py", tmp_path / "suites" / "gates")
    (tmp_path / "suites" / "gates" / "test_ordinary.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.parametrize("x", [1, 2, 3])
        def test_ordinary(x):
            assert x * 2 == x + x
    """))
    return tmp_path


def test_a_segfault_and_a_hang_fail_alone_and_are_named_in_the_report(checkout):
    r = gpuhil("run", "--results-dir", str(checkout / "out"), "--", "--plant-faults", "segfault,sleep", cwd=checkout)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL: 2 test(s) crashed or timed out" in r.stdout
    report = (checkout / "out" / "report.md").read_text()
    assert "test_planted_segfault` | signal: Segmentation fault at" in report
    assert "test_planted_host_sleep` | timeout: exceeded the 5 s limit (pytest-timeout), stuck at test_planted_faults.py" in report
    crashes = {c["nodeid"].rsplit("::", 1)[1]: c for c in json.loads((checkout / "out" / "crashes.json").read_text())}
    assert set(crashes) == {"test_planted_segfault", "test_planted_host_sleep"}
    assert 5 <= crashes["test_planted_host_sleep"]["seconds"] < 30  # cut at its limit, not at the job's
    assert "| **all** | **3** | **2** | **0** |" in report  # the ordinary tests all ran and passed
    junit = (checkout / "out" / "junit.xml").read_text()
    assert junit.count('message="gpuhil: CRASHED') == 1 and junit.count('message="gpuhil: TIMEOUT') == 1


def test_planted_faults_are_off_unless_asked_for(checkout):
    r = gpuhil("run", "--results-dir", str(checkout / "out"), cwd=checkout)
    assert r.returncode == 0 and "PASS: 3 passed" in r.stdout, r.stdout + r.stderr


def test_tier_default_timeouts_apply_unless_a_test_or_the_command_line_says(pytester):
    make_checkout(pytester.path)
    (pytester.path / "suites" / "gates" / "test_limits.py").write_text(textwrap.dedent("""
        import pytest

        def test_default(request):
            assert request.node.get_closest_marker("timeout").args[0] == 300

        @pytest.mark.slow
        def test_full_tier(request):
            assert request.node.get_closest_marker("timeout").args[0] == 900

        @pytest.mark.timeout(7)
        def test_own(request):
            assert request.node.get_closest_marker("timeout").args[0] == 7
    """))
    pytester.runpytest("--tier", "full", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    out = pytester.runpytest("--timeout", "60", "-p", "no:cacheprovider", "-k", "default")
    out.assert_outcomes(failed=1)  # --timeout wins: no tier marker was added


@pytest.mark.parametrize("args, env, line", [
    (["--require-gpu"], {}, "this runner expects a GPU (--require-gpu) but the probe found none"),
    ([], {"GPUHIL_REQUIRE_GPU": "1"}, "this runner expects a GPU (GPUHIL_REQUIRE_GPU=1)"),
    (["--expect-sku", "h100"], {}, "this runner expects a GPU (--expect-sku h100) but the probe found none"),
    (["--expect-sku", "h999"], {}, "gpuhil run: --expect-sku: unknown SKU 'h999'"),
])
def test_a_runner_without_its_gpu_is_an_error_not_a_pass(checkout, args, env, line):
    r = gpuhil("run", "--results-dir", str(checkout / "out"), *args, cwd=checkout, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and line in r.stderr, r.stderr  # one line that says why
    assert "RUNNER ERROR: " + line.removeprefix("gpuhil run: ") in (checkout / "out" / "report.md").read_text()


def test_zero_tests_is_a_failure(checkout):
    r = gpuhil("run", "--results-dir", str(checkout / "out"), "--", "-k", "no_such_test", cwd=checkout)
    assert r.returncode == 1 and "FAIL: no test ran" in r.stdout, r.stdout + r.stderr
