"""`gpuhil run`: the main job. Probe, pick this machine's selection, run pytest, write a report.

Tests always run in pytest-xdist workers (one per GPU, at least one), so a test that crashes or hangs
fails alone (gpuhil.isolation). Nothing reports green without having run. Exit status:
- 0: tests ran and none failed (skips and known-issue xfails are not failures);
- 1: a test failed, errored, crashed or timed out, or no test ran at all;
- 2: the runner is not what it was asked to be: a GPU was expected (`--sku`, `--require-gpu` or
  GPUHIL_REQUIRE_GPU=1) and none was found, or the probed device is not the requested SKU;
- pytest's own code when the harness itself could not run (usage 4, internal error 3).
report.md and junit.xml are written in every case.
"""

from __future__ import annotations

import datetime as dt
import json
import os
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


def pytest_command(sku_id: str | None, results: Path, args) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "suites", f"--junitxml={results / 'junit.xml'}",
           f"--results-dir={results}", "-p", "no:cacheprovider", "-q"]
    if sku_id:
        cmd += ["-m", sku_id]  # the SKU's selection, turned into this marker by the plugin
    if args.tier:
        cmd += ["--tier", args.tier]
    if args.emulate_sku:
        cmd += ["--emulate-sku", args.emulate_sku]
    if args.perf:
        cmd.append("--perf")
    if getattr(args, "matrix", None):
        cmd += ["--matrix", str(args.matrix)]
    # One worker per GPU, and one even without: the controller must outlive a test that kills its process.
    cmd += ["-n", str(max(1, len(visible_gpus(os.environ)))), f"--max-worker-restart={MAX_WORKER_RESTARTS}"]
    extra = [a for a in (args.pytest_args or []) if a != "--"]
    return cmd + extra


def runner_problem(requested: str | None, require_gpu: bool, session) -> str | None:
    """Why this machine is not the runner it was asked to be, or None."""
    fp = session.fingerprint
    if (requested or require_gpu) and not fp.gpu_present:
        why = f"--sku {requested}" if requested else f"--require-gpu / {REQUIRE_GPU_ENV}=1"
        return f"this runner expects a GPU ({why}) but the probe found none: {fp.errors.get('gpu', 'no device')}"
    if requested and (session.sku is None or session.sku.id != requested):
        found = session.sku.id if session.sku else "no catalog row"
        return (f"this runner was asked to be {requested} but the probed device is {fp.name} "
                f"(PCI {fp.pci_device_id}, cc {fp.cc}): {found}")
    return None


def run_main_job(args) -> int:
    try:
        root = repo_root()
        mx = matrix_mod.load(args.matrix or matrix_mod.default_path())
        for flag, value in (("--sku", args.sku), ("--emulate-sku", args.emulate_sku)):
            ids.option_value(value, flag)
    except (matrix_mod.MatrixError, ids.InvalidValue) as exc:
        print(f"gpuhil run: {exc}", file=sys.stderr)
        return 2
    if args.sku is not None and args.sku not in mx.skus:
        print(f"gpuhil run: unknown SKU '{args.sku}' (catalog {mx.path} has: {', '.join(mx.skus)})", file=sys.stderr)
        return 2
    session = session_mod.build(mx)
    fp, sku = session.fingerprint, session.sku
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    label = sku.id if sku else ("cpu" if not fp.gpu_present else "unknown")
    results = Path(args.results_dir or root / "results" / f"{stamp}-{label}")
    results.mkdir(parents=True, exist_ok=True)
    (results / "probe.json").write_text(json.dumps(fp.to_dict(), indent=2, default=str))
    facts = [f"device: {fp.summary()}", f"fingerprint: {fp.fingerprint_id}",
             f"software: torch {fp.torch}, cutlass-dsl {fp.cutlass_dsl} (payload CUDA {fp.dsl_cuda}), "
             f"driver {fp.driver_version}, git {fp.git_sha}",
             f"catalog SKU: {sku.id if sku else 'none'}"]
    problem = runner_problem(args.sku, args.require_gpu or os.environ.get(REQUIRE_GPU_ENV) == "1", session)
    if problem:
        _write(results, run_report.render(run_report.RunSummary(), title=f"gpuhil run {stamp}", facts=facts,
                                          verdict=f"RUNNER ERROR: {problem}", matrix=mx))
        print(f"gpuhil run: {problem}", file=sys.stderr)
        return 2
    sku_id = sku.id if sku else None  # every catalog SKU has a selection: the defaults and its deltas
    cmd = pytest_command(sku_id, results, args)
    print(f"gpuhil run: {fp.summary()}")
    print(f"gpuhil run: selection: {sku_id or 'default tier of every suite (no catalog selection for this machine)'}")
    print("gpuhil run: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    summary = run_report.summarize(results)
    verdict, code = _verdict(rc, summary)
    facts += [f"selection: {sku_id or 'default'}", f"command: `{' '.join(cmd)}`"]
    perf_lines = _perf_lines(results) if args.perf else []
    text = run_report.render(summary, title=f"gpuhil run {stamp}", facts=facts, verdict=verdict, matrix=mx,
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
