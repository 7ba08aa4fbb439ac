"""One step of `gpuhil bisect`: pytest on the case, in the worktree checked out at one commit, and the
step's verdict (good, bad, or skip: `git bisect skip`, the commit cannot say).

The step is plain pytest on that one node id, not `gpuhil run`: the run always collects a SKU's whole
selection under suites/, while a step must run only the case; the case still gets the gpuhil plugin
(gates, known issues, the perf fixture), which the commit's own conftest.py loads. Its code is the
commit's: PYTHONPATH starts with the worktree's src/ and root, ahead of whatever gpuhil is installed,
and the commit's own hardware_matrix.yaml is used (GPUHIL_MATRIX is not passed on). GPUHIL_CACHE_DIR
(and the kernel libraries' cache variables under it) is passed on, so a kernel whose source did not
change between two commits is not compiled again.

Test verdicts: passed -> good; failed or errored (a crash or a timeout included) -> bad; pytest could
not run the case (it does not exist at that commit, the module or conftest does not import, pytest's
own usage or internal error), or the case was skipped or xfailed -> skip.

Perf verdicts: each repeat is a fresh pytest process (a run, as baselines count runs: what differs
between processes is the noise a verdict must clear) and its row is judged by gpuhil.perf.baseline.judge,
the rule `gpuhil perf compare` applies, with the good commit's repeats in this bisect as the series'
history. A step is bad once a majority of `repeats` runs are SLOW, good once a majority are SAME or
FAST, skip when no majority can be reached (errors, throttling, an AMBG) or the series has no row
(the case does not exist or is gated off at that commit).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import thirdparty
from ..history.ids import HistoryError
from ..history.junit import parse as parse_junit
from ..perf import store
from ..perf.baseline import Entry, judge, unusable
from ..perf.recorder import RUN_ID_ENV
from ..perf.validate import PerfInputError
from ..runner import CACHE_DIR_ENV
from ..supervise import Supervisor
from .target import PerfSeries, PytestCase

GIT_SHA_ENV = "GPUHIL_GIT_SHA"  # what the probe, and so every perf row, records as the commit
MATRIX_ENV = "GPUHIL_MATRIX"
TAIL_LINES = 40
# pytest exits that mean the case was not run: the commit cannot say anything about it.
NOT_RUN = {2: "interrupted: a collection error", 3: "internal error",
           4: "usage error: a case it cannot find or collect, or an option it does not know", 5: "no test collected"}
FINE = ("SAME", "FAST")
ROW_FIELDS = ("run_id", "timestamp", "fingerprint_id", "git_sha", "median_us", "p25_us", "p75_us", "status",
              "throttled", "throttle_reasons", "error", "suite", "case_id", "provider")


@dataclass(frozen=True)
class StepEnv:
    """How every step's pytest is started: this interpreter, the caller's environment (read once by the
    CLI), and the compile cache folder every step shares."""

    python: str
    environ: Mapping[str, str]
    cache_root: Path

    def env(self, worktree: Path, sha: str, run_id: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in self.environ.items() if k != MATRIX_ENV}
        env.update(thirdparty.cache_env(self.cache_root, self.environ))
        inherited = [self.environ["PYTHONPATH"]] if self.environ.get("PYTHONPATH") else []
        env.update({CACHE_DIR_ENV: str(self.cache_root), GIT_SHA_ENV: sha,
                    "PYTHONPATH": os.pathsep.join([str(worktree / "src"), str(worktree), *inherited])})
        if run_id is not None:
            env[RUN_ID_ENV] = run_id
        return env

    def shown(self, worktree: Path, sha: str, run_id: str | None = None) -> str:
        """The variables a step sets, as the step log shows them."""
        env = self.env(worktree, sha, run_id)
        keys = ["PYTHONPATH", CACHE_DIR_ENV, GIT_SHA_ENV, *([RUN_ID_ENV] if run_id else [])]
        return " ".join(f"{k}={env[k]}" for k in keys) + (f" (unset: {MATRIX_ENV})" if MATRIX_ENV in self.environ else "")


def pytest_command(python: str, case: PytestCase | PerfSeries, worktree: Path, run_dir: Path) -> list[str]:
    cmd = [python, "-m", "pytest", case.node_id, f"--rootdir={worktree}", f"--confcutdir={worktree}",
           "-p", "no:cacheprovider", "-q", f"--junitxml={run_dir / 'junit.xml'}"]
    if isinstance(case, PerfSeries):
        cmd += ["--perf", f"--results-dir={run_dir}"]
    return cmd


@dataclass
class Run:
    """One pytest process of a step."""

    command: list[str]
    env_shown: str
    dir: Path
    returncode: int
    seconds: float
    signum: int | None  # a stop signal ended the bisect during this run
    verdict: str = ""
    detail: str = ""
    row: dict[str, Any] | None = None  # perf: the series' row, as the state file keeps it

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        try:
            text = (self.dir / "output.txt").read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-n:]


def run_pytest(sup: Supervisor, step_env: StepEnv, case, worktree: Path, sha: str, run_dir: Path,
               run_id: str | None = None) -> Run:
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = pytest_command(step_env.python, case, worktree, run_dir)
    start = time.monotonic()
    with open(run_dir / "output.txt", "wb") as log:
        ended = sup.run(cmd, worktree, env=step_env.env(worktree, sha, run_id), log=log)
    return Run(cmd, step_env.shown(worktree, sha, run_id), run_dir, ended.returncode,
               round(time.monotonic() - start, 2), ended.signum)


def _said(run: Run) -> str:
    """pytest's own last word: its last ERROR line, else its last line."""
    lines = [ln.strip() for ln in run.tail(200) if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR", "E "))]
    return ((errors or lines or ["no output"])[-1])[:300]


def _cases(run: Run) -> tuple[list[dict], str]:
    junit = run.dir / "junit.xml"
    if not junit.is_file():
        return [], "no junit.xml"
    try:
        return parse_junit(junit), ""
    except HistoryError as exc:
        return [], str(exc)


def case_verdict(run: Run) -> tuple[str, str]:
    """The verdict of a node id's run: good, bad or skip, and why."""
    rc = run.returncode
    if rc < 0:
        return "bad", f"pytest died of {signal.Signals(-rc).name}"
    if rc in NOT_RUN:
        return "skip", f"pytest exit {rc}, {NOT_RUN[rc]}: {_said(run)}"
    cases, unreadable = _cases(run)
    failed = [c for c in cases if c["outcome"] in ("failed", "error")]
    if failed:
        first = failed[0]
        reason = (first["reason"].splitlines() or [""])[0]
        return "bad", f"{len(failed)} failed or errored: {first['name']}: {reason}"[:400]
    if rc != 0:
        return "bad", f"pytest exit {rc} ({unreadable or 'no failed case in junit.xml'}): {_said(run)}"
    passed = [c for c in cases if c["outcome"] == "passed"]
    if passed:
        return "good", f"{len(passed)} passed"
    not_run = cases[0] if cases else None
    why = f"{not_run['outcome']}: {(not_run['reason'].splitlines() or [''])[0]}" if not_run else unreadable or "nothing ran"
    return "skip", f"the case did not run ({why})"[:400]


def _plain(value):
    """A row value as JSON keeps it (numpy scalars and NA included)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def series_row(run: Run, case: PerfSeries) -> dict[str, Any] | None:
    """The series' row of a perf run (merged, or left unmerged by a crash), or None when it left none."""
    try:
        rows = store.read(run.dir)
    except PerfInputError:
        return None
    row = next((r for r in rows if store.series_key(r["suite"], r["case_id"], r["provider"]) == case.key), None)
    return None if row is None else {k: _plain(row.get(k)) for k in ROW_FIELDS}


def reference(runs: list[dict[str, Any]]) -> list[Entry]:
    """The good commit's usable rows as the series' history (what a baseline holds)."""
    return [Entry(r["run_id"], r["timestamp"], r["fingerprint_id"], r["git_sha"] or "", float(r["median_us"]),
                  float(r["p25_us"]), float(r["p75_us"]))
            for r in (run.get("row") for run in runs) if r is not None and unusable(r) is None]


def judge_perf_run(run: Run, case: PerfSeries, history: list[Entry] | None) -> None:
    """Set `run`'s row and verdict: the baseline rule's verdict against `history` (None: this is a
    reference run, only its usability is judged), or ABSENT when the series left no row."""
    run.row = series_row(run, case)
    if run.row is None:
        why = f"pytest exit {run.returncode}, {NOT_RUN[run.returncode]}" if run.returncode in NOT_RUN else \
            f"pytest exit {run.returncode}"
        run.verdict, run.detail = "ABSENT", f"no row of the series ({why}: {_said(run)})"[:400]
        return
    if history is None:
        refused = unusable(run.row)
        run.verdict = refused.verdict if refused else "REFERENCE"
        run.detail = refused.note if refused else f"{run.row['median_us']:.2f} us"
        return
    v = judge(history, run.row)
    run.verdict = v.verdict
    ratio = f"{v.ratio:.3f}x the good commit's {v.baseline_us:.2f} us (threshold {v.threshold:.1%})" \
        if v.ratio is not None else v.note
    run.detail = f"{v.current_us:.2f} us, {ratio}" if v.current_us is not None and v.ratio is not None else ratio


def majority(verdicts: list[str], repeats: int) -> str | None:
    """The step's verdict from its runs' verdicts so far: bad when more than half of `repeats` are
    SLOW, good when more than half are SAME or FAST, skip when neither can still happen; None: run again."""
    need = repeats // 2 + 1
    slow = verdicts.count("SLOW")
    fine = sum(v in FINE for v in verdicts)
    left = repeats - len(verdicts)
    if slow >= need:
        return "bad"
    if fine >= need:
        return "good"
    if slow + left < need and fine + left < need:
        return "skip"
    return None
