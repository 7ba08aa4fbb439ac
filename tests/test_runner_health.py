"""`gpuhil run`'s health gate (CPU, the check handed in): unhealthy before runs no test and writes no
perf row (RUNNER UNHEALTHY, exit 2); unhealthy only after marks the results suspect; --no-health asks
nothing; without a GPU the real gate says so and the run is what it was."""

import json
import textwrap
from pathlib import Path

import pytest

from fakes import HealthNvml, gpuhil, make_checkout
from gpuhil import cli, runner
from gpuhil.health import gate

LOGGING_SUITE = textwrap.dedent("""
    import pytest

    def test_numerics():
        open({log!r}, "a").write("numerics\\n")

    @pytest.mark.perf
    def test_timed():
        open({log!r}, "a").write("timed\\n")
""")


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    make_checkout(tmp_path)
    (tmp_path / "suites/gates/test_logging.py").write_text(LOGGING_SUITE.format(log=str(tmp_path / "ran.log")))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(argv: list[str], answers: dict[str, object]) -> tuple[int, list[str]]:
    """`gpuhil run ARGV` in this process, its health check answered by a fake NVML per moment."""
    asked = []

    def check(when: str):
        asked.append(when)
        return gate.check_gpus(HealthNvml(**answers.get(when, {})), ["GPU-0"], kernels=None)

    args = cli.build_parser().parse_args(["run", *argv])
    args.argv = ["run", *argv]
    return runner.run_main_job(args, health_check=check), asked


def record(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


HOT = {"nvmlDeviceGetTemperature": 90}


def test_an_unhealthy_runner_runs_no_test_writes_no_perf_row_and_exits_2(checkout):
    code, asked = run(["--perf", "--results-dir", "out"], {"before": HOT})
    out = checkout / "out"
    assert code == 2 and asked == ["before"]
    assert not (checkout / "ran.log").exists() and not list(out.glob("perf-*.parquet"))
    report = (out / "report.md").read_text().splitlines()
    line = "RUNNER UNHEALTHY: gpu0.temperature_c = 90 C (slowdown at 87 C)"
    assert report[2] == f"**{line}**"  # under the title
    assert "| gpu0 | temperature_c | 90 C (slowdown at 87 C) | UNHEALTHY | within 5 C of the slowdown threshold, " \
           "or above it |" in report
    doc = record(out)
    assert (doc["verdict"], doc["exit_code"], doc["junit"], doc["suspect"]) == ("RUNNER UNHEALTHY", 2, False, False)
    assert doc["detail"] == line.removeprefix("RUNNER UNHEALTHY: ")
    assert doc["health"] == {"before": "unhealthy", "after": None}
    findings = json.loads((out / "health.json").read_text())
    assert findings["before"]["state"] == "unhealthy" and findings["after"] is None


def test_every_unhealthy_field_is_on_the_verdict_line(checkout):
    code, _ = run(["--results-dir", "out"], {"before": {**HOT, "nvmlDeviceGetTotalEccErrors": 3}})
    assert code == 2
    assert (checkout / "out/report.md").read_text().splitlines()[2] == (
        "**RUNNER UNHEALTHY: gpu0.ecc_uncorrected_volatile = 3; gpu0.temperature_c = 90 C (slowdown at 87 C)**")


def test_unhealthy_only_after_the_tests_marks_the_results_suspect(checkout):
    code, asked = run(["--perf", "--results-dir", "out"], {"after": HOT})
    out = checkout / "out"
    assert code == 0 and asked == ["before", "after"]
    assert sorted((checkout / "ran.log").read_text().split()) == ["numerics", "timed"]
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("**PASS: 2 passed")
    assert ("**RESULTS SUSPECT: the runner was unhealthy after the tests: gpu0.temperature_c = 90 C "
            "(slowdown at 87 C)**") in report
    assert "- before the tests: healthy (6 fields)" in report
    doc = record(out)
    assert (doc["verdict"], doc["suspect"], doc["health"]) == ("PASS", True, {"before": "healthy", "after": "unhealthy"})


def test_a_healthy_runner_is_checked_before_and_after_and_not_suspect(checkout):
    code, asked = run(["--results-dir", "out"], {})
    assert code == 0 and asked == ["before", "after"]
    doc = record(checkout / "out")
    assert (doc["suspect"], doc["health"]) == (False, {"before": "healthy", "after": "healthy"})
    assert "RESULTS SUSPECT" not in (checkout / "out/report.md").read_text()


def test_no_health_asks_nothing_and_says_so(checkout):
    code, asked = run(["--no-health", "--results-dir", "out"], {"before": HOT})
    assert code == 0 and asked == []
    assert "- before the tests: not checked: --no-health" in (checkout / "out/report.md").read_text()
    assert record(checkout / "out")["health"] == {"before": "not checked", "after": "not checked"}


def test_without_a_gpu_the_real_gate_says_so_and_the_run_passes(checkout):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "numerics", cwd=checkout, env={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "gpuhil run: runner health before the tests: not checked: no GPU" in r.stdout
    report = (checkout / "out/report.md").read_text()
    assert "- before the tests: not checked: no GPU" in report and "- after the tests: not checked: no GPU" in report
    assert record(checkout / "out")["health"] == {"before": "not checked", "after": "not checked"}
