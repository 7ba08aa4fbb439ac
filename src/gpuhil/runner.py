"""`gpuhil run`: the main job. Probe, pick this machine's selection, run pytest, write a report.

Exit status: 0 when nothing failed (skips and known-issue xfails are not failures), 1 when a test
failed or errored, and pytest's own code when the harness itself could not run (usage, internal error).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from . import session as session_mod
from .catalog import matrix as matrix_mod
from .device.gpu_pinning import visible_gpus


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
    n = len(visible_gpus(os.environ))
    if n > 1:
        cmd += ["-n", str(n)]  # one xdist worker per GPU; the plugin pins each
    extra = [a for a in (args.pytest_args or []) if a != "--"]
    return cmd + extra


def summarize(junit: Path) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    if not junit.exists():
        return counts
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in kinds:
            counts["failed"] += 1
        elif "error" in kinds:
            counts["errors"] += 1
        elif skipped is not None:
            key = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
            counts[key] += 1
        else:
            counts["passed"] += 1
    return counts


def run_main_job(args) -> int:
    root = repo_root()
    try:
        mx = matrix_mod.load(args.matrix or matrix_mod.default_path())
    except matrix_mod.MatrixError as exc:
        print(exc, file=sys.stderr)
        return 2
    session = session_mod.build(mx)
    fp, sku = session.fingerprint, session.sku
    sku_id = sku.id if sku and sku.id in mx.selections else None
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = Path(args.results_dir or root / "results" / f"{stamp}-{sku.id if sku else ('cpu' if not fp.gpu_present else 'unknown')}")
    results.mkdir(parents=True, exist_ok=True)
    (results / "probe.json").write_text(json.dumps(fp.to_dict(), indent=2, default=str))
    cmd = pytest_command(sku_id, results, args)
    print(f"gpuhil run: {fp.summary()}")
    print(f"gpuhil run: selection: {sku_id or 'default tier of every suite (no catalog selection for this machine)'}")
    print("gpuhil run: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    counts = summarize(results / "junit.xml")
    verdict = "PASS" if rc in (0, 5) else ("FAIL" if rc == 1 else f"HARNESS ERROR (pytest exit {rc})")
    report = [
        f"# gpuhil run {stamp}", "",
        f"- device: {fp.summary()}", f"- fingerprint: {fp.fingerprint_id}",
        f"- catalog SKU: {sku.id if sku else 'none'}", f"- selection: {sku_id or 'default'}",
        f"- command: `{' '.join(cmd)}`", f"- result: {verdict} ({', '.join(f'{v} {k}' for k, v in counts.items())})",
    ]
    (results / "report.md").write_text("\n".join(report) + "\n")
    print(f"gpuhil run: {verdict}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"gpuhil run: report {results / 'report.md'}, junit {results / 'junit.xml'}")
    if rc == 5:
        print("gpuhil run: no test applied to this machine (pytest exit 5): nothing failed")
        return 0
    return rc
