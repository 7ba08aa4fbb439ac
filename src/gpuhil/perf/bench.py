"""`gpuhil bench SUITE`: the suite's perf cases, timed by the perf fixture into the rows `--perf` writes,
then the table and the goal verdicts rendered from those rows (perf/table.py, perf/goals.py).

The cases run as `pytest suites/SUITE -m perf --perf` in a subprocess, in one xdist worker that is
replaced when a case kills it, so a case that cannot run (a crash, a hang cut by the timeout) leaves
its `error` row with the reason and the rest goes on. A case too large for the device's free memory
is a SKIP line with the bytes it needs and the bytes free (its gate's device-memory requirement, or
the perf fixture's out-of-memory fallback), never an error row. Each row is printed as soon as it lands. `--from RESULTS` renders an earlier run's rows without running anything.

Exit status: 0; 1 with `--gate` when a goal is MISS or a row ERROR; 2 when an input is refused (one
line: unknown suite, malformed goals file, a results dir in use, no GPU) or the run left no row.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import goals as goals_mod, store, table
from .recorder import NEVER_FINISHED, RUN_ID_ENV, new_run_id
from .validate import PerfInputError

MAX_WORKER_RESTARTS = 1000  # every crash costs one case; never give up the rest of the run
POLL_S = 0.5
INTERRUPT_WAIT_S = 30


class BenchRefused(Exception):
    """An input problem already phrased as the one line to print."""


def suite_dir(root: Path, name: str) -> Path:
    """suites/<name> of the checkout at `root` (`-` read as `_`), or BenchRefused listing the suites."""
    suites = root / "suites"
    if not suites.is_dir():
        raise BenchRefused(f"no suites/ in {root}: run it from a gpuhil checkout")
    folder = suites / name.replace("-", "_")
    if not folder.is_dir() or name.startswith(".") or "/" in name or "\\" in name:
        have = sorted(d.name for d in suites.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")))
        raise BenchRefused(f"no suite '{name}' in {suites} (have: {', '.join(have)})")
    return folder


def fresh_results_dir(given: str | None, root: Path, suite: str) -> Path:
    """The folder this bench writes: the one given (new or empty), else results/bench-<time>-<suite>."""
    path = Path(given) if given else root / "results" / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}-{suite}"
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BenchRefused(f"--results-dir {path}: {'not a folder' if not path.is_dir() else 'not empty'}; "
                           "a bench writes a new or empty folder (its rows would mix with another run's)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchRefused(f"--results-dir {path}: cannot create it ({exc.strerror or exc})") from None
    return path


def pytest_command(suite: str, results: Path, *, emulate: str | None = None, matrix: str | None = None,
                   keyword: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", f"suites/{suite}", "-m", "perf", "--perf", f"--results-dir={results}",
           f"--junitxml={results / 'junit.xml'}", "-p", "no:cacheprovider", "-q"]
    if importlib.util.find_spec("xdist") is not None:  # one worker: timings never share the GPU
        cmd += ["-n", "1", f"--max-worker-restart={MAX_WORKER_RESTARTS}"]
    if emulate:
        cmd += ["--emulate-sku", emulate]
    if matrix:
        cmd += ["--matrix", str(matrix)]
    if keyword:
        cmd += ["-k", keyword]
    return cmd


class RowWatcher:
    """Finished rows of one run as they land in rows/<run_id>/ (a row file is replaced atomically)."""

    def __init__(self, results: Path, run_id: str) -> None:
        self.dir = store.rows_dir(results, run_id)
        self.seen: dict[Path, tuple[int, int, int]] = {}

    def new(self) -> Iterator[dict[str, Any]]:
        import pandas as pd

        for path in sorted(self.dir.glob("*.parquet")) if self.dir.is_dir() else []:
            try:
                # Stamp and content from one open file: a stat of the path could see the provisional row
                # and the read its replacement, and the next poll would yield that replacement again.
                with open(path, "rb") as f:
                    st = os.fstat(f.fileno())
                    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                    if self.seen.get(path) == stamp:
                        continue
                    row = pd.read_parquet(f).astype(object).iloc[0].to_dict()
            except (OSError, ValueError, IndexError):  # removed or half-seen: read it on the next poll
                continue
            self.seen[path] = stamp
            row = {k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in row.items()}
            if not (row.get("status") == "error" and row.get("error") == NEVER_FINISHED):
                yield row


def measured_line(row: dict[str, Any]) -> str:
    label = f"{row['provider']} {table.case_label(row, with_test=True)}"
    if row.get("status") == "error":
        return f"  ERROR     {label}: {row.get('error')}"
    pct = row.get("pct_of_ceiling")
    roof = f", {pct:.1f} % of roofline ({row.get('ceiling')})" if pct is not None else ""
    host = f", host {table.host_cell(row)} us/call" if row.get("host_us") is not None else ""
    flag = " (throttled)" if row.get("throttled") else ""
    return f"  measured  {label}: {row['median_us']:.2f} us{roof}{host}{flag}"


def run_cases(cmd: list[str], root: Path, results: Path, run_id: str,
              on_row: Callable[[dict[str, Any]], None]) -> int:
    """Run `cmd` (pytest) from `root`, its output in results/pytest.log, calling `on_row` for each row
    as it lands; returns pytest's exit code (130 after Ctrl-C, once pytest has stopped)."""
    watcher = RowWatcher(results, run_id)
    env = {**os.environ, RUN_ID_ENV: run_id}
    with open(results / "pytest.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                for row in watcher.new():
                    on_row(row)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(INTERRUPT_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 130
        finally:
            for row in watcher.new():
                on_row(row)
    return proc.returncode


def cases_without_rows(junit: Path, rows: list[dict[str, Any]]) -> list[str]:
    """A line per case that left no row: skipped (the gate's reason) or failed before the fixture."""
    from ..history.ids import HistoryError
    from ..history.junit import parse

    if not junit.is_file():
        return []
    try:
        cases = parse(junit)
    except HistoryError as exc:
        return [f"(junit unreadable: {exc})"]
    recorded = {r["case_id"].rsplit("::", 1)[-1] for r in rows}
    out = []
    for c in cases:
        if c["name"] in recorded or c["outcome"] == "passed":
            continue
        tag = {"skipped": "SKIP", "xfailed": "XFAIL"}.get(c["outcome"], "FAIL")
        reason = (c["reason"].splitlines() or [""])[0]
        out.append(f"{tag:<7} {c['name']}: {reason}")
    return out


def report(rows: list[dict[str, Any]], goal_list: list[goals_mod.Goal], *, peer: str,
           without_rows: list[str] = ()) -> tuple[str, dict[str, int]]:
    """The bench's text from a run's rows, and the gate's failing counts (empty: the gate passes)."""
    verdicts = goals_mod.judge(goal_list, table.ordered(rows, peer))
    parts = [*table.header(rows), "", table.render(rows, peer=peer)]
    if without_rows:
        parts += ["", "cases without a row:", *without_rows]
    goal_lines = table.render_goals(verdicts, rows)
    if goal_lines:
        parts += ["", "goals:", *goal_lines]
    return "\n".join(parts), goals_mod.gate_fails(verdicts)


def checkout_root() -> Path:
    """The checkout whose suites/ and baselines/ the bench uses: where the catalog is found."""
    from ..catalog.matrix import default_path

    return default_path().parent


def load_goals(path: str | None, root: Path) -> list[goals_mod.Goal]:
    """--goals FILE, else the checkout's baselines/goals.yaml (none there: no goals)."""
    goal_path = Path(path) if path else root / "baselines" / goals_mod.GOALS_FILE
    if not path and not goal_path.exists():
        return []
    return goals_mod.load(goal_path)


def from_results(args, goal_list: list[goals_mod.Goal]) -> int:
    """`--from RESULTS`: render an earlier run's rows (no GPU needed), only SUITE's when it is given."""
    given = Path(args.from_)
    rows = store.read(given)
    if args.suite:
        suite = args.suite.replace("-", "_")
        rows = [r for r in rows if r["suite"] == suite]
        if not rows:
            raise BenchRefused(f"--from {given}: no row of suite '{suite}'")
    junit = (given if given.is_dir() else given.parent) / "junit.xml"
    return _finish(rows, goal_list, args, cases_without_rows(junit, rows))


def run(args, root: Path, session, goal_list: list[goals_mod.Goal]) -> int:
    """Run the suite's perf cases on this session's GPU and render their rows."""
    folder = suite_dir(root, args.suite)
    results = fresh_results_dir(args.results_dir, root, folder.name)
    run_id = new_run_id({})
    cmd = pytest_command(folder.name, results, emulate=args.emulate_sku, matrix=args.matrix, keyword=args.k)
    print(f"gpuhil bench: {session.fingerprint.summary()}")
    print(f"gpuhil bench: {' '.join(cmd)}  (output: {results / 'pytest.log'})", flush=True)
    rc = run_cases(cmd, root, results, run_id, lambda row: print(measured_line(row), flush=True))
    try:
        rows = store.read(results)
    except PerfInputError:
        tail = _last_line(results / "pytest.log")
        raise BenchRefused(f"no perf row in {results} (pytest exit {rc}: {tail}); see {results / 'pytest.log'}") from None
    code = _finish(rows, goal_list, args, cases_without_rows(results / "junit.xml", rows))
    print(f"gpuhil bench: rows in {results} (compare: gpuhil perf compare {results})")
    return 130 if rc == 130 else code


def _finish(rows, goal_list, args, without_rows) -> int:
    text, failing = report(rows, goal_list, peer=args.peer, without_rows=without_rows)
    print(text)
    if not args.gate:
        return 0
    print(f"gate: {'fail (' + ', '.join(f'{n} {v}' for v, n in failing.items()) + ')' if failing else 'pass'}")
    return 1 if failing else 0


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"
