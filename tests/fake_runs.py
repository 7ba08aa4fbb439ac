"""Fake `gpuhil run` results folders, and a small fleet history made from them through the real
`gpuhil.history.add` path: several SKUs, an emulated machine, a coverage-only SKU, a torch upgrade
(epoch change) on the H100 and a planted +20 % regression of the canary provider near its end."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from gpuhil.perf import store

SOFTWARE = {"driver_version": "580.159.04", "cuda_runtime": "13.0", "torch": "2.11.0", "cutlass_dsl": "4.8.1",
            "dsl_cuda": "13.4"}
GPU_NAMES = {"h100": "NVIDIA H100 80GB HBM3", "h200": "NVIDIA H200", "gb10": "NVIDIA GB10"}
START = dt.datetime(2026, 10, 1, 3, 0, tzinfo=dt.timezone.utc)


def run_id(night: int, minutes: int = 0) -> str:
    """The perf run id of the given night's run (started minutes after 03:00)."""
    return (START + dt.timedelta(days=night, minutes=minutes)).strftime("%Y%m%dT%H%M%S") + "-4242"


def sha(night: int) -> str:
    return hashlib.sha1(f"commit {night}".encode()).hexdigest()


def probe_doc(sku: str, software: dict, git_sha: str) -> dict:
    fields = {"name": GPU_NAMES[sku], **software}
    return {"gpu_present": True, **fields, "git_sha": git_sha, "cc": "9.0", "sm_count": 132,
            "fingerprint_id": hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]}


def junit_xml(cases: list[tuple[str, str, str, str]], started: dt.datetime) -> str:
    """pytest's junit layout: (classname, name, outcome, reason) per case."""
    body = []
    for classname, name, outcome, reason in cases:
        child = {"passed": "", "failed": f"<failure message={quoteattr(reason)}>trace</failure>",
                 "error": f"<error message={quoteattr(reason)}>trace</error>",
                 "skipped": f"<skipped type=\"pytest.skip\" message={quoteattr(reason)}>f.py:1: x</skipped>",
                 "xfailed": f"<skipped type=\"pytest.xfail\" message={quoteattr(reason)}/>"}[outcome]
        body.append(f"<testcase classname={quoteattr(classname)} name={quoteattr(name)} time=\"0.010\">{child}</testcase>")
    return (f"<?xml version=\"1.0\" encoding=\"utf-8\"?><testsuites name=\"pytest tests\"><testsuite name=\"pytest\" "
            f"timestamp=\"{started.isoformat()}\" hostname=\"runner\">{''.join(body)}</testsuite></testsuites>")


def perf_row(run_id: str, started: dt.datetime, sku: str, probe: dict, emulated: str | None, suite: str, case_id: str,
             provider: str, median: float, *, throttled: bool = False, nbytes: int = 1 << 24) -> dict:
    return {"run_id": run_id, "timestamp": started.isoformat(timespec="seconds"), "git_sha": probe["git_sha"],
            "sku": sku, "fingerprint_id": probe["fingerprint_id"], "gpu_name": probe["name"], "cc": "9.0",
            "sm_count": 132, "driver": probe["driver_version"], "cuda": probe["cuda_runtime"], "torch": probe["torch"],
            "cutlass_dsl": probe["cutlass_dsl"], "dsl_cuda": probe["dsl_cuda"], "emulated_sku": emulated,
            "suite": suite, "case_id": case_id, "provider": provider, "median_us": median, "p25_us": median * 0.99,
            "p75_us": median * 1.01, "min_us": median * 0.98, "n_samples": 50, "stdrel": 0.004, "timer_mode": "graph",
            "bytes": nbytes, "gbps": nbytes / median / 1e3, "ceiling": "device copy", "ceiling_value": 3000.0,
            "pct_of_ceiling": 100 * nbytes / median / 1e3 / 3000.0, "sm_clock_mhz": 1410 if throttled else 1980,
            "throttled": throttled, "throttle_reasons": "sw_power_cap" if throttled else "",
            "status": "throttled" if throttled else "ok"}


def run_record(run_id: str, *, sku: str | None, started: dt.datetime, emulated: str | None = None,
               verdict: str = "PASS", detail: str = "", junit: bool = True) -> dict:
    """run.json as `gpuhil run` writes it beside report.md once it has judged the run."""
    codes = {"PASS": 0, "FAIL": 1, "HARNESS ERROR": 3, "RUNNER ERROR": 2, "INTERRUPTED": 130}
    return {"schema": 1, "run_id": run_id, "verdict": verdict, "detail": detail, "exit_code": codes[verdict],
            "sku": sku, "emulated_sku": emulated, "target_sku": sku, "started": started.isoformat(),
            "finished": (started + dt.timedelta(minutes=20)).isoformat(), "junit": junit}


def results_dir(root: Path, *, sku: str, started: dt.datetime, git_sha: str, software: dict = SOFTWARE,
                emulated: str | None = None, rows: list[tuple] = (), cases: list[tuple] = (), perf: bool = True,
                throttled: set[str] = frozenset(), write_rows: bool = False, verdict: str | None = None) -> Path:
    """A finished run's folder; rows are (suite, case_id, provider, median_us[, bytes]), as the perf store
    merges them (write_rows=True: row by row through store.write_row and store.merge, as a session does).
    The verdict in run.json defaults to what the cases say: FAIL when one failed or errored."""
    stamp = started.strftime("%Y%m%d-%H%M%S")
    d = Path(root) / f"{stamp}-{sku}{'-as-' + emulated if emulated else ''}"
    d.mkdir(parents=True)
    probe = probe_doc(sku, software, git_sha)
    (d / "probe.json").write_text(json.dumps(probe))
    (d / "junit.xml").write_text(junit_xml(list(cases), started))
    command = "python -m pytest suites" + (f" --emulate-sku {emulated}" if emulated else "") + (" --perf" if perf else "")
    verdict = verdict or ("FAIL" if any(c[2] in ("failed", "error") for c in cases) else "PASS")
    (d / "report.md").write_text(f"# gpuhil run {stamp}\n\n**{verdict}**\n\n- catalog SKU: {sku}\n"
                                 f"- command: `{command}`\n")
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-4242"
    (d / "run.json").write_text(json.dumps(run_record(run_id, sku=sku, started=started, emulated=emulated,
                                                      verdict=verdict)))
    if perf and rows:
        made = [perf_row(run_id, started, sku, probe, emulated, *r[:4], throttled=r[1] in throttled,
                         **({"nbytes": r[4]} if len(r) > 4 else {})) for r in rows]
        if write_rows:
            for row in made:
                store.write_row(d, row)
            store.merge(d, run_id)
        else:  # the merged file only: the store's own frame, as merge writes it (faster for a fleet)
            store._frame(made).to_parquet(d / f"perf-{run_id}.parquet", index=False)
    return d


ARGMAX = "suites/argmax/test_argmax_perf.py::test_argmax_perf"
GEMM = "suites/fp8_grouped_gemm/test_grouped_gemm_perf.py::test_grouped_gemm_perf"
SERIES = [  # (suite, case_id, provider, base median us)
    ("argmax", f"{ARGMAX}[gpuhil-cute-M1-N151936-bf16]", "gpuhil-cute", 4.8),
    ("argmax", f"{ARGMAX}[torch-M1-N151936-bf16]", "torch", 9.5),
    ("argmax", f"{ARGMAX}[gpuhil-cute-M256-N151936-bf16]", "gpuhil-cute", 21.0),
    ("argmax", f"{ARGMAX}[torch-M256-N151936-bf16]", "torch", 40.0),
    ("argmax", f"{ARGMAX}[gpuhil-cute-canary-M1-N151936-bf16]", "gpuhil-cute-canary", 4.9),
    ("fp8_grouped_gemm", f"{GEMM}[gpuhil-cute-wgmma-E8-M4096]", "gpuhil-cute-wgmma", 310.0),
]
CANARY = SERIES[4]
H100_RUNS, EPOCH_RUN, PLANTED_RUN = 36, 16, 32  # torch 2.11 -> 2.12 at run 16; canary +20 % from run 32
CLUSTER_SKIP = "no cluster launch: CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH=0 <probed> & 'emulated'"
XFAIL_REASON = "known issue cutlass-sm12x-tensor-scaled-fp8-grouped-gemm: <https://github.com/NVIDIA/cutlass/issues/3263>"
FAIL_REASON = "AssertionError: index mismatch at row 3 <b>bold?</b>"


def cases_for(machine: str, *, failing: bool = False) -> list[tuple[str, str, str, str]]:
    hopper = machine != "gb10"
    no_cluster = machine.endswith("-as-h20") or machine == "gb10"
    return [
        ("suites.argmax.test_argmax", "test_argmax_correct[M1-N151936-bf16]", "failed" if failing else "passed",
         FAIL_REASON if failing else ""),
        ("suites.argmax.test_argmax", "test_argmax_cluster[cluster2]", "skipped" if no_cluster else "passed",
         CLUSTER_SKIP if no_cluster else ""),
        ("suites.fp8_grouped_gemm.test_grouped_gemm", "test_wgmma[E8-bf16]", "passed" if hopper else "skipped",
         "" if hopper else "needs wgmma (sm_90a); device is sm_121"),
        ("suites.fp8_grouped_gemm.test_grouped_gemm", "test_cutlass_provider[sm12x]",
         "skipped" if hopper else "xfailed", "arch family 9 is not 12" if hopper else XFAIL_REASON),
        ("suites.gates.test_gates", "test_decision_table", "passed", ""),
    ]


def fleet(root: Path) -> list[Path]:
    """Results folders of the fixture fleet (deterministic)."""
    rng = np.random.default_rng(20261001)
    def noise():
        return math.exp(rng.normal(0, 0.015))  # 1.5 % run-to-run
    dirs = []
    for i in range(H100_RUNS):  # h100: the epoch change and the planted regression
        software = {**SOFTWARE, "torch": "2.12.0"} if i >= EPOCH_RUN else SOFTWARE
        rows = []
        for suite, case, provider, base in SERIES:
            m = base * (1.10 if i >= EPOCH_RUN else 1.0) * (1.20 if (suite, case, provider, base) == CANARY
                                                            and i >= PLANTED_RUN else 1.0)
            rows.append((suite, case, provider, m * noise(), int(base * 2400e3)))
        dirs.append(results_dir(root, sku="h100", started=START + dt.timedelta(days=i), git_sha=sha(i),
                                software=software, rows=rows, cases=cases_for("h100"),
                                throttled={SERIES[3][1]} if i in (10, 25) else set()))
    for j, i in enumerate(range(H100_RUNS - 10, H100_RUNS)):  # h200: steady; the last run fails a test, drops a series
        rows = [(s, c, p, b * 0.8 * noise(), int(b * 2400e3)) for s, c, p, b in SERIES
                if not (j == 9 and p == "torch" and "M256" in c)]
        dirs.append(results_dir(root, sku="h200", started=START + dt.timedelta(days=i, minutes=5), git_sha=sha(i),
                                rows=rows, cases=cases_for("h200", failing=j == 9)))
    for i in range(H100_RUNS - 6, H100_RUNS):  # the H100 within H20 limits: its own series
        rows = [(s, c, p, b * 1.3 * noise(), int(b * 2400e3)) for s, c, p, b in SERIES[:2]]
        dirs.append(results_dir(root, sku="h100", emulated="h20", started=START + dt.timedelta(days=i, hours=1),
                                git_sha=sha(i), software={**SOFTWARE, "torch": "2.12.0"}, rows=rows,
                                cases=cases_for("h100-as-h20")))
    for i in range(H100_RUNS - 3, H100_RUNS):  # gb10: a coverage-only runner (no --perf)
        dirs.append(results_dir(root, sku="gb10", started=START + dt.timedelta(days=i, minutes=10), git_sha=sha(i),
                                cases=cases_for("gb10"), perf=False))
    return dirs
