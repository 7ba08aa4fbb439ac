"""The history store: partitioned parquet per SKU and run, idempotent, refusing incomplete or unsafe runs."""

import datetime as dt
import hashlib
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from fake_runs import CLUSTER_SKIP, SERIES, START, XFAIL_REASON, cases_for, results_dir, sha
from gpuhil.history import HistoryError, add, junit, read_perf, read_runs, read_tests
from gpuhil.history.store import partition

ROWS = [(s, c, p, b) for s, c, p, b in SERIES[:3]]


def one_run(root, day=0, **kw):
    kw.setdefault("rows", ROWS)
    kw.setdefault("cases", cases_for(kw.get("sku", "h100") if not kw.get("emulated") else "h100-as-h20"))
    return results_dir(root, sku=kw.pop("sku", "h100"), started=START + dt.timedelta(days=day), git_sha=sha(day), **kw)


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_a_run_lands_in_hive_partitions_and_reads_back(tmp_path):
    res = one_run(tmp_path / "res", write_rows=True)  # rows written and merged as a perf session does
    report = add([res], tmp_path / "hist")
    (sku, run_id), = report.added
    assert sku == "h100" and run_id == "20261001T030000-4242"
    for dataset, name in (("runs", "run.parquet"), ("perf", "perf.parquet"), ("tests", "tests.parquet")):
        assert (tmp_path / "hist" / dataset / "sku=h100" / f"run_id={run_id}" / name).is_file()
    assert sorted(p.name for p in partition(tmp_path / "hist", "raw", sku, run_id).iterdir()) == \
        ["junit.xml", "probe.json", "report.md", "run.json"]

    run = read_runs(tmp_path / "hist").iloc[0]
    probe = json.loads((res / "probe.json").read_text())
    assert (run.run_id, run.sku, run.machine, run.git_sha) == (run_id, "h100", "h100", sha(0))
    assert pd.isna(run.emulated_sku)
    assert (run.fingerprint_id, run.driver, run.torch, run.cutlass_dsl, run.dsl_cuda) == \
        (probe["fingerprint_id"], "580.159.04", "2.11.0", "4.8.1", "13.4")
    assert run.timestamp == "2026-10-01T03:00:00+00:00" and bool(run.perf_requested) and run.perf_rows == 3
    assert (run.passed, run.failed, run.skipped, run.result) == (4, 0, 1, "PASS")

    perf = read_perf(tmp_path / "hist")
    source = pd.read_parquet(next(res.glob("perf-*.parquet")))
    assert sorted(perf["median_us"]) == sorted(source["median_us"]) and set(perf["run_id"]) == {run_id}
    tests = read_tests(tmp_path / "hist")
    skip = tests[tests["name"] == "test_cutlass_provider[sm12x]"].iloc[0]
    assert (skip.suite, skip.outcome, skip.reason) == ("fp8_grouped_gemm", "skipped", "arch family 9 is not 12")
    # pandas reads a dataset folder directly too (partition columns come back as categories)
    assert len(pd.read_parquet(tmp_path / "hist" / "perf")) == 3


def test_adding_a_run_twice_changes_nothing(tmp_path):
    runs = [one_run(tmp_path / "res", day=d) for d in range(3)]
    add(runs[:2], tmp_path / "hist")
    before = tree_digest(tmp_path / "hist")
    report = add(runs[:2], tmp_path / "hist")
    assert report.added == [] and len(report.unchanged) == 2
    assert tree_digest(tmp_path / "hist") == before
    report = add(runs, tmp_path / "hist")  # a batch with one new run adds only that one
    assert len(report.added) == 1 and len(report.unchanged) == 2
    assert len(read_runs(tmp_path / "hist")) == 3


def test_the_same_run_with_other_files_is_refused(tmp_path):
    res = one_run(tmp_path / "res")
    add([res], tmp_path / "hist")
    (res / "junit.xml").write_text((res / "junit.xml").read_text().replace('time="0.010"', 'time="0.020"', 1))
    with pytest.raises(HistoryError, match="already holds run 20261001T030000-4242 of h100 with other files"):
        add([res], tmp_path / "hist")


@pytest.mark.parametrize("missing", ["junit.xml", "probe.json", "report.md", "run.json"])
def test_an_incomplete_run_is_refused_naming_the_file_and_nothing_is_added(tmp_path, missing):
    good, bad = one_run(tmp_path / "res", day=0), one_run(tmp_path / "res", day=1)
    (bad / missing).unlink()
    with pytest.raises(HistoryError) as exc:
        add([good, bad], tmp_path / "hist")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(bad)) and f"{missing} is missing" in msg
    assert read_runs(tmp_path / "hist").empty  # the batch is refused whole
    report = add([good, bad], tmp_path / "hist", skip_incomplete=True)
    assert len(report.added) == 1 and len(report.refused) == 1 and missing in report.refused[0]


def test_unmerged_rows_of_a_judged_run_are_its_rows(tmp_path):
    """A session that ended before merging (interrupted, a harness error) still has a verdict in run.json;
    its rows folder holds the cases it timed, read through the same checks as a merged file."""
    res = one_run(tmp_path / "res", write_rows=True, verdict="INTERRUPTED")
    next(res.glob("perf-*.parquet")).unlink()
    (sku, run_id), = add([res], tmp_path / "hist").added
    assert read_runs(tmp_path / "hist")["result"].tolist() == ["INTERRUPTED"]
    assert len(read_perf(tmp_path / "hist")) == 3


def test_a_run_without_perf_is_a_coverage_only_run(tmp_path):
    res = one_run(tmp_path / "res", sku="gb10", perf=False, cases=cases_for("gb10"))
    (sku, run_id), = add([res], tmp_path / "hist").added
    assert (sku, run_id) == ("gb10", "20261001T030000-4242")  # run.json's run id
    run = read_runs(tmp_path / "hist").iloc[0]
    assert not run.perf_requested and run.perf_rows == 0 and run.xfailed == 1
    assert read_perf(tmp_path / "hist").empty
    xfail = read_tests(tmp_path / "hist").query("outcome == 'xfailed'").iloc[0]
    assert xfail.reason == XFAIL_REASON


def test_an_emulated_run_is_its_own_machine(tmp_path):
    res = one_run(tmp_path / "res", emulated="h20")
    add([res], tmp_path / "hist")
    run = read_runs(tmp_path / "hist").iloc[0]
    assert (run.sku, run.emulated_sku, run.machine) == ("h100", "h20", "h100-as-h20")
    skip = read_tests(tmp_path / "hist").query("name == 'test_argmax_cluster[cluster2]'").iloc[0]
    assert skip.reason == CLUSTER_SKIP


def edit_record(res, **fields):
    record = json.loads((res / "run.json").read_text())
    (res / "run.json").write_text(json.dumps({**record, **fields}))


def test_unsafe_identifiers_never_become_paths(tmp_path):
    res = one_run(tmp_path / "res", perf=False)
    edit_record(res, sku="../../x")
    with pytest.raises(HistoryError, match=r"run.json: sku '\.\./\.\./x': not a safe identifier"):
        add([res], tmp_path / "hist")
    res2 = one_run(tmp_path / "res", day=1)
    edit_record(res2, run_id="a/../../b")
    with pytest.raises(HistoryError, match="run.json: run_id 'a/../../b': not a safe identifier"):
        add([res2], tmp_path / "hist")
    res3 = one_run(tmp_path / "res", day=2)
    perf = next(res3.glob("perf-*.parquet"))
    df = pd.read_parquet(perf)
    df["run_id"] = "a/../../b"
    df.to_parquet(perf, index=False)
    with pytest.raises(HistoryError, match="column 'run_id' is 'a/../../b' in row 1 .*: not a safe identifier"):
        add([res3], tmp_path / "hist")
    assert not (tmp_path / "b").exists() and not (tmp_path / "hist" / "runs").exists()


def test_the_health_fields_are_read_when_present_and_checked(tmp_path):
    """A record from before the health gate has no `health`/`suspect`; a later one's are checked."""
    res = one_run(tmp_path / "res", perf=False)
    edit_record(res, health={"before": "healthy", "after": "unhealthy"}, suspect=True, verdict="RUNNER UNHEALTHY")
    add([res], tmp_path / "hist")
    assert read_runs(tmp_path / "hist").iloc[0].result == "RUNNER UNHEALTHY"
    res2 = one_run(tmp_path / "res", day=1, perf=False)
    edit_record(res2, suspect="yes")
    with pytest.raises(HistoryError, match="run.json: field suspect is 'yes': expected bool"):
        add([res2], tmp_path / "hist")


@pytest.mark.parametrize("name, content, expected", [
    ("junit.xml", "<testsuites><testcase", "junit.xml: not well-formed XML"),
    ("probe.json", "{not json", "probe.json: not valid JSON"),
    ("probe.json", "{}", "probe.json: field fingerprint_id is missing"),
    ("run.json", "[]", "run.json: expected a JSON object"),
    ("run.json", b"\xff\xfe{}", "run.json: not valid JSON ('utf-8' codec can't decode byte 0xff"),
])
def test_malformed_files_are_named(tmp_path, name, content, expected):
    res = one_run(tmp_path / "res")
    (res / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(HistoryError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        add([res], tmp_path / "hist")


def test_a_hand_edited_report_with_unbalanced_quotes_still_reads(tmp_path):
    res = one_run(tmp_path / "res", perf=False)
    (res / "report.md").write_text("# gpuhil run 20261001-030000\n- catalog SKU: h100\n"
                                   "- command: `python -m pytest -k 'oops --perf`\n")
    add([res], tmp_path / "hist")
    assert read_runs(tmp_path / "hist")["perf_requested"].tolist() == [True]


def test_a_damaged_history_is_one_line_and_exit_2(tmp_path):
    res = one_run(tmp_path / "res")
    add([res], tmp_path / "hist")
    next((tmp_path / "hist" / "tests").rglob("tests.parquet")).write_bytes(b"garbage")
    with pytest.raises(HistoryError, match="tests: unreadable dataset"):
        read_tests(tmp_path / "hist")
    r = run_cli("dashboard", "build", "--history", str(tmp_path / "hist"), "--out", str(tmp_path / "site"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unreadable dataset" in r.stderr
    assert not (tmp_path / "hist" / ".staging").exists()


def test_a_damaged_perf_parquet_is_named(tmp_path):
    res = one_run(tmp_path / "res")
    next(res.glob("perf-*.parquet")).write_bytes(b"PAR1 not really")
    with pytest.raises(HistoryError, match=r"perf-.*\.parquet: not a readable parquet file \(ArrowInvalid\)"):
        add([res], tmp_path / "hist")


def test_an_interrupted_add_stays_invisible_and_a_retry_completes_it(tmp_path):
    res = one_run(tmp_path / "res")
    add([res], tmp_path / "hist")
    (sku, run_id), = [tuple(r) for r in read_runs(tmp_path / "hist")[["sku", "run_id"]].values]
    import shutil

    shutil.rmtree(partition(tmp_path / "hist", "runs", sku, run_id))  # died before its commit record
    assert read_perf(tmp_path / "hist").empty and read_tests(tmp_path / "hist").empty
    assert add([res], tmp_path / "hist").added == [(sku, run_id)]
    assert len(read_perf(tmp_path / "hist")) == 3


def test_a_run_id_of_digits_stays_a_string(tmp_path):
    res = one_run(tmp_path / "res")
    perf = next(res.glob("perf-*.parquet"))
    df = pd.read_parquet(perf)
    df["run_id"] = "20261001"
    df.to_parquet(perf.with_name("perf-20261001.parquet"), index=False)
    perf.unlink()
    edit_record(res, run_id="20261001")
    add([res], tmp_path / "hist")
    assert read_runs(tmp_path / "hist")["run_id"].tolist() == ["20261001"]
    assert read_perf(tmp_path / "hist")["run_id"].unique().tolist() == ["20261001"]


def test_junit_from_a_real_pytest_session(tmp_path):
    (tmp_path / "suites" / "argmax").mkdir(parents=True)
    (tmp_path / "suites" / "argmax" / "test_k.py").write_text(textwrap.dedent('''
        import pytest
        def test_ok(): pass
        def test_skip(): pytest.skip("no cluster launch <probed 0>")
        @pytest.mark.xfail(reason="known & tracked", strict=True)
        def test_xfail(): assert 0
        @pytest.mark.xfail(reason="fixed upstream", strict=True)
        def test_xpass(): pass
        def test_fail(): assert 1 == 2, "boom"
        @pytest.fixture
        def broken(): raise RuntimeError("setup broke")
        def test_error(broken): pass
    '''))
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:gpuhil",
                    "--junitxml=junit.xml", "suites"], cwd=tmp_path, capture_output=True, timeout=120)
    cases = junit.parse(tmp_path / "junit.xml")
    got = {c["name"]: (c["suite"], c["outcome"], c["reason"]) for c in cases}
    assert got["test_ok"] == ("argmax", "passed", "")
    assert got["test_skip"] == ("argmax", "skipped", "no cluster launch <probed 0>")
    assert got["test_xfail"] == ("argmax", "xfailed", "known & tracked")
    assert got["test_xpass"][1] == "failed" and "XPASS(strict)" in got["test_xpass"][2]
    assert got["test_fail"][1] == "failed" and "boom" in got["test_fail"][2]
    assert got["test_error"][1] == "error" and "setup broke" in got["test_error"][2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil.dashboard.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_adds_and_refuses_with_one_line_and_exit_2(tmp_path):
    good, bad = one_run(tmp_path / "res", day=0), one_run(tmp_path / "res", day=1)
    (bad / "probe.json").unlink()
    r = run_cli("history", "add", str(good), str(bad), "--history", str(tmp_path / "hist"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "probe.json is missing" in r.stderr
    r = run_cli("history", "add", str(good), str(bad), "--history", str(tmp_path / "hist"), "--skip-incomplete")
    assert r.returncode == 0, r.stderr
    assert "1 added, 0 unchanged, 1 refused" in r.stdout and "probe.json is missing" in r.stderr
    r = run_cli("history", "add", str(good), "--history", str(tmp_path / "hist"))
    assert r.returncode == 0 and "0 added, 1 unchanged" in r.stdout


# --- the run's own record (run.json) decides what the history stores ---

@pytest.mark.parametrize("verdict, junit_written", [
    ("FAIL", True),  # "FAIL: no test ran": junit.xml holds no failure, the run still failed
    ("HARNESS ERROR", True),
    ("INTERRUPTED", True),
    ("RUNNER ERROR", False),  # refused before pytest started: no junit.xml
])
def test_the_history_stores_the_runs_own_verdict(tmp_path, verdict, junit_written):
    res = one_run(tmp_path / "res", perf=False, cases=[], verdict=verdict)
    edit_record(res, detail="no test ran (0 passed)", junit=junit_written)
    if not junit_written:
        (res / "junit.xml").unlink()
    add([res], tmp_path / "hist")
    run = read_runs(tmp_path / "hist").iloc[0]
    assert (run.result, run.detail, run.passed, run.failed) == (verdict, "no test ran (0 passed)", 0, 0)
    assert run.exit_code == json.loads((res / "run.json").read_text())["exit_code"]


def test_a_folder_without_a_run_record_is_refused_and_skipping_every_folder_fails(tmp_path):
    res = one_run(tmp_path / "res")
    (res / "run.json").unlink()
    with pytest.raises(HistoryError, match=r"run.json is missing \(not a finished `gpuhil run`"):
        add([res], tmp_path / "hist")
    r = run_cli("history", "add", str(res), "--history", str(tmp_path / "hist"), "--skip-incomplete")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == "gpuhil history add: nothing added: all 1 results folders were refused"
    assert "0 added, 0 unchanged, 1 refused" in r.stdout


def test_a_reused_folder_never_files_the_new_runs_tests_under_the_old_run_id(tmp_path):
    res = one_run(tmp_path / "res")  # its perf file is run 20261001T030000-4242's
    edit_record(res, run_id="20261002T030000-4242")  # the run that reused the folder, without --perf
    with pytest.raises(HistoryError, match=r"perf-20261001T030000-4242.parquet: not this run's \(run.json names run "
                                           r"20261002T030000-4242\)"):
        add([res], tmp_path / "hist")
    res2 = one_run(tmp_path / "res", day=1, perf=False)
    edit_record(res2, junit=False)  # this run wrote no junit.xml: the one in the folder is an earlier run's
    with pytest.raises(HistoryError, match="junit.xml: run.json says this run wrote no junit.xml"):
        add([res2], tmp_path / "hist")
    res3 = one_run(tmp_path / "res", day=2)
    edit_record(res3, sku="h200")
    with pytest.raises(HistoryError, match="rows are of SKU 'h100' but run.json names SKU 'h200'"):
        add([res3], tmp_path / "hist")
    assert not (tmp_path / "hist" / "runs").exists()


@pytest.mark.parametrize("fields, expected", [
    ({"verdict": "OK"}, "field verdict is 'OK': expected one of PASS, FAIL, HARNESS ERROR, RUNNER ERROR, RUNNER UNHEALTHY, "
     "INTERRUPTED"),
    ({"verdict": "FAIL: no test ran"}, "field verdict is 'FAIL: no test ran': expected one of"),
    ({"schema": 2}, "field schema is 2: this gpuhil reads schema 1"),
    ({"exit_code": True}, "field exit_code is True: expected int"),
    ({"junit": "yes"}, "field junit is 'yes': expected bool"),
    ({"finished": None}, "field finished is None: expected str"),
    ({"started": "yesterday"}, "field started 'yesterday' is not an ISO 8601 time"),
    ({"finished": "2026-09-30T00:00:00+00:00"}, "field finished '2026-09-30T00:00:00+00:00' is before started"),
    ({"emulated_sku": "../x"}, "emulated_sku '../x': not a safe identifier"),
    ({"started": "0001-01-01T00:00:00+05:00"}, "field started '0001-01-01T00:00:00+05:00' is not an ISO 8601 time"),
])
def test_a_malformed_run_record_is_named(tmp_path, fields, expected):
    res = one_run(tmp_path / "res")
    edit_record(res, **fields)
    with pytest.raises(HistoryError) as exc:
        add([res], tmp_path / "hist")
    assert str(exc.value).startswith(str(res / "run.json")) and expected in str(exc.value)


def test_a_record_nested_too_deeply_is_named(tmp_path):
    res = one_run(tmp_path / "res")
    (res / "run.json").write_text("[" * 100_000)
    with pytest.raises(HistoryError, match=r"run.json: not valid JSON \(nested too deeply\)"):
        add([res], tmp_path / "hist")


def test_a_record_without_a_field_is_named(tmp_path):
    res = one_run(tmp_path / "res")
    record = json.loads((res / "run.json").read_text())
    del record["verdict"]
    (res / "run.json").write_text(json.dumps(record))
    with pytest.raises(HistoryError, match="run.json: field verdict is missing"):
        add([res], tmp_path / "hist")


# --- the history accepts only what perf compare accepts, and a damaged history is named ---

def set_first_row(res, **values):
    perf = next(res.glob("perf-*.parquet"))
    df = pd.read_parquet(perf)
    for k, v in values.items():
        df.loc[0, k] = v
    df.to_parquet(perf, index=False)
    return perf


@pytest.mark.parametrize("values, expected", [
    ({"median_us": 0.0}, "column 'median_us' is 0.0 in row 1"),
    ({"median_us": -5.0, "p25_us": -5.1, "p75_us": -4.9}, "column 'median_us' is -5.0 in row 1"),
    ({"median_us": float("nan")}, "column 'median_us' is null or NaN in row 1"),
    ({"p25_us": 50.0}, "columns 'p25_us', 'median_us', 'p75_us' are 50.0, "),
    ({"status": "weird"}, "column 'status' is 'weird' in row 1"),
    ({"case_id": "a|b"}, "column 'case_id' is 'a|b' in row 1"),
])
def test_history_add_refuses_the_values_perf_compare_refuses(tmp_path, values, expected):
    """The history is append-only: a zero median let in once crashed every later dashboard build."""
    res = one_run(tmp_path / "res")
    perf = set_first_row(res, **values)
    with pytest.raises(HistoryError) as exc:
        add([res], tmp_path / "hist")
    assert str(exc.value).startswith(f"{perf}: ") and expected in str(exc.value)
    assert not (tmp_path / "hist" / "runs").exists()


def plant(history, dataset, **values):
    """Damage the latest run's partition of `dataset` as an older gpuhil or a hand edit could have."""
    path = sorted((history / dataset).rglob("*.parquet"))[-1]
    df = pd.read_parquet(path)
    for k, v in values.items():
        df[k] = df[k].astype(object)
        df.loc[0, k] = v
    df.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("dataset, values, expected", [
    ("perf", {"median_us": 0.0}, "row 1: column 'median_us' is 0.0 in series argmax|"),
    ("perf", {"median_us": -5.0, "p25_us": -5.1, "p75_us": -4.9}, "row 1: column 'median_us' is -5.0 in series argmax|"),
    ("runs", {"result": "MAYBE"}, "row 1: result 'MAYBE' is not one of PASS, FAIL"),
    ("runs", {"timestamp": "last night"}, "row 1: timestamp 'last night' is not an ISO 8601 time in UTC"),
    ("runs", {"timestamp": "2026-10-03T03:00:00"}, "row 1: timestamp '2026-10-03T03:00:00' is not an ISO 8601 time in UTC"),
    ("runs", {"machine": "h200"}, "row 1: machine 'h200' is not its SKU's 'h100'"),
    ("tests", {"outcome": "exploded"}, "row 1: outcome 'exploded' is not one of passed, failed"),
])
def test_a_damaged_history_is_named_by_file_and_the_dashboard_says_so_in_one_line(tmp_path, dataset, values, expected):
    runs = [one_run(tmp_path / "res", day=d) for d in range(3)]
    add(runs, tmp_path / "hist")
    path = plant(tmp_path / "hist", dataset, **values)
    with pytest.raises(HistoryError) as exc:
        read_perf(tmp_path / "hist") if dataset == "perf" else read_tests(tmp_path / "hist")
    assert str(exc.value).startswith(f"{path}: {expected}")
    r = run_cli("dashboard", "build", "--history", str(tmp_path / "hist"), "--out", str(tmp_path / "site"))
    assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"gpuhil dashboard build: {path}: {expected}")
    assert not (tmp_path / "site").exists()


def test_a_junit_time_that_is_not_a_number_is_named(tmp_path):
    res = one_run(tmp_path / "res")
    (res / "junit.xml").write_text((res / "junit.xml").read_text().replace('time="0.010"', 'time="abc"', 1))
    with pytest.raises(HistoryError, match=r"junit.xml: <testcase name='.*'> has time 'abc': expected seconds"):
        add([res], tmp_path / "hist")


def test_a_history_path_that_is_a_file_or_cannot_be_made_is_one_line_and_exit_2(tmp_path):
    res = one_run(tmp_path / "res")
    (tmp_path / "notes.txt").write_text("a file\n")
    for history, expected in ((tmp_path / "notes.txt", f"{tmp_path / 'notes.txt'}: is a file, not a history folder"),
                              (tmp_path / "notes.txt" / "hist", "Not a directory")):
        r = run_cli("history", "add", str(res), "--history", str(history))
        assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert r.stderr.startswith("gpuhil history add: ") and expected in r.stderr
    assert (tmp_path / "notes.txt").read_text() == "a file\n"


@pytest.mark.parametrize("dataset, expected", [("perf", "holds 2 rows but the run's record says 3"),
                                               ("tests", "holds 4 rows but the run's record says 5")])
def test_a_partition_that_lost_rows_is_named_not_drawn_short(tmp_path, dataset, expected):
    add([one_run(tmp_path / "res", day=d) for d in range(2)], tmp_path / "hist")
    path = sorted((tmp_path / "hist" / dataset).rglob("*.parquet"))[-1]
    pd.read_parquet(path).iloc[1:].to_parquet(path, index=False)
    with pytest.raises(HistoryError) as exc:
        read_perf(tmp_path / "hist") if dataset == "perf" else read_tests(tmp_path / "hist")
    assert str(exc.value).startswith(f"{path}: {expected}")


def test_an_empty_path_option_is_a_usage_error_not_the_working_directory(tmp_path):
    res = one_run(tmp_path / "res")
    for args in (["history", "add", str(res), "--history", ""], ["history", "add", "", "--history", "h"],
                 ["dashboard", "build", "--history", "", "--out", "s"],
                 ["dashboard", "build", "--history", "h", "--out", ""],
                 ["dashboard", "build", "--history", "h", "--out", "s", "--baselines", " "]):
        r = subprocess.run([sys.executable, "-m", "gpuhil.dashboard.cli", *args], capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
        assert r.returncode == 2 and "empty value: give a path" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
