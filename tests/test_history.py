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
        ["junit.xml", "probe.json", "report.md"]

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


@pytest.mark.parametrize("missing", ["junit.xml", "probe.json", "report.md"])
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


def test_unmerged_perf_rows_mean_the_session_died(tmp_path):
    res = one_run(tmp_path / "res", write_rows=True)
    next(res.glob("perf-*.parquet")).unlink()
    with pytest.raises(HistoryError, match="never merged"):
        add([res], tmp_path / "hist")


def test_a_run_without_perf_is_a_coverage_only_run(tmp_path):
    res = one_run(tmp_path / "res", sku="gb10", perf=False, cases=cases_for("gb10"))
    (sku, run_id), = add([res], tmp_path / "hist").added
    assert (sku, run_id) == ("gb10", "20261001-030000-gb10")  # the report's stamp and the SKU
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


def test_unsafe_identifiers_never_become_paths(tmp_path):
    res = one_run(tmp_path / "res", perf=False)
    (res / "report.md").write_text((res / "report.md").read_text().replace("catalog SKU: h100", "catalog SKU: ../../x"))
    with pytest.raises(HistoryError, match=r"report.md: sku '\.\./\.\./x': not a safe identifier"):
        add([res], tmp_path / "hist")
    res2 = one_run(tmp_path / "res", day=1)
    perf = next(res2.glob("perf-*.parquet"))
    df = pd.read_parquet(perf)
    df["run_id"] = "a/../../b"
    df.to_parquet(perf, index=False)
    with pytest.raises(HistoryError, match="run_id 'a/../../b': not a safe identifier"):
        add([res2], tmp_path / "hist")
    assert not (tmp_path / "b").exists() and not (tmp_path / "hist" / "runs").exists()


@pytest.mark.parametrize("name, content, expected", [
    ("junit.xml", "<testsuites><testcase", "junit.xml: not well-formed XML"),
    ("probe.json", "{not json", "probe.json: not valid JSON"),
    ("probe.json", "{}", "probe.json: field fingerprint_id is missing"),
    ("report.md", "hello\n", "report.md: no '# gpuhil run <stamp>' header"),
])
def test_malformed_files_are_named(tmp_path, name, content, expected):
    res = one_run(tmp_path / "res")
    (res / name).write_text(content)
    with pytest.raises(HistoryError, match=expected.replace("(", r"\(").replace("[", r"\[")):
        add([res], tmp_path / "hist")


def test_a_hand_edited_report_with_unbalanced_quotes_still_reads(tmp_path):
    res = one_run(tmp_path / "res", perf=False)
    (res / "report.md").write_text("# gpuhil run 20261001-030000\n- catalog SKU: h100\n"
                                   "- command: `python -m pytest -k 'oops --emulate-sku h20`\n")
    add([res], tmp_path / "hist")
    assert read_runs(tmp_path / "hist")["machine"].tolist() == ["h100-as-h20"]


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
    with pytest.raises(HistoryError, match=r"perf-.*\.parquet: unreadable parquet"):
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
    df.to_parquet(perf, index=False)
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
    cases, started = junit.parse(tmp_path / "junit.xml")
    got = {c["name"]: (c["suite"], c["outcome"], c["reason"]) for c in cases}
    assert got["test_ok"] == ("argmax", "passed", "")
    assert got["test_skip"] == ("argmax", "skipped", "no cluster launch <probed 0>")
    assert got["test_xfail"] == ("argmax", "xfailed", "known & tracked")
    assert got["test_xpass"][1] == "failed" and "XPASS(strict)" in got["test_xpass"][2]
    assert got["test_fail"][1] == "failed" and "boom" in got["test_fail"][2]
    assert got["test_error"][1] == "error" and "setup broke" in got["test_error"][2]
    assert started.endswith("+00:00")


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
