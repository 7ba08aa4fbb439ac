"""Every malformed perf input through the real command line: exit 2 and one line naming the file and the
column or field, never a traceback and never a verdict."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gpuhil.perf import store

REPO = Path(__file__).resolve().parents[1]
SAFE = "not a safe identifier (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64, no '..')"


def gpuhil(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def row(case="a", provider="torch", median=10.0, **kw):
    return {"run_id": "r1", "timestamp": "2026-11-22T00:00:00+00:00", "git_sha": "abc", "sku": "h100",
            "fingerprint_id": "fp-a", "emulated_sku": None, "suite": "argmax", "case_id": case, "provider": provider,
            "median_us": median, "p25_us": 9.9, "p75_us": 10.1, "throttled": False,
            "throttle_reasons": "", "status": "ok", **kw}


def frame(rows):
    return store._frame(rows)


def baseline_doc(series=None):
    entry = {"run_id": "r0", "timestamp": "2026-11-21T00:00:00+00:00", "fingerprint_id": "fp-a", "git_sha": "abc",
             "median_us": 10.0, "p25_us": 9.9, "p75_us": 10.1}
    return {"schema": 1, "series": series if series is not None else {"argmax|a|torch": [entry]}}


def write(path: Path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        content.to_parquet(path, index=False)


def good_parquet() -> bytes:
    import io

    buf = io.BytesIO()
    frame([row()]).to_parquet(buf, index=False)
    return buf.getvalue()


# name, run file content, message after "gpuhil perf: run.parquet: "
RUNS = [
    ("empty file", b"", "an empty file"),
    ("not parquet", b"case,median\na,10\n", "not a readable parquet file (ArrowInvalid)"),
    ("truncated parquet", good_parquet()[:200], "not a readable parquet file (ArrowInvalid)"),
    ("missing column", frame([row()]).drop(columns=["median_us"]), "missing column 'median_us'"),
    ("missing columns", frame([row()]).drop(columns=["p25_us", "status"]), "missing columns 'p25_us', 'status'"),
    ("median as text", frame([row()]).astype({"median_us": "string"}),
     "column 'median_us' has type string, expected float64"),
    ("sku as integer", frame([row()]).assign(sku=7), "column 'sku' has type int64, expected string"),
    ("throttled as text", frame([row()]).assign(throttled="no"), "column 'throttled' has type str, expected boolean"),
    ("no rows", frame([]), "no rows"),
    ("null median", frame([row(median=None)]),
     "column 'median_us' is null or NaN in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("NaN median", frame([row(median=math.nan)]),
     "column 'median_us' is null or NaN in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("zero median", frame([row(median=0.0)]),
     "column 'median_us' is 0.0 in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("negative median", frame([row(median=-3.0)]),
     "column 'median_us' is -3.0 in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("infinite median", frame([row(median=math.inf)]),
     "column 'median_us' is inf in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("zero p25", frame([row(), row("b", p25_us=0.0)]),
     "column 'p25_us' is 0.0 in row 2 (argmax|b|torch): a timing must be a positive number"),
    ("NaN p75", frame([row(p75_us=math.nan)]),
     "column 'p75_us' is null or NaN in row 1 (argmax|a|torch): a timing must be a positive number"),
    ("rows of several SKUs", frame([row(), row("b", sku="h200")]),
     "column 'sku' holds rows of several SKUs (h100, h200): compare one run at a time"),
    ("emulated and real rows mixed", frame([row(), row("b", emulated_sku="gb10")]),
     "column 'sku' holds rows of several SKUs (h100, h100-as-gb10): compare one run at a time"),
    ("rows of several runs", frame([row(), row("b", run_id="r2")]),
     "column 'run_id' holds rows of several runs (r1, r2): compare one run at a time"),
    ("sku climbing out of baselines/", frame([row(sku="../../x")]),
     f"column 'sku' is '../../x' in row 1 (argmax|a|torch): {SAFE}"),
    ("suite climbing out of the SKU folder", frame([row(suite="../x")]),
     f"column 'suite' is '../x' in row 1 (../x|a|torch): {SAFE}"),
    ("run id with a separator", frame([row(run_id="a/b")]), f"column 'run_id' is 'a/b' in row 1 (argmax|a|torch): {SAFE}"),
    ("null sku", frame([row(sku=None)]), "column 'sku' is empty in row 1 (argmax|a|torch)"),
    ("empty provider", frame([row(provider="")]), "column 'provider' is empty in row 1 (argmax|a|)"),
    ("unknown status", frame([row(status="done")]),
     "column 'status' is 'done' in row 1 (argmax|a|torch): expected one of ok, throttled, error"),
    ("a series twice", frame([row(), row(median=11.0, p25_us=10.9, p75_us=11.1)]),
     "rows 1 and 2 are the same series argmax|a|torch: one row per series"),
    ("quantiles out of order", frame([row(p25_us=10.5)]),
     "columns 'p25_us', 'median_us', 'p75_us' are 10.5, 10.0, 10.1 in row 1 (argmax|a|torch): "
     "quantiles out of order (p25 <= median <= p75)"),
    ("'|' in a case id", frame([row("a|b")]), "column 'case_id' is 'a|b' in row 1 (argmax|a|b|torch): '|' separates the parts of a series key (suite|case_id|provider) and may not appear in one"),
    ("'|' in a provider", frame([row(provider="x|y")]), "column 'provider' is 'x|y' in row 1 (argmax|a|x|y): '|' separates the parts of a series key (suite|case_id|provider) and may not appear in one"),
    ("timestamp not a time", frame([row(timestamp="yesterday")]),
     "column 'timestamp' is 'yesterday' in row 1 (argmax|a|torch): not an ISO 8601 time"),
    ("errored row with a negative timing", frame([row(status="error", median=-1.0)]),
     "column 'median_us' is -1.0 in row 1 (argmax|a|torch): a timing must be a positive number"),
]


COMPARE = ["perf", "compare", "run.parquet", "--baseline", "baselines", "--gate"]
UPDATE = ["perf", "baseline", "update", "--from", "run.parquet", "--baseline", "baselines"]
# Both commands read through the same checks; `update` is also run where a bad value could write a file.
UPDATE_TOO = {"truncated parquet", "zero median", "sku climbing out of baselines/", "suite climbing out of the SKU folder",
              "rows of several SKUs", "quantiles out of order", "'|' in a case id", "'|' in a provider"}


@pytest.mark.parametrize("name, content, message", RUNS, ids=[c[0] for c in RUNS])
def test_a_malformed_run_is_one_line_and_exit_2(tmp_path, name, content, message):
    write(tmp_path / "run.parquet", content)
    write(tmp_path / "baselines" / "h100" / "argmax.json", json.dumps(baseline_doc()))
    for cmd in [COMPARE] + ([UPDATE] if name in UPDATE_TOO else []):
        r = gpuhil(*cmd, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"gpuhil perf: run.parquet: {message}\n")
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["baselines/h100/argmax.json", "run.parquet"]  # nothing written, inside baselines/ or out


def entry(**kw):
    return {**baseline_doc()["series"]["argmax|a|torch"][0], **kw}


# name, baseline file content, message after "gpuhil perf: baselines/h100/argmax.json: "
BASELINES = [
    ("empty file", "", "not valid JSON (line 1 column 1: Expecting value)"),
    ("bad JSON", '{"series": {', "not valid JSON (line 1 column 13: Expecting property name enclosed in double quotes)"),
    ("a list", "[]", "expected a JSON object with field 'series'"),
    ("no series", json.dumps({"schema": 1}), "missing field 'series'"),
    ("series not an object", json.dumps({"series": []}), "field 'series' must be an object (series -> list of entries)"),
    ("bad series key", json.dumps(baseline_doc({"argmax|a": [entry()]})),
     "series 'argmax|a': a series key is 'suite|case_id|provider'"),
    ("series of another suite", json.dumps(baseline_doc({"gemm|a|torch": [entry()]})),
     "series 'gemm|a|torch': suite 'gemm' in a file of suite 'argmax'"),
    ("no entries", json.dumps(baseline_doc({"argmax|a|torch": []})),
     "series 'argmax|a|torch': expected a non-empty list of entries"),
    ("entry not an object", json.dumps(baseline_doc({"argmax|a|torch": [10.0]})),
     "series 'argmax|a|torch' entry 0: expected an object"),
    ("entry without median", json.dumps(baseline_doc({"argmax|a|torch": [{k: v for k, v in entry().items() if k != "median_us"}]})),
     "series 'argmax|a|torch' entry 0: missing field 'median_us'"),
    ("entry without fingerprint", json.dumps(baseline_doc({"argmax|a|torch": [{k: v for k, v in entry().items()
                                                                               if k != "fingerprint_id"}]})),
     "series 'argmax|a|torch' entry 0: missing field 'fingerprint_id'"),
    ("zero median", json.dumps(baseline_doc({"argmax|a|torch": [entry(median_us=0)]})),
     "series 'argmax|a|torch' entry 0: field 'median_us' must be a positive number, got 0"),
    ("negative p25", json.dumps(baseline_doc({"argmax|a|torch": [entry(), entry(p25_us=-1.0)]})),
     "series 'argmax|a|torch' entry 1: field 'p25_us' must be a positive number, got -1.0"),
    ("NaN p75", json.dumps(baseline_doc({"argmax|a|torch": [entry(p75_us=math.nan)]})),
     "series 'argmax|a|torch' entry 0: field 'p75_us' must be a positive number, got nan"),
    ("null median", json.dumps(baseline_doc({"argmax|a|torch": [entry(median_us=None)]})),
     "series 'argmax|a|torch' entry 0: field 'median_us' must be a positive number, got None"),
    ("median as text", json.dumps(baseline_doc({"argmax|a|torch": [entry(median_us="10")]})),
     "series 'argmax|a|torch' entry 0: field 'median_us' must be a positive number, got '10'"),
    ("run id not text", json.dumps(baseline_doc({"argmax|a|torch": [entry(run_id=3)]})),
     "series 'argmax|a|torch' entry 0: field 'run_id' must be a string, got 3"),
    ("unknown field", json.dumps(baseline_doc({"argmax|a|torch": [entry(speed=3)]})),
     "series 'argmax|a|torch' entry 0: unexpected field 'speed'"),
    ("no series at all", json.dumps({"schema": 1, "series": {}}),
     "field 'series' is empty: a baseline file holds at least one series (remove the file to drop its suite)"),
    ("quantiles out of order", json.dumps(baseline_doc({"argmax|a|torch": [entry(p75_us=9.0)]})),
     "series 'argmax|a|torch' entry 0: p25_us 9.9, median_us 10.0, p75_us 9.0 are out of order (p25 <= median <= p75)"),
    ("a run promoted twice", json.dumps(baseline_doc({"argmax|a|torch": [entry(), entry()]})),
     "series 'argmax|a|torch': run 'r0' appears 2 times: a run is promoted once"),
    ("a series twice", '{"series": {"argmax|a|torch": [], "argmax|a|torch": []}}',
     "field 'argmax|a|torch' appears twice"),
    ("nested too deeply", "[" * 100_000, "not valid JSON (nested too deeply)"),
    ("not UTF-8", '{"series": {"argmax|caf\xe9|torch": []}}'.encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 23)"),
]


@pytest.mark.parametrize("name, content, message", BASELINES, ids=[c[0] for c in BASELINES])
def test_a_malformed_baseline_is_one_line_and_exit_2(tmp_path, name, content, message):
    write(tmp_path / "run.parquet", frame([row()]))
    write(tmp_path / "baselines" / "h100" / "argmax.json", content)
    for cmd in [COMPARE] + ([UPDATE] if name in {"bad JSON", "zero median", "a run promoted twice", "not UTF-8"} else []):
        r = gpuhil(*cmd, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (
            2, "", f"gpuhil perf: {Path('baselines/h100/argmax.json')}: {message}\n")
    on_disk = (tmp_path / "baselines" / "h100" / "argmax.json").read_bytes()
    assert on_disk == (content if isinstance(content, bytes) else content.encode())  # never overwritten


NO_BASELINE = ("no baseline for SKU 'h100': {path} does not exist (--baseline takes the baselines root or the SKU's folder; "
               "`gpuhil perf baseline update --from RESULTS` starts one)")


@pytest.mark.parametrize("arg, looked_in", [
    ("baselines", "baselines/h100"),  # the root, without this SKU's folder
    ("baselines/h100", "baselines/h100"),  # the SKU folder itself, absent
    ("elsewhere", "elsewhere/h100"),  # a root that does not exist
])
def test_a_missing_baseline_folder_names_where_it_looked(tmp_path, arg, looked_in):
    write(tmp_path / "run.parquet", frame([row()]))
    write(tmp_path / "baselines" / "h200" / "argmax.json", json.dumps(baseline_doc()))
    r = gpuhil("perf", "compare", "run.parquet", "--baseline", arg, "--gate", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"gpuhil perf: {NO_BASELINE.format(path=Path(looked_in))}\n")


def test_another_skus_folder_is_refused_for_compare_and_update(tmp_path):
    write(tmp_path / "run.parquet", frame([row()]))
    write(tmp_path / "baselines" / "h200" / "argmax.json", json.dumps(baseline_doc()))
    message = ("gpuhil perf: --baseline baselines/h200 is the baseline folder of SKU 'h200', but the run is SKU 'h100': "
               "give the baselines root or baselines/h100\n")
    for cmd in (["perf", "compare", "run.parquet", "--baseline", "baselines/h200"],
                ["perf", "baseline", "update", "--from", "run.parquet", "--baseline", "baselines/h200"]):
        r = gpuhil(*cmd, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", message)
    assert not (tmp_path / "baselines" / "h200" / "h100").exists()


@pytest.mark.parametrize("layout, message", [
    ("nothing", "results: no such file or directory"),
    ("empty dir", "results: no perf-*.parquet and no unmerged rows under rows/ (was the run made with --perf?)"),
    ("a claimed run that timed nothing",
     "results: no perf-*.parquet and no unmerged rows under rows/ (was the run made with --perf?)"),
    ("two runs", "results: 2 runs (perf-a.parquet, perf-b.parquet); name one file"),
    ("two unmerged runs", "results: no perf-*.parquet and 2 unmerged runs under rows/ (r1, r2); name one of them"),
])
def test_a_results_dir_without_one_run_is_one_line(tmp_path, layout, message):
    res = tmp_path / "results"
    if layout != "nothing":
        res.mkdir()
    if layout == "a claimed run that timed nothing":
        store.claim_run(res, "r1")
    if layout == "two runs":
        write(res / "perf-a.parquet", frame([row()]))
        write(res / "perf-b.parquet", frame([row(run_id="r2")]))
    if layout == "two unmerged runs":
        store.write_row(res, row())
        store.write_row(res, row(run_id="r2"))
    r = gpuhil("perf", "compare", "results", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"gpuhil perf: {message}\n")


def test_unmerged_rows_of_a_crashed_session_are_compared(tmp_path):
    """A single-process session that died never merged: its rows folder is the run, errored case included."""
    write(tmp_path / "baselines" / "h100" / "argmax.json", json.dumps(baseline_doc()))
    store.claim_run(tmp_path / "results", "r1")
    store.write_row(tmp_path / "results", row(status="error", error="started, never finished", median=None))
    for arg in ("results", "results/rows/r1"):
        r = gpuhil("perf", "compare", arg, "--baseline", "baselines", "--gate", cwd=tmp_path)
        assert r.returncode == 1 and r.stdout.splitlines()[-2:] == ["summary: 1 ERROR", "gate: fail (1 ERROR)"]


@pytest.mark.parametrize("content", [None, "README.md"], ids=["no file", "no JSON file"])
def test_an_empty_baseline_folder_fails_instead_of_passing_every_series_as_new(tmp_path, content):
    write(tmp_path / "run.parquet", frame([row()]))
    (tmp_path / "baselines" / "h100").mkdir(parents=True)
    if content:
        write(tmp_path / "baselines" / "h100" / content, "notes\n")
    r = gpuhil(*COMPARE, cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (
        2, "", f"gpuhil perf: no baseline for SKU 'h100': {Path('baselines/h100')} holds no *.json baseline file "
               "(not fetched, or emptied?): every series would be NEW\n")


def test_a_baseline_path_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    write(tmp_path / "run.parquet", frame([row()]))
    write(tmp_path / "notes.txt", "a file\n")
    r = gpuhil("perf", "baseline", "update", "--from", "run.parquet", "--baseline", "notes.txt", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"gpuhil perf: {Path('notes.txt/h100')}: Not a directory\n")
    write(tmp_path / "baselines" / "h100", "a file where the SKU folder goes\n")
    for cmd in (COMPARE, UPDATE):
        r = gpuhil(*cmd, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (
            2, "", f"gpuhil perf: --baseline: {Path('baselines/h100')} is a file, not a baseline folder\n")


def test_a_results_folder_whose_run_record_names_another_run_is_refused(tmp_path):
    """A reused results folder: the perf file is an earlier run's; run.json names the run that just ended."""
    write(tmp_path / "baselines" / "h100" / "argmax.json", json.dumps(baseline_doc()))
    write(tmp_path / "results" / "perf-r1.parquet", frame([row()]))
    write(tmp_path / "results" / "run.json", json.dumps({"schema": 1, "run_id": "r2"}))
    r = gpuhil(*COMPARE[:2], "results", *COMPARE[3:], cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (
        2, "", "gpuhil perf: results: perf rows are of run 'r1' but run.json names run 'r2' "
               "(an earlier run's rows in a reused folder)\n")


def test_an_empty_path_is_refused_not_read_as_the_working_directory(tmp_path):
    write(tmp_path / "run.parquet", frame([row()]))
    write(tmp_path / "baselines" / "h100" / "argmax.json", json.dumps(baseline_doc()))
    for cmd, message in ((["perf", "compare", "run.parquet", "--baseline", ""],
                          "--baseline: empty value: give the baselines root or a SKU's folder, or leave the option out"),
                         (["perf", "baseline", "update", "--from", "run.parquet", "--baseline", " "],
                          "--baseline: empty value: give the baselines root or a SKU's folder, or leave the option out"),
                         (["perf", "compare", "", "--baseline", "baselines"],
                          "RESULTS: empty value: give a perf-*.parquet file or a results folder")):
        r = gpuhil(*cmd, cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (2, "", f"gpuhil perf: {message}\n")
