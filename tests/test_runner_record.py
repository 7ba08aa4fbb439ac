"""`gpuhil run` under careless input on a CPU machine: one folder per run, nothing written before every
check, run.json as the record, and every environment error one line with exit 2."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakes import gpuhil, make_checkout
from gpuhil import atomic, runner

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"schema", "run_id", "verdict", "detail", "exit_code", "sku", "emulated_sku", "target_sku", "started",
               "finished", "junit", "health", "suspect", "reruns"}


@pytest.fixture
def checkout(tmp_path) -> Path:
    make_checkout(tmp_path)
    (tmp_path / "suites/gates/test_mini.py").write_text(textwrap.dedent("""
        import pytest

        def test_ok():
            pass

        @pytest.mark.parametrize("x", ["a|b"])
        def test_pipe(x):
            assert False, "boom"
    """))
    return tmp_path


def record(results: Path) -> dict:
    doc = json.loads((results / "run.json").read_text())
    assert set(doc) == RECORD_KEYS
    return doc


def test_a_pass_is_recorded_and_says_what_a_cpu_machine_checked(checkout):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", cwd=checkout)
    assert r.returncode == 0, r.stdout + r.stderr
    line = "PASS: 1 passed, 0 failed, 0 errors, 0 skipped, 0 xfailed, 0 xpassed; no device in this session: " \
           "only gates, AOT compiles and host checks ran"
    assert f"gpuhil run: {line}" in r.stdout and f"**{line}**" in (checkout / "out/report.md").read_text()
    doc = record(checkout / "out")
    assert (doc["schema"], doc["verdict"], doc["exit_code"], doc["junit"], doc["sku"]) == (1, "PASS", 0, True, None)
    assert doc["detail"] == line.removeprefix("PASS: ") and doc["started"] <= doc["finished"]
    assert doc["run_id"] in (checkout / "out/report.md").read_text()


def test_a_second_run_into_the_same_folder_is_refused_and_the_first_is_kept(checkout):
    assert gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", cwd=checkout).returncode == 0
    first = {p.name: p.read_bytes() for p in (checkout / "out").iterdir() if p.is_file()}
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_pipe", cwd=checkout)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stdout + r.stderr
    assert "not empty (holds" in r.stderr and "a results folder holds one run" in r.stderr
    assert {p.name: p.read_bytes() for p in (checkout / "out").iterdir() if p.is_file()} == first


def test_an_empty_folder_is_taken(checkout):
    (checkout / "out").mkdir()
    assert gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", cwd=checkout).returncode == 0


@pytest.mark.parametrize("where, message", [
    ("afile", "is a file, not a folder"),
    ("afile/sub", "afile is a file, not a folder"),
    ("/sys/gpuhil-results", "cannot create it"),  # not writable, whoever runs it
])
def test_an_unusable_results_path_is_one_line_and_nothing_written(checkout, where, message):
    (checkout / "afile").write_text("x")
    r = gpuhil("run", "--results-dir", where, cwd=checkout)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert (checkout / "afile").read_text() == "x" and not (checkout / "results").exists()


def test_a_refused_session_writes_nothing_but_its_record(checkout):
    r = gpuhil("run", "--results-dir", "out", "--expect-sku", "h100", cwd=checkout)
    assert r.returncode == 2
    assert sorted(p.name for p in (checkout / "out").iterdir()) == ["probe.json", "report.md", "run.json"]
    doc = record(checkout / "out")
    assert (doc["verdict"], doc["exit_code"], doc["junit"]) == ("RUNNER ERROR", 2, False)
    assert doc["detail"].startswith("this runner expects a GPU (--expect-sku h100) but the probe found none")
    assert r.stdout.splitlines()[-1].endswith("no junit.xml (pytest wrote none)")


@pytest.mark.parametrize("value, code, line", [
    ("true", 2, "this runner expects a GPU (GPUHIL_REQUIRE_GPU=true) but the probe found none"),
    ("YES", 2, "this runner expects a GPU (GPUHIL_REQUIRE_GPU=YES) but the probe found none"),
    ("maybe", 2, "$GPUHIL_REQUIRE_GPU='maybe': not a yes/no value (1/true/yes/on or 0/false/no/off)"),
    ("off", 0, None),
])
def test_require_gpu_reads_yes_and_no_and_refuses_junk(checkout, value, code, line):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", cwd=checkout, env={"GPUHIL_REQUIRE_GPU": value})
    assert r.returncode == code, r.stdout + r.stderr
    if line:
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"gpuhil run: {line}"), r.stderr


def test_a_catalog_outside_the_checkout_is_used_with_the_checkouts_suites(checkout, tmp_path_factory):
    copy = tmp_path_factory.mktemp("elsewhere") / "hardware_matrix.yaml"
    shutil.copy(checkout / "hardware_matrix.yaml", copy)
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", cwd=checkout, env={"GPUHIL_MATRIX": str(copy)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((checkout / "out/session.json").read_text())["matrix"] == str(copy.resolve())
    # and the selections are checked against this checkout's suites/, wherever the catalog lives
    (checkout / "suites/nvfp4_moe").rmdir()
    r = gpuhil("run", "--results-dir", "out2", cwd=checkout, env={"GPUHIL_MATRIX": str(copy)})
    assert r.returncode == 2 and "nvfp4_moe" in r.stderr and not (checkout / "out2").exists(), r.stdout + r.stderr


@pytest.mark.parametrize("option", ["--junitxml=mine.xml", "--junit-xml=mine.xml", "--results-dir=x", "--tier=full",
                                    "--session-file=s.json", "--emulate-sku=h20"])
def test_options_the_runner_sets_itself_are_refused_after_the_separator(checkout, option):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_ok", option, cwd=checkout)
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"gpuhil run: pytest option {option.split('=')[0]} after --: the runner sets it itself "
        f"({runner.RUNNER_OPTIONS[option.split('=')[0]]})"]
    assert not (checkout / "out").exists()


def test_a_pipe_in_a_test_id_stays_in_its_table_cell(checkout):
    r = gpuhil("run", "--results-dir", "out", "--", "-k", "test_pipe", cwd=checkout)
    assert r.returncode == 1
    failures = (checkout / "out/report.md").read_text().split("## Failures", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in failures.splitlines() if line.startswith("| `")]
    assert rows == ["| `suites.gates.test_mini::test_pipe[a\\|b]` | failed | AssertionError: boom |"]
    assert rows[0].replace("\\|", "").count("|") == 4  # three cells


def test_the_report_counts_outcomes_per_provider_of_each_suite(checkout):
    """A suite's cases come from several kernels (ours, torch's, a library's): the report splits the
    suite's outcomes by the provider its `case` marker names; harness tests without one are not listed."""
    (checkout / "suites/argmax").mkdir(exist_ok=True)
    (checkout / "suites/argmax/test_two_providers.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.case("lib-topk1", "n4096")
        def test_lib_passes():
            pass

        @pytest.mark.case("lib-topk1", "n8192")
        def test_lib_fails():
            assert False

        @pytest.mark.case("torch", "n4096")
        def test_torch_skips():
            pytest.skip("not here")
    """))
    gpuhil("run", "--results-dir", "out", "--", "suites/argmax", "-k", "not test_mini", cwd=checkout)
    text = (checkout / "out/report.md").read_text()
    table = text.split("## Outcomes per provider", 1)[1].split("\n\n", 2)[1].splitlines()
    assert table[2:] == ["| argmax | lib-topk1 | 1 | 1 | 0 | 0 | 0 | 0 |",
                         "| argmax | torch | 0 | 0 | 0 | 1 | 0 | 0 |"]


def test_a_harness_error_says_why_and_names_no_missing_junit(checkout):
    r = gpuhil("run", "--results-dir", "out", "--", "--no-such-pytest-option", cwd=checkout)
    assert r.returncode == 4
    doc = record(checkout / "out")
    assert (doc["verdict"], doc["junit"]) == ("HARNESS ERROR", False)
    assert "unrecognized arguments: --no-such-pytest-option" in doc["detail"]
    assert "unrecognized arguments" in (checkout / "out/report.md").read_text()
    assert r.stdout.splitlines()[-1].endswith("no junit.xml (pytest wrote none)") and "junit.xml," not in r.stdout


def test_the_output_closed_early_is_one_line_and_exit_2():
    """`gpuhil gates --all | head -1`: the reader goes away while gpuhil still writes."""
    p = subprocess.Popen([sys.executable, "-m", "gpuhil", "gates", "--all"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=REPO)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 2
    assert err == "gpuhil: stdout was closed before the output ended (broken pipe)\n"


def test_a_run_whose_output_reader_goes_away_still_runs_and_records(checkout):
    """`gpuhil run | head -1`: pytest's output passes through the runner, so the run goes on."""
    p = subprocess.Popen([sys.executable, "-m", "gpuhil", "run", "--results-dir", "out", "--", "-k", "test_ok"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=checkout)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 0, err
    assert json.loads((checkout / "out/run.json").read_text())["verdict"] == "PASS" and "Traceback" not in err


def test_a_file_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "report.md"
    atomic.write_text(target, "first")
    with pytest.raises(UnicodeEncodeError):
        atomic.write_text(target, "second \udcff")  # fails while writing
    assert target.read_text() == "first"
    atomic.write_text(target, "second")
    assert target.read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
