"""`gpuhil run`: the main job. Build the session once, run its selection in pytest, write a report.

The session (probe, catalog row, emulation or target: gpuhil.session.build) is built here, once, and
refused here: an unknown SKU id, contradicting options, emulation without a GPU, a device that is not
the `--expect-sku` SKU. It is written to the results folder (session.json) and handed to pytest as
`--session-file`, with the selection and tier as explicit options; the pytest controller and its
xdist workers load it instead of probing again (each worker still pins its own GPU first).

The selection is the catalog's list for the SKU the session acts as: the emulated or target SKU,
else the device's own. The results folder is labelled the same way: `<stamp>-<device sku>`,
`<stamp>-<device sku>-as-<emulated sku>` (the machine label perf baselines and the history use) or
`<stamp>-<device sku>-target-<target sku>`; `cpu` without a GPU, `unknown` for an uncatalogued one.

Tests always run in pytest-xdist workers (one per GPU, at least one), so a test that crashes or hangs
fails alone (gpuhil.isolation). Nothing reports green without having run. Exit status:
- 0: tests ran and none failed (skips and known-issue xfails are not failures);
- 1: a test failed, errored, crashed or timed out, or no test ran at all;
- 2: the session was refused (see above; also a GPU required by `--require-gpu` or
  GPUHIL_REQUIRE_GPU and none found);
- pytest's own code when the harness itself could not run (usage 4, internal error 3).
report.md and junit.xml are written in every case.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from . import ids, session as session_mod
from .catalog import matrix as matrix_mod
from .device.gpu_pinning import visible_gpus
from .report import run_report

REQUIRE_GPU_ENV = "GPUHIL_REQUIRE_GPU"
MAX_WORKER_RESTARTS = 1000  # every crash costs one test; never give up the rest of the run


def repo_root() -> Path:
    mx = matrix_mod.default_path()
    if not (mx.parent / "suites").is_dir():
        raise SystemExit(f"gpuhil run: no suites/ beside {mx}; run it from a gpuhil checkout")
    return mx.parent


def pytest_command(session_file: Path, selection: str | None, tier: str, results: Path, args) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "suites", f"--session-file={session_file}",
           f"--junitxml={results / 'junit.xml'}", f"--results-dir={results}", "-p", "no:cacheprovider", "-q"]
    if selection:
        cmd.append(f"--selection={selection}")
    cmd.append(f"--tier={tier}")
    if args.perf:
        cmd.append("--perf")
    # One worker per GPU, and one even without: the controller must outlive a test that kills its process.
    cmd += ["-n", str(max(1, len(visible_gpus(os.environ)))), f"--max-worker-restart={MAX_WORKER_RESTARTS}"]
    extra = [a for a in (args.pytest_args or []) if a != "--"]
    return cmd + extra


def folder_label(session: session_mod.Session) -> str:
    fp, sku = session.fingerprint, session.sku
    label = sku.id if sku else ("cpu" if not fp.gpu_present else "unknown")
    if session.caps.emulated_sku:
        return f"{label}-as-{session.caps.emulated_sku}"
    if session.target_sku:
        return f"{label}-target-{session.target_sku.id}"
    return label


def run_main_job(args) -> int:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    invocation = "gpuhil " + shlex.join(getattr(args, "argv", None) or ["run"])
    try:
        root = repo_root()
        mx = matrix_mod.load(args.matrix or matrix_mod.default_path())
    except (matrix_mod.MatrixError, ids.InvalidValue) as exc:
        print(f"gpuhil run: {exc}", file=sys.stderr)
        return 2
    require_gpu = "--require-gpu" if args.require_gpu else (
        f"{REQUIRE_GPU_ENV}=1" if os.environ.get(REQUIRE_GPU_ENV) == "1" else None)
    try:
        session = session_mod.build(mx, emulate=args.emulate_sku, target=args.target_sku, expect=args.expect_sku,
                                    require_gpu=require_gpu)
    except session_mod.SETUP_ERRORS as exc:
        results = Path(args.results_dir or root / "results" / f"{stamp}-refused")
        results.mkdir(parents=True, exist_ok=True)
        _write(results, run_report.render(run_report.RunSummary(), title=f"gpuhil run {stamp}",
                                          lines=[f"command: {run_report.code(invocation)}"],
                                          verdict=f"RUNNER ERROR: {exc}", matrix=mx))
        print(f"gpuhil run: {exc}", file=sys.stderr)
        return 2
    fp = session.fingerprint
    selection = session.selection_id
    tier = args.tier or (mx.selections[selection].tier if selection else "default")
    results = Path(args.results_dir or root / "results" / f"{stamp}-{folder_label(session)}").resolve()
    results.mkdir(parents=True, exist_ok=True)
    (results / "probe.json").write_text(json.dumps(fp.to_dict(), indent=2, default=str))
    session_file = results / "session.json"
    session_file.write_text(json.dumps({**session.to_dict(), "selection": selection, "tier": tier}, indent=2))
    cmd = pytest_command(session_file, selection, tier, results, args)
    for line in session.header_lines(prefix="gpuhil run: "):
        print(line)
    print(f"gpuhil run: selection: {selection or 'every suite (the catalog has no selection for this machine)'}, "
          f"tier {tier}")
    print("gpuhil run: " + shlex.join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    summary = run_report.summarize(results)
    verdict, code = _verdict(rc, summary)
    lines = session.header_lines(prefix="") + [
        f"selection: {selection or 'none (every suite)'}, tier {tier}",
        f"command: {run_report.code(invocation)}", f"pytest: {run_report.code(shlex.join(cmd))}"]
    perf_lines = _perf_lines(results) if args.perf else []
    text = run_report.render(summary, title=f"gpuhil run {stamp}", lines=lines, verdict=verdict, matrix=mx,
                             perf_lines=perf_lines)
    _write(results, text)
    print(f"gpuhil run: {verdict}")
    print(f"gpuhil run: report {results / 'report.md'}, junit {results / 'junit.xml'}")
    return code


def _verdict(rc: int, s: run_report.RunSummary) -> tuple[str, int]:
    counts = ", ".join(f"{v} {k}" for k, v in s.totals.items())
    if rc not in (0, 1, 5):
        return f"HARNESS ERROR (pytest exit {rc}): {counts}", rc
    if s.ran == 0:
        return f"FAIL: no test ran ({counts}): nothing was verified on this runner", 1
    if s.crashes:
        return f"FAIL: {len(s.crashes)} test(s) crashed or timed out ({counts})", 1
    if rc == 1 or s.totals["failed"] or s.totals["errors"] or s.totals["xpassed"]:
        return f"FAIL ({counts})", 1
    return f"PASS ({counts})", 0


def _perf_lines(results: Path) -> list[str]:
    if not list(results.glob("perf-*.parquet")):
        return ["No perf rows were written (no perf case ran)."]
    from .perf.cli import perf_summary

    return perf_summary(results)


def _write(results: Path, text: str) -> None:
    (results / "report.md").write_text(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as f:
            f.write(text)
