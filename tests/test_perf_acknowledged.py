"""baselines/acknowledged.yaml: an acknowledged slowdown is not failing until its date and fails again
after it, saying so; an expected change resets the baseline; every malformed entry is one line naming the
file, line, entry and field; `gpuhil perf acknowledge` writes the file and nothing else."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpuhil.perf import acknowledged, store
from gpuhil.perf.acknowledged import Acknowledgement
from gpuhil.perf.baseline import Baseline, Entry
from gpuhil.perf.validate import PerfInputError

REPO = Path(__file__).resolve().parents[1]
KEY = "argmax|suites/argmax/test_argmax_perf.py::test_argmax_perf[gpuhil-cute-M1-N151936-bf16]|gpuhil-cute"
FP = "fb4013e036db31eb"
OLD, A, B, C = "0" * 40, "a1" * 20, "b2" * 20, "c3" * 20  # commits: long ago, before the change, with it, later
TODAY = dt.date(2026, 12, 1)


def entry(run, sha, day, median, fp=FP):
    return Entry(run, f"2026-11-{day:02d}T02:10:00+00:00", fp, sha, median, median * 0.995, median * 1.005)


def row(median, *, sha=C, stamp="2026-11-25T02:10:00+00:00", fp=FP, **kw):
    suite, case, provider = KEY.split("|")
    return {"run_id": "r", "timestamp": stamp, "git_sha": sha, "sku": "h100", "fingerprint_id": fp, "suite": suite,
            "case_id": case, "provider": provider, "median_us": median, "p25_us": median * 0.995,
            "p75_us": median * 1.005, "throttled": False, "throttle_reasons": "", "status": "ok", **kw}


def ack(kind="acknowledged", **kw):
    doc = {"series": KEY, "sku": "h100", "kind": kind, "commits": f"{A[:12]}..{B[:12]}",
           "since": "2026-11-20T02:00:00+00:00", "reason": "argmax M=1 traded for M=256", "who": "alice",
           "added": "2026-11-21", "until": "2026-12-15", **kw}
    return Acknowledgement.model_validate({k: v for k, v in doc.items() if v is not None})


STEADY = [entry(f"old{i}", OLD, 1 + i, m) for i, m in enumerate([10.0, 10.1, 9.9, 10.05, 9.95])]


# --- the verdicts --------------------------------------------------------------------------------------

def test_an_acknowledged_slowdown_is_ack_until_its_date_and_slow_again_after_it_saying_so():
    a = ack()
    before = acknowledged.verdict(STEADY, row(12.0), [a], TODAY)
    assert before.verdict == "ACK" and before.ratio == pytest.approx(1.2, rel=0.01)
    assert before.note.startswith("acknowledged (argmax M=1 traded for M=256, alice, until 2026-12-15): ")
    assert acknowledged.verdict(STEADY, row(12.0), [a], dt.date(2026, 12, 15)).verdict == "ACK"  # the last day holds
    after = acknowledged.verdict(STEADY, row(12.0), [a], dt.date(2026, 12, 16))
    assert after.verdict == "SLOW"
    assert after.note.startswith("acknowledged entry expired on 2026-12-15 (argmax M=1 traded for M=256, alice): "
                                 "failing again; ")


def test_an_acknowledgement_covers_only_what_it_names():
    a = ack()
    assert acknowledged.verdict(STEADY, row(10.0), [a], TODAY).verdict == "SAME"  # nothing to accept
    assert acknowledged.verdict(STEADY, row(12.0, sha=A), [a], TODAY).verdict == "SLOW"  # at A: before the change
    early = row(12.0, sha=OLD[:-1] + "9", stamp="2026-11-19T02:10:00+00:00")
    assert acknowledged.verdict(STEADY, early, [a], TODAY).verdict == "SLOW"  # before `since`, at another commit
    assert acknowledged.verdict(STEADY, row(12.0, sha=B, stamp="2026-11-01T00:00:00"), [a], TODAY).verdict == "ACK"
    crashed = row(12.0, status="error", error="RuntimeError: illegal address")
    assert acknowledged.verdict(STEADY, crashed, [a], TODAY).verdict == "ERROR"  # a crash is never acknowledged
    on_driver = ack(commits=None, since=None, fingerprint=FP)
    assert acknowledged.verdict(STEADY, row(12.0), [on_driver], TODAY).verdict == "ACK"
    assert acknowledged.verdict(STEADY, row(12.0, fp="0123456789abcdef"), [on_driver], TODAY).verdict == "EPOCH"


def test_an_expected_change_resets_the_baseline():
    change = ack("expected", reason="new CuTe DSL release: faster M=256, slower M=1")
    # the first run after it: nothing after the change to judge against yet, so not failing (without the
    # entry the same run is SLOW, and stays SLOW however many runs are promoted: the old median holds)
    first = acknowledged.verdict(STEADY, row(13.0, sha=B, stamp="2026-11-20T02:10:00+00:00"), [change], TODAY)
    assert first.verdict == "EXPECTED" and first.note.startswith("expected change (new CuTe DSL release")
    assert acknowledged.verdict(STEADY, row(13.0, sha=B), [], TODAY).verdict == "SLOW"

    base = Baseline(Path("/nonexistent-baseline"))
    base.series[KEY] = list(STEADY)
    keep = acknowledged.resetter([change], "h100", TODAY)
    for i, m in enumerate([13.0, 13.1, 12.9]):  # promoted after the change: the entries before it go
        base.add_run([row(m, sha=B if i == 0 else C, stamp=f"2026-11-2{i}T02:10:00+00:00", run_id=f"new{i}")],
                     keep_after=keep)
    assert [e.run_id for e in base.series[KEY]] == ["new0", "new1", "new2"] and base.dropped == len(STEADY)
    history = base.series[KEY]
    same = acknowledged.verdict(history, row(13.05), [change], TODAY)
    assert same.verdict == "SAME" and same.baseline_us == pytest.approx(13.0)
    assert same.note.endswith("; baseline reset by expected change (new CuTe DSL release: faster M=256, slower M=1, "
                              "alice, until 2026-12-15)")
    assert acknowledged.verdict(history, row(15.0), [change], TODAY).verdict == "SLOW"  # judged on the new numbers
    # once expired, the reset baseline is simply the baseline
    assert acknowledged.verdict(history, row(13.05), [change], dt.date(2027, 1, 1)).verdict == "SAME"


def test_an_expected_change_judges_against_the_entries_after_it_before_any_pruning():
    change = ack("expected")
    mixed = STEADY + [entry("new0", B, 20, 13.0)]
    assert acknowledged.verdict(mixed, row(13.0), [change], TODAY).verdict == "SAME"
    expired = acknowledged.verdict(mixed, row(13.0), [change], dt.date(2026, 12, 16))
    assert expired.verdict == "SLOW" and "expected entry expired on 2026-12-15" in expired.note


def test_a_promotion_without_a_covering_change_keeps_the_history():
    base = Baseline(Path("/nonexistent-baseline"))
    base.series[KEY] = list(STEADY)
    base.add_run([row(10.0, sha=A, stamp="2026-11-19T02:10:00+00:00", run_id="x")],
                 keep_after=acknowledged.resetter([ack("expected")], "h100", TODAY))
    assert len(base.series[KEY]) == len(STEADY) + 1 and base.dropped == 0


# --- the file ------------------------------------------------------------------------------------------

GOOD = f"""\
schema: 1
entries:
  - series: "{KEY}"
    sku: h100
    kind: acknowledged
    commits: {A[:12]}..{B[:12]}
    since: "2026-11-20T02:00:00+00:00"
    reason: argmax M=1 traded for M=256
    who: alice
    added: 2026-11-21
    until: 2026-12-15
"""


def test_a_good_file_loads_and_round_trips(tmp_path):
    path = tmp_path / "acknowledged.yaml"
    path.write_text(GOOD)
    [a] = acknowledged.load(path, TODAY)
    assert (a.series, a.kind, a.scope, a.until) == (KEY, "acknowledged", f"commits {A[:12]}..{B[:12]}", dt.date(2026, 12, 15))
    assert acknowledged.parse(path, acknowledged.dump([a]), TODAY) == [a]
    assert acknowledged.load(tmp_path / "absent.yaml", TODAY) == []


def test_the_committed_file_reads():
    path = REPO / "baselines" / acknowledged.FILE
    entries = acknowledged.load(path, dt.datetime.now(dt.timezone.utc).date())
    assert acknowledged.parse(path, acknowledged.dump(entries), None) == entries


def edit(old, new):
    assert old in GOOD
    return GOOD.replace(old, new)


WHERE = f"acknowledged.yaml:3: entry 0 ({KEY}): "
BAD = [
    (edit("kind: acknowledged", "kind: acknowleged"), WHERE + "field 'kind': Input should be 'acknowledged' or 'expected'"),
    (edit("    sku: h100\n", ""), WHERE + "field 'sku': missing"),
    (edit("sku: h100", "sku: ../h100"), WHERE + "field 'sku': '../h100': not a safe identifier"),
    (edit("who: alice", "who: ''"), WHERE + "field 'who': empty: say it in one line"),
    (edit("reason: argmax M=1 traded for M=256", 'reason: "two\\nlines"'), WHERE + "field 'reason': one line"),
    (edit("who: alice", "who: 42"), WHERE + "field 'who': Input should be a valid string"),
    (edit("until: 2026-12-15", "until: 2026-12-32"), "acknowledged.yaml:11: not valid YAML ('2026-12-32' is not a real date"),
    (edit("until: 2026-12-15", "until: 20261215"), WHERE + "field 'until': 20261215 is not a date YYYY-MM-DD"),
    (edit("until: 2026-12-15", "until: 2026-11-20"), WHERE + "field 'until': 2026-11-20 is before added 2026-11-21"),
    (edit("until: 2026-12-15", "until: 2027-03-01"), WHERE + "field 'until': 2027-03-01 is 100 days after added "
                                                     "2026-11-21: at most 90"),
    (edit("added: 2026-11-21", "added: 2026-12-02"), WHERE + "field 'added': 2026-12-02 is after today (2026-12-01)"),
    (edit(f"commits: {A[:12]}..{B[:12]}", f"commits: {A[:12]}"), WHERE + f"field 'commits': '{A[:12]}' is not A..B"),
    (edit(f"commits: {A[:12]}..{B[:12]}", f"commits: {A[:12]}..{A[:8]}"), WHERE + "field 'commits': "
                                                                            f"'{A[:12]}..{A[:8]}': the two ends name the same commit"),
    (edit(f"    commits: {A[:12]}..{B[:12]}\n", f"    fingerprint: {FP}\n"), WHERE + "field 'since': only goes with commits"),
    (edit('    since: "2026-11-20T02:00:00+00:00"\n', ""), WHERE + "field 'since': missing: with commits"),
    (edit('since: "2026-11-20T02:00:00+00:00"', "since: yesterday"), WHERE + "field 'since': 'yesterday' is not an ISO 8601 time"),
    (edit("    who: alice\n", f"    who: alice\n    fingerprint: {FP}\n"), WHERE + "field 'fingerprint': give one scope"),
    (edit(f"    commits: {A[:12]}..{B[:12]}\n    since: \"2026-11-20T02:00:00+00:00\"\n", ""),
     WHERE + "field 'commits': missing: give one scope"),
    (edit(f"    commits: {A[:12]}..{B[:12]}\n    since: \"2026-11-20T02:00:00+00:00\"\n", "    fingerprint: FB40-13\n"),
     WHERE + "field 'fingerprint': 'FB40-13' is not a probe fingerprint_id"),
    (edit("    who: alice\n", "    who: alice\n    owner: bob\n"), WHERE + "field 'owner': unknown field (fields: series, sku"),
    (edit(f'series: "{KEY}"', 'series: "argmax|case"'), "acknowledged.yaml:3: entry 0 (argmax|case): field 'series': "
                                                        "'argmax|case' is not a series key 'suite|case_id|provider'"),
    (edit(f'series: "{KEY}"', 'series: "../x|case|torch"'), "field 'series': suite '../x': not a safe identifier"),
    (edit(f'series: "{KEY}"', 'series: "argmax| |torch"'), "field 'series': case_id of 'argmax| |torch' is empty"),
    (edit("who: alice", "who: alice\n    who: bob"), "acknowledged.yaml: line 10: key 'who' appears twice"),
    (GOOD + GOOD.split("entries:\n", 1)[1], "acknowledged.yaml:12: entry 1 (" + KEY + "): field 'series': entry 0 "
                                             "already is acknowledged for this series"),
    (edit("schema: 1", "schema: 2"), "acknowledged.yaml: field 'schema' is 2; this gpuhil reads schema 1"),
    (edit("entries:", "acks:"), "acknowledged.yaml: missing field 'entries'"),
    ("schema: 1\nentries: {}\n", "acknowledged.yaml: field 'entries' must be a list"),
    ("schema: 1\nentries:\n  - just text\n", "acknowledged.yaml:3: entry 0: expected a mapping"),
    ("schema: 1\nentries: [\n", "acknowledged.yaml:3: not valid YAML"),
    ("a: &x 1\nentries: [*x]\n", "acknowledged.yaml: YAML aliases are not allowed here"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m.split(": ", 2)[-1][:48] for _, m in BAD])
def test_every_malformed_entry_is_one_line_naming_file_line_entry_and_field(tmp_path, text, message):
    path = tmp_path / "acknowledged.yaml"
    path.write_text(text)
    with pytest.raises(PerfInputError) as exc:
        acknowledged.load(path, TODAY)
    got = str(exc.value)
    assert "\n" not in got and got.startswith(str(tmp_path)) and message in got, got


def test_a_file_that_is_not_utf8_or_too_large_is_refused(tmp_path):
    path = tmp_path / "acknowledged.yaml"
    path.write_bytes(b"schema: 1\nentries: []\n# caf\xe9\n")
    with pytest.raises(PerfInputError, match="not UTF-8 text"):
        acknowledged.load(path, TODAY)
    path.write_text("#" * (acknowledged.MAX_BYTES + 1))
    with pytest.raises(PerfInputError, match="larger than"):
        acknowledged.load(path, TODAY)


# --- the commands --------------------------------------------------------------------------------------

def gpuhil(*args):
    return subprocess.run([sys.executable, "-m", "gpuhil", *args], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})


def results(tmp_path, run_id, median, sha, started):
    """A results folder as `gpuhil run --perf` leaves it: run.json and the merged rows."""
    d = tmp_path / run_id
    for key, m in ((KEY, median), (KEY.replace("M1-", "M256-"), 21.0)):
        suite, case, provider = key.split("|")
        store.write_row(d, {**row(m, sha=sha, stamp=started), "run_id": run_id, "case_id": case})
    store.merge(d, run_id)
    (d / "run.json").write_text(json.dumps({"run_id": run_id, "started": started}))
    return d


@pytest.fixture
def fleet(tmp_path):
    """A baseline of three runs at 10 us on h100 (runs of long ago), then a night at commit B 20 % slower."""
    real = dt.datetime.now(dt.timezone.utc)
    base = tmp_path / "baselines"
    for i in range(3):
        d = results(tmp_path, f"old{i}", 10.0 + 0.05 * i, OLD, (real - dt.timedelta(days=30 - i)).isoformat())
        assert gpuhil("perf", "baseline", "update", "--from", str(d), "--baseline", str(base)).returncode == 0
    night = results(tmp_path, "night", 12.0, B, (real - dt.timedelta(hours=3)).isoformat(timespec="seconds"))
    return base, night, real.date()


def test_acknowledge_writes_the_file_and_the_gate_honours_it(fleet):
    base, night, today = fleet
    r = gpuhil("perf", "compare", str(night), "--baseline", str(base), "--gate")
    assert r.returncode == 1 and "| SLOW |" in r.stdout
    until = today + dt.timedelta(days=30)
    r = gpuhil("perf", "acknowledge", KEY, "--reason", "M=1 traded for M=256", "--who", "alice", "--until", str(until),
               "--commits", f"{A[:12]}..{B[:12]}", "--results", str(night), "--baseline", str(base))
    assert r.returncode == 0, r.stderr
    path = base / "acknowledged.yaml"
    assert r.stdout == f"{path}: added acknowledged entry for {KEY} on h100 (commits {A[:12]}..{B[:12]}), until {until}\n"
    [a] = acknowledged.load(path, today)
    assert a.since == acknowledged.instant(json.loads((night / "run.json").read_text())["started"])  # the run at B
    assert (a.added, a.who) == (today, "alice")
    assert sorted(p.name for p in base.iterdir()) == ["acknowledged.yaml", "h100"]  # nothing else, no temporary

    r = gpuhil("perf", "compare", str(night), "--baseline", str(base), "--gate")
    assert r.returncode == 0 and "gate: pass" in r.stdout, r.stdout
    assert f"| ACK | 10.05 | 12.00 | 1.194 | 5.0% | acknowledged (M=1 traded for M=256, alice, until {until}): " in r.stdout
    assert "summary: 1 SAME, 1 ACK" in r.stdout

    r = gpuhil("perf", "acknowledge", KEY, "--reason", "still traded", "--who", "bob", "--until", str(until),
               "--commits", f"{A[:12]}..{B[:12]}", "--since", "2026-01-01T00:00:00Z", "--sku", "h100", "--baseline", str(base))
    assert r.returncode == 0 and ": replaced acknowledged entry" in r.stdout
    assert [(e.who, e.since.year) for e in acknowledged.load(path, today)] == [("bob", 2026)]


def test_an_expired_entry_fails_the_gate_again_saying_it_expired(fleet):
    base, night, today = fleet
    added, until = today - dt.timedelta(days=60), today - dt.timedelta(days=1)
    (base / "acknowledged.yaml").write_text(edit("added: 2026-11-21", f"added: {added}").replace(
        "until: 2026-12-15", f"until: {until}").replace('since: "2026-11-20T02:00:00+00:00"', f'since: "{added}T00:00:00Z"'))
    r = gpuhil("perf", "compare", str(night), "--baseline", str(base), "--gate")
    assert r.returncode == 1 and "gate: fail (1 SLOW)" in r.stdout
    assert f"| SLOW | 10.05 | 12.00 | 1.194 | 5.0% | acknowledged entry expired on {until} (argmax M=1 traded for " \
           "M=256, alice): failing again; " in r.stdout


def test_an_expected_change_lets_the_new_numbers_become_the_baseline(fleet, tmp_path):
    base, night, today = fleet
    r = gpuhil("perf", "acknowledge", KEY, "--expected", "--reason", "new DSL release", "--who", "alice",
               "--until", str(today + dt.timedelta(days=14)), "--commits", f"{A[:12]}..{B[:12]}", "--results", str(night),
               "--baseline", str(base))
    assert r.returncode == 0, r.stderr
    r = gpuhil("perf", "compare", str(night), "--baseline", str(base), "--gate", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["counts"]["EXPECTED"] == 1 and out["gate"] == "pass"
    r = gpuhil("perf", "baseline", "update", "--from", str(night), "--baseline", str(base))
    assert r.returncode == 0 and "3 entries from before an expected change left out" in r.stdout
    series = json.loads((base / "h100" / "argmax.json").read_text())["series"]
    assert [e["run_id"] for e in series[KEY]] == ["night"]
    later = results(tmp_path, "later", 14.5, C, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    out = json.loads(gpuhil("perf", "compare", str(later), "--baseline", str(base), "--json").stdout)
    [v] = [v for v in out["verdicts"] if v["series"] == KEY]
    assert (v["verdict"], v["baseline_us"]) == ("SLOW", 12.0)  # +21 % against the post-change number


def refusals(base, night, today):
    good = ["--reason", "r", "--who", "w", "--until", str(today + dt.timedelta(days=10)), "--fingerprint", FP,
            "--sku", "h100", "--baseline", str(base)]

    def but(**change):
        args = list(good)
        for flag, value in change.items():
            flag = "--" + flag
            if flag in args:
                i = args.index(flag)
                del args[i:i + 2]
            if value is not None:
                args += [flag] + ([value] if value is not True else [])
        return args

    return [
        (["argmax|case", *good], "SERIES: 'argmax|case' is not a series key"),
        ([KEY.replace("M1-", "M2-"), *good], "SERIES 'argmax|suites/argmax/test_argmax_perf.py::test_argmax_perf[gpuhil-"
                                             "cute-M2-N151936-bf16]|gpuhil-cute': not in the baseline of SKU 'h100'"),
        ([KEY, *but(reason=None)], "--reason: missing"),
        ([KEY, *but(who=" ")], "--who: empty: say it in one line"),
        ([KEY, *but(until="2026-02-30")], "--until: '2026-02-30' is not a real date"),
        ([KEY, *but(until="next week")], "--until: 'next week' is not a date YYYY-MM-DD"),
        ([KEY, *but(until=str(today))], f"--until {today}: not in the future"),
        ([KEY, *but(until=str(today + dt.timedelta(days=91)))], "--until " + str(today + dt.timedelta(days=91))
                                                                 + ": 91 days away, at most 90"),
        ([KEY, *but(fingerprint=None)], "--commits A..B or --fingerprint ID: give exactly one"),
        ([KEY, *but(commits=f"{A[:8]}..{B[:8]}")], "--commits A..B or --fingerprint ID: give exactly one"),
        ([KEY, *but(since="2026-11-20T00:00:00Z")], "--since: only goes with --commits"),
        ([KEY, *but(fingerprint="0123456789abcdef")], "--fingerprint 0123456789abcdef: no run of this series has it"),
        ([KEY, *but(fingerprint=None, commits="HEAD~1..HEAD")], "--commits 'HEAD~1..HEAD': not A..B"),
        ([KEY, *but(fingerprint=None, commits=f"{A[:8]}..{B[:8]}")], f"--commits {A[:8]}..{B[:8]}: no run at commit "
                                                                     f"{B[:8]} in the baseline of this series"),
        ([KEY, *but(fingerprint=None, commits=f"{A[:8]}..{B[:8]}", since="soon")], "--since 'soon': not an ISO 8601 time"),
        ([KEY, *but(sku="../h100")], "--sku '../h100': not a safe identifier"),
        ([KEY, *but(sku="h200", results=str(night))], f"--sku h200: --results {night} is a run of SKU 'h100'"),
        ([KEY, *but(sku=None)], "--sku: missing"),
        ([KEY, *but(acknowledged=str(base / "nowhere" / "ack.yaml"))], "--acknowledged: " + str(base / "nowhere")
                                                                         + " is not a folder"),
    ]


def test_every_bad_input_to_acknowledge_is_one_line_and_writes_nothing(fleet):
    base, night, today = fleet
    path = base / "acknowledged.yaml"
    path.write_text(GOOD.replace("until: 2026-12-15", f"until: {today}").replace("added: 2026-11-21", f"added: {today}"))
    before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    for args, message in refusals(base, night, today):
        r = gpuhil("perf", "acknowledge", *args)
        assert (r.returncode, r.stdout) == (2, ""), (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and message in r.stderr, (message, r.stderr)
    assert {p: p.read_bytes() for p in base.rglob("*") if p.is_file()} == before


def test_a_malformed_file_is_refused_by_every_command_and_never_overwritten(fleet):
    base, night, today = fleet
    path = base / "acknowledged.yaml"
    path.write_text(GOOD.replace("kind: acknowledged", "kind: maybe"))
    for args in (["perf", "acknowledge", KEY, "--reason", "r", "--who", "w", "--until", str(today + dt.timedelta(days=5)),
                  "--fingerprint", FP, "--results", str(night), "--baseline", str(base)],
                 ["perf", "compare", str(night), "--baseline", str(base), "--gate"],
                 ["perf", "baseline", "update", "--from", str(night), "--baseline", str(base)]):
        r = gpuhil(*args)
        assert (r.returncode, r.stdout) == (2, "") and r.stderr.count("\n") == 1, args
        assert f"{path}:3: entry 0 ({KEY}): field 'kind': Input should be" in r.stderr
    assert path.read_text() == GOOD.replace("kind: acknowledged", "kind: maybe")
