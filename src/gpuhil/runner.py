"""`gpuhil run`: the main job. Build the session once, run its selection in pytest, record the run.

The session (probe, catalog row, emulation or target: gpuhil.session.build) is built here, once, and
refused here: an unknown SKU id, contradicting options, emulation without a GPU, a device that is not
the `--expect-sku` SKU, no GPU when one is required. It is written to the results folder
(session.json) and handed to pytest as `--session-file`, with the selection and tier as explicit
options; the pytest controller and its xdist workers load it instead of probing again (each worker
still pins its own GPU first).

The selection is the catalog's list for the SKU the session acts as: the emulated or target SKU,
else the device's own. The results folder is labelled the same way: `<stamp>-<device sku>`,
`<stamp>-<device sku>-as-<emulated sku>` (the machine label perf baselines and the history use) or
`<stamp>-<device sku>-target-<target sku>`; `cpu` without a GPU, `unknown` for an uncatalogued one.

Nothing is written until everything that can refuse the run has been checked; a results folder is new
or empty (one folder, one run), and every file is written whole (temp + rename). Tests always run in
pytest-xdist workers (at least one), so a test that crashes or hangs fails alone (gpuhil.isolation);
pytest runs as its own process group, so SIGINT/SIGTERM reach it and its workers and none outlives the
run (gpuhil.supervise).

How many workers: gpuhil.workers, the least of what the cores, the host's memory and the GPUs (with
their probed memory) allow, never fewer than one per GPU; `--workers N` overrides it, and `-n` or
`--dist` after `--` is refused. Several workers share a GPU, each pinned to one before CUDA starts
(gpuhil.device.gpu_pinning), and torch's CPU threads are split between them (OMP_NUM_THREADS, unless set).

Perf cases run alone on their GPU. With --perf a run is two pytest sessions, one after the other
(gpuhil.run_phases): first the tests that are not perf cases, in those workers; then the perf cases
(`--perf-only`), one worker per GPU. When the second starts every process of the first has ended (its
process group is killed), and the GPU allocator gives each of its workers a GPU of its own, so no other
test of the run is on a GPU while a case is timed there. One session with an xdist scheduler that holds
the perf cases back was the alternative: it would have to know that every other test had finished
(xdist sends tests ahead to its workers), then feed perf cases to one worker per GPU while the rest
idle, and keep that while crashed workers are replaced mid-run, all through xdist's scheduler
interface, which is internal; `--dist loadgroup` would put the perf cases on one worker but leave the
others running beside it. Two sessions cost a second start (collection, workers importing torch: a few
seconds) and give exclusivity by construction. Each writes its own junit file, merged into junit.xml
(one <testsuite> per session); each keeps its workers' crash notes (notes/, notes-perf/) and
crashes.json collects both; after a stop signal, or a session pytest itself could not run, the
second never starts. The report's time section says how long each session took and where the
tests' time went (compile, setup, run, teardown: gpuhil.phase_times).

The runner's health is checked before the tests and after them (gpuhil.health, docs/HEALTH.md):
NVML's memory, clock and temperature state and two short kernels, in a child process (`gpuhil health
--json`) so the runner holds no CUDA context beside its tests. Unhealthy before: no test runs (so no
perf row is written), the verdict is RUNNER UNHEALTHY. Unhealthy after: the verdict stands, but the
report says RESULTS SUSPECT and run.json's `suspect` is true. Without a device in the session nothing
is checked and the report says so; `--no-health` skips the gate (debugging).

A test that failed is run again alone, in a fresh pytest session and worker, up to `--reruns N` times
(default 2), and once more after the test that preceded it in its worker when it passes alone
(gpuhil.reruns): FAILED every time, FLAKY, or ORDER-DEPENDENT. Each session's failures are rerun once
it has ended, before the junit files are merged; each rerun keeps its files under reruns/ (its own
junit, notes, crashes.json and output), so nothing of it counts twice. A stopped run, or a session
pytest itself could not run, is not rerun.

The verdict, the exit status and run.json:
- PASS, 0: tests ran and none failed (skips and known-issue xfails are not failures; a FLAKY test,
  one that passed when run again, is reported but does not fail the run unless `--flaky-fails`);
- FAIL, 1: a test failed, errored, crashed or timed out (and did not pass when run again: FAILED or
  ORDER-DEPENDENT), or no test ran at all;
- RUNNER ERROR, 2: the run was refused (see above), one line on stderr; report.md says why when a
  results folder could be made;
- RUNNER UNHEALTHY, 2: the health gate found a field unhealthy before the tests: `<gpu>.<field> = <value>`;
- HARNESS ERROR, pytest's own code: the harness itself could not run (usage 4, internal error 3);
- INTERRUPTED, 130 (SIGINT) or 143 (SIGTERM): report.md and junit.xml are still written.

Third-party kernel libraries compile at run time into caches of their own; the runner points each
(gpuhil.thirdparty.cache_env) under one folder, GPUHIL_CACHE_DIR or the user's cache directory, so a
runner keeps them between runs and writes them nowhere else. A variable already set is left alone.
gpuhil's own kernels go to <that folder>/cute, passed to pytest as --compile-cache
(gpuhil.kernels.compile_cache): every worker and every run compiles a kernel config once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shlex
import signal
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import quoteattr

from . import atomic, ids, reruns, run_phases, run_record, session as session_mod, thirdparty, workers
from .catalog import matrix as matrix_mod
from .device.gpu_pinning import visible_gpus
from .device.probe import DeviceFingerprint, probe
from .health import gate as health_gate
from .health.checks import HealthReport
from .health.record import NAME as HEALTH_FILE, VERDICT as UNHEALTHY_VERDICT, RunHealth
from .kernels.compile_cache import location as compile_cache_location
from .perf.recorder import RUN_ID_ENV, new_run_id
from .report import run_report
from .supervise import Ended, Interrupted, Supervisor, silence_stdout

REQUIRE_GPU_ENV = "GPUHIL_REQUIRE_GPU"
CACHE_DIR_ENV = "GPUHIL_CACHE_DIR"  # where the kernel libraries' compile caches go
# pytest options the runner sets itself: given again after `--` they would take its place (a second
# --junitxml leaves the report without its junit.xml), so they are refused with what to use instead.
RUNNER_OPTIONS = {
    "--junitxml": "the runner writes RESULTS/junit.xml and builds the report from it",
    "--junit-xml": "the runner writes RESULTS/junit.xml and builds the report from it",
    "--results-dir": "use gpuhil run --results-dir", "--session-file": "the runner writes it",
    "--selection": "the runner passes the session's selection", "--tier": "use gpuhil run --tier",
    "--emulate-sku": "use gpuhil run --emulate-sku", "--target-sku": "use gpuhil run --target-sku",
    "--matrix": "use gpuhil --matrix", "--perf": "use gpuhil run --perf",
    "--compile-cache": "set GPUHIL_CACHE_DIR (the cache goes to its cute/ folder)",
    "--perf-only": "use gpuhil run --perf: its perf cases run after the other tests, one worker per GPU",
    # xdist: the runner starts the workers (how many: gpuhil.workers) and restarts crashed ones.
    "-n": "use gpuhil run --workers N", "--numprocesses": "use gpuhil run --workers N",
    "--maxprocesses": "use gpuhil run --workers N", "--tx": "use gpuhil run --workers N",
    "--dist": "the runner load-balances the tests over its workers; use gpuhil run --workers N",
    "-d": "the runner load-balances the tests over its workers; use gpuhil run --workers N",
    "--max-worker-restart": "the runner replaces every crashed worker, so each crash costs one test",
    "--run-nodeids": "the runner sets it for its reruns of failed tests; use gpuhil run --reruns N",
}


class Refused(Exception):
    """The run cannot start: one line, exit 2."""


@dataclass(frozen=True)
class Verdict:
    kind: str  # PASS, FAIL, HARNESS ERROR, RUNNER ERROR, RUNNER UNHEALTHY, INTERRUPTED
    detail: str
    exit_code: int

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def default_cache_root(environ) -> Path:
    """Where compile caches live unless GPUHIL_CACHE_DIR says: the user's cache directory."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuhil"


def checkout_root(start: Path) -> Path:
    """The gpuhil checkout the run's suites come from: the nearest folder at or above `start` that
    holds suites/ and conftest.py (the catalog may live elsewhere: --matrix, $GPUHIL_MATRIX)."""
    for d in (start, *start.parents):
        if (d / "suites").is_dir() and (d / "conftest.py").is_file():
            return d
    raise Refused(f"no gpuhil checkout (a folder holding suites/ and conftest.py) at or above {start}: "
                  "run it from a checkout")


def check_reruns(value: str | None) -> int:
    """--reruns: a whole number, 0 or more (0: no reruns)."""
    if value is None:
        return reruns.DEFAULT
    if not re.fullmatch(r"[0-9]+", value.strip()):
        raise Refused(f"--reruns {value!r}: a whole number of reruns, 0 or more")
    return int(value)


def check_pytest_args(args: list[str]) -> list[str]:
    extra = [a for a in args if a != "--"]
    for a in extra:
        for opt, instead in RUNNER_OPTIONS.items():
            if a == opt or a.startswith(opt + "=") or (opt == "-n" and a.startswith("-n") and not a.startswith("--")):
                raise Refused(f"pytest option {opt} after --: the runner sets it itself ({instead})")
    return extra


def check_results_dir(path: Path) -> None:
    """A results folder holds one run: new, or empty. Checked before anything is written."""
    if path.exists() and not path.is_dir():
        raise Refused(f"--results-dir {path}: is a file, not a folder")
    if path.is_dir():
        held = sorted(p.name for p in path.iterdir())
        if held:
            raise Refused(f"--results-dir {path}: not empty (holds {', '.join(held[:3])}"
                          f"{', ...' if len(held) > 3 else ''}): a results folder holds one run, give a new one")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise Refused(f"--results-dir {path}: {parent} is a file, not a folder")
            break


def make_results_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Refused(f"results folder {path}: cannot create it ({exc.strerror or exc})") from None
    if any(path.iterdir()):  # filled since it was checked: another run took it
        raise Refused(f"results folder {path}: another run wrote into it first")
    if not os.access(path, os.W_OK | os.X_OK):
        raise Refused(f"results folder {path}: not writable")


def device_label(fp, sku) -> str:
    return sku.id if sku else ("cpu" if not fp.gpu_present else "unknown")


def folder_label(session: session_mod.Session) -> str:
    label = device_label(session.fingerprint, session.sku)
    if session.caps.emulated_sku:
        return f"{label}-as-{session.caps.emulated_sku}"
    if session.target_sku:
        return f"{label}-target-{session.target_sku.id}"
    return label


def pytest_command(session_file: Path, selection: str | None, tier: str, results: Path, phase: run_phases.Phase,
                   extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "suites", f"--session-file={session_file}",
           f"--results-dir={results}", "-p", "no:cacheprovider", "-q"]
    if selection:
        cmd.append(f"--selection={selection}")
    cmd.append(f"--tier={tier}")
    if sys.stdout.isatty():  # its output passes through the runner (gpuhil.supervise): keep the colours
        cmd.append("--color=yes")
    return cmd + phase.pytest_options() + extra


def worker_env(environ, cores: int, phase: run_phases.Phase) -> dict[str, str]:
    """torch's CPU threads per worker, unless the environment says (each would start one per core)."""
    if "OMP_NUM_THREADS" in environ:
        return {}
    return {"OMP_NUM_THREADS": str(workers.threads_per_worker(cores, phase.workers))}


HealthCheck = Callable[[str], HealthReport]  # "before" or "after" -> the runner's health then


def default_health_check(session: session_mod.Session, fp: DeviceFingerprint, matrix: Path, mem_bw_gbs: float | None,
                         root: Path) -> HealthCheck:
    """`gpuhil health --json` in a child process (gpuhil.health.gate.ask); without a device in the
    session nothing is checked, and the report says why."""
    if not fp.gpu_present:
        nothing = HealthReport(not_checked=f"no GPU ({fp.errors.get('gpu', 'the probe found none')})")
    elif not session.attached:
        nothing = HealthReport(not_checked="no device in this session (--target-sku)")
    else:
        return lambda when: health_gate.ask(sys.executable, matrix, mem_bw_gbs, root, dict(os.environ))
    return lambda when: nothing


def run_main_job(args, health_check: HealthCheck | None = None) -> int:
    """`health_check`: how the runner's health is asked before and after the tests (default:
    default_health_check; tests hand in their own)."""
    started = _now()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    invocation = "gpuhil " + shlex.join(getattr(args, "argv", None) or ["run"])
    with Supervisor() as supervisor:
        try:
            return _main_job(args, supervisor, started, stamp, invocation, health_check)
        except Refused as exc:
            print(f"gpuhil run: {exc}", file=sys.stderr)
            return 2
        except Interrupted as exc:  # before a results folder was made
            print(f"gpuhil run: interrupted by {exc} before the tests started; nothing was written", file=sys.stderr)
            return 128 + exc.signum


def _main_job(args, supervisor: Supervisor, started: str, stamp: str, invocation: str,
              health_check: HealthCheck | None) -> int:
    # Everything that can refuse the run, before anything is written.
    root = checkout_root(Path.cwd().resolve())
    extra = check_pytest_args(args.pytest_args or [])
    rerun_limit = check_reruns(getattr(args, "reruns", None))
    flaky_fails = bool(getattr(args, "flaky_fails", False))
    try:
        require_gpu = "--require-gpu" if args.require_gpu else (
            f"{REQUIRE_GPU_ENV}={os.environ[REQUIRE_GPU_ENV]}" if ids.env_flag(REQUIRE_GPU_ENV) else None)
        run_id = ids.env_id(RUN_ID_ENV) or new_run_id()  # pytest inherits it: its perf rows carry it
        mx_path = args.matrix or ids.env_value("GPUHIL_MATRIX") or root / matrix_mod.MATRIX_FILE
        cache_root = Path(ids.env_value(CACHE_DIR_ENV) or default_cache_root(os.environ)).resolve()
    except ids.InvalidValue as exc:
        raise Refused(str(exc)) from None
    try:
        mx = matrix_mod.load(mx_path, suites_dir=root / "suites")
    except matrix_mod.MatrixError as exc:
        raise Refused(str(exc).replace("\n", "; ")) from None
    explicit = Path(args.results_dir).resolve() if args.results_dir else None
    if explicit is not None:
        check_results_dir(explicit)
    fp = probe()
    try:
        session = session_mod.build(mx, emulate=args.emulate_sku, target=args.target_sku, expect=args.expect_sku,
                                    require_gpu=require_gpu, fingerprint=fp)
    except session_mod.SETUP_ERRORS as exc:
        session, refusal = None, str(exc)
    device_row = session.sku if session else session_mod.catalog_row(mx, fp)
    label = folder_label(session) if session else device_label(fp, device_row)
    results = explicit or root / "results" / f"{stamp}-{label}"
    check_results_dir(results)
    make_results_dir(results)

    # From here on the run is recorded, whatever happens: a stop signal now ends it as INTERRUPTED.
    supervisor.defer()
    atomic.write_text(results / "probe.json", json.dumps(fp.to_dict(), indent=2, default=str))
    if session is None:
        record = _Record(results, run_id, started, stamp, mx, device_row, args.emulate_sku,
                         args.target_sku, [f"command: {run_report.code(invocation)}"])
        print(f"gpuhil run: {refusal}", file=sys.stderr)
        return record.finish(Verdict("RUNNER ERROR", refusal, 2), run_report.RunSummary())
    selection = session.selection_id
    tier = args.tier or (mx.selections[selection].tier if selection else "default")
    session_file = results / "session.json"
    atomic.write_text(session_file, json.dumps({**session.to_dict(), "selection": selection, "tier": tier}, indent=2))
    gpus = visible_gpus(os.environ)
    host = workers.read_host()
    tests = workers.count(host, (len(gpus) or 1) if session.attached else 0,
                          fp.mem_bytes if session.attached else None, override=args.workers)
    phases = run_phases.plan(results, tests, len(gpus), args.perf)
    compile_cache = f"--compile-cache={compile_cache_location(cache_root)}"
    cmds = [pytest_command(session_file, selection, tier, results, phase, [compile_cache, *extra]) for phase in phases]
    caches = thirdparty.cache_env(cache_root, os.environ)
    facts = (f"selection {selection or 'none (every suite)'}, tier {tier}, run id {run_id}, "
             f"compile caches (gpuhil's kernels, the libraries') under {cache_root}")
    workers_said = [f"workers for {phase.name}: {phase.why}" for phase in phases]
    commands = [("pytest" if i == 0 else f"pytest (then its {phase.name} cases)", shlex.join(cmd))
                for i, (phase, cmd) in enumerate(zip(phases, cmds))]
    record = _Record(results, run_id, started, stamp, mx, device_row, session.caps.emulated_sku,
                     session.target_sku.id if session.target_sku else None,
                     session.header_lines(prefix="") + [facts, f"command: {run_report.code(invocation)}", *workers_said]
                     + [f"{label}: {run_report.code(cmd)}" for label, cmd in commands])
    _say(*session.header_lines(prefix="gpuhil run: "), f"gpuhil run: {facts}",
         *(f"gpuhil run: {line}" for line in workers_said), *(f"gpuhil run: {cmd}" for _, cmd in commands))
    # The health gate (docs/HEALTH.md): a runner unhealthy before runs no test; unhealthy after, its results are suspect.
    if args.no_health:
        skipped = HealthReport(not_checked="--no-health")
        health_check = lambda when: skipped  # noqa: E731
    elif health_check is None:
        health_check = default_health_check(session, fp, mx.path, device_row.mem_bw_gbs if device_row else None, root)
    record.health.before = health_check("before")
    _say(f"gpuhil run: runner health before the tests: {record.health.before.summary()}")
    if not record.health.before.healthy:
        return record.finish(Verdict(UNHEALTHY_VERDICT, record.health.before.summary(), 2), run_report.RunSummary())
    sessions, took = [], []
    for phase, cmd in zip(phases, cmds):
        began = time.monotonic()
        sessions.append(supervisor.run(cmd, root, env={**os.environ, **caches, **worker_env(os.environ, host.cores, phase)}))
        took.append(f"{phase.name}: {time.monotonic() - began:.1f} s in {phase.workers} "
                    f"worker{'s' if phase.workers != 1 else ''}")
        if sessions[-1].signum is not None or sessions[-1].returncode not in run_phases.PYTEST_USAGE_OK:
            break  # stopped, or pytest itself could not run: the next session would not either
        launch = _rerun_launcher(supervisor, root, results, phase, lambda folder, ph, listed: pytest_command(
            session_file, selection, tier, folder, ph, [compile_cache, *extra, f"--run-nodeids={listed}"]),
            {**os.environ, **caches, **worker_env(os.environ, host.cores, phase)})
        began = time.monotonic()
        try:
            found = reruns.rerun_session(phase.junit, results / phase.notes, rerun_limit, launch)
        except (ET.ParseError, OSError):  # an unreadable junit file: the harness error below names it
            found = reruns.Outcome()
        record.lines += [f"reruns of {phase.name}: {note}" for note in found.notes]
        if found.reruns:
            took.append(f"reruns of {phase.name}: {time.monotonic() - began:.1f} s, {len(found.reruns)} "
                        f"failed test{'s' if len(found.reruns) != 1 else ''} run again")
            _say(*(f"gpuhil run: rerun {r.verdict}: {r.nodeid}: {', '.join(map(str, r.attempts))}" for r in found.reruns))
        if found.stopped is not None:
            sessions.append(Ended(0, found.stopped, ()))
            break
    ended = run_phases.combine(sessions)
    if ended.signum is None:  # after a stop signal the run ends at once, as asked
        record.health.after = health_check("after")
        _say(f"gpuhil run: runner health after the tests: {record.health.after.summary()}")
    try:
        run_phases.merge_junit(phases, results / run_phases.JUNIT)
        summary = run_report.summarize(results)
    except (ET.ParseError, ValueError, OSError) as exc:  # a file pytest or a worker left half written
        detail = f"pytest exit {ended.returncode}, its results are unreadable ({exc})".splitlines()[0]
        return record.finish(Verdict("HARNESS ERROR", detail, 3), run_report.RunSummary())
    verdict = _verdict(ended, summary, session.attached, flaky_fails)
    record.reruns = {"limit": rerun_limit, "flaky_fails": flaky_fails,
                     "tests": [{"test": r.nodeid, "verdict": r.verdict, "after": r.after, "attempts": r.attempts}
                               for r in summary.reruns]}
    if verdict.kind == "INTERRUPTED" and not (results / "junit.xml").exists():
        atomic.write_text(results / "junit.xml", _interrupted_junit(verdict.detail, started))
    return record.finish(verdict, summary, _perf_lines(results) if args.perf else [], took)


@dataclass
class _Record:
    """report.md, run.json (written last: the run's record) and the last lines on stdout."""

    results: Path
    run_id: str
    started: str
    stamp: str
    matrix: matrix_mod.Matrix
    device_sku: matrix_mod.Sku | None
    emulated_sku: str | None
    target_sku: str | None
    lines: list[str]  # the report's header: the session's own lines, then the run's
    health: RunHealth = field(default_factory=RunHealth)
    reruns: dict | None = None  # run.json's reruns: the limit and each rerun test's verdict (gpuhil.reruns)

    def finish(self, verdict: Verdict, summary: run_report.RunSummary, perf_lines: list[str] = (),
               sessions: list[str] = ()) -> int:
        text = run_report.render(summary, title=f"gpuhil run {self.stamp}", lines=self.lines, verdict=str(verdict),
                                 matrix=self.matrix, perf_lines=perf_lines, sessions=sessions,
                                 notices=self.health.notices(), health_lines=self.health.report_lines())
        atomic.write_text(self.results / "report.md", text)
        if self.health.before is not None:
            atomic.write_text(self.results / HEALTH_FILE, json.dumps(self.health.document(), indent=2) + "\n")
        junit = (self.results / "junit.xml").exists()
        atomic.write_text(self.results / run_record.NAME, json.dumps({
            "schema": run_record.SCHEMA, "run_id": self.run_id, "verdict": verdict.kind, "detail": verdict.detail,
            "exit_code": verdict.exit_code, "sku": self.device_sku.id if self.device_sku else None,
            "emulated_sku": self.emulated_sku, "target_sku": self.target_sku, "started": self.started,
            "finished": _now(), "junit": junit, "health": self.health.record(), "suspect": self.health.suspect,
            "reruns": self.reruns,
        }, indent=2) + "\n")
        _append_step_summary(text)
        junit_line = f"junit {self.results / 'junit.xml'}" if junit else "no junit.xml (pytest wrote none)"
        _say(f"gpuhil run: {verdict}", *(f"gpuhil run: {n}" for n in self.health.notices()),
             f"gpuhil run: report {self.results / 'report.md'}, record {self.results / run_record.NAME}, {junit_line}")
        return verdict.exit_code


def _verdict(ended: Ended, s: run_report.RunSummary, attached: bool, flaky_fails: bool = False) -> Verdict:
    counts = ", ".join(f"{v} {k}" for k, v in s.totals.items())
    flaky, ordered = s.rerun(reruns.FLAKY), s.rerun(reruns.ORDER_DEPENDENT)
    if ordered:
        counts += f"; {len(ordered)} order-dependent"
    if flaky:
        counts += f"; {len(flaky)} flaky (passed when run again{', --flaky-fails' if flaky_fails else ''})"
    rc = ended.returncode
    if ended.signum is not None:
        return Verdict("INTERRUPTED", f"{signal.Signals(ended.signum).name} stopped the run; what finished: {counts}",
                       128 + ended.signum)
    if rc < 0:
        return Verdict("HARNESS ERROR", f"pytest ended by {signal.Signals(-rc).name} ({counts})", 3)
    if rc not in (0, 1, 5):
        return Verdict("HARNESS ERROR", f"pytest exit {rc}{_why(ended.stderr_tail)} ({counts})", rc)
    if s.ran == 0:
        return Verdict("FAIL", f"no test ran ({counts}): nothing was verified on this runner", 1)
    if s.counted_crashes:
        return Verdict("FAIL", f"{len(s.counted_crashes)} test(s) crashed or timed out ({counts})", 1)
    # pytest's 1 stands unless the reruns explain it: every failure became FLAKY.
    if (rc == 1 and not flaky) or s.totals["failed"] or s.totals["errors"] or s.totals["xpassed"]:
        return Verdict("FAIL", counts, 1)
    if flaky and flaky_fails:
        return Verdict("FAIL", counts, 1)
    scope = "" if attached else "; no device in this session: only gates, AOT compiles and host checks ran"
    return Verdict("PASS", counts + scope, 0)


def _rerun_launcher(supervisor: Supervisor, root: Path, results: Path, phase: run_phases.Phase, command,
                    env: dict[str, str]) -> reruns.Launch:
    """Starts each rerun of `phase`'s failed tests: a fresh pytest session with one worker (a crash
    still fails alone) in its own folder under reruns/, its output in that folder's output.log."""
    count = itertools.count(1)

    def launch(nodeids: list[str]):
        folder = results / "reruns" / f"{phase.name}-{next(count):03d}"
        folder.mkdir(parents=True)
        listed = folder / "nodeids.txt"
        listed.write_text("\n".join(nodeids) + "\n")
        alone = run_phases.Phase(phase.name, 1, "a rerun", folder / run_phases.JUNIT, phase.options, phase.notes)
        with open(folder / "output.log", "wb") as log:
            ended = supervisor.run(command(folder, alone, listed), root, env=env, log=log)
        return alone.junit, ended.signum, ended.returncode

    return launch


def _why(stderr_tail: tuple[str, ...]) -> str:
    said = [line.strip() for line in stderr_tail if line.strip()]
    errors = [line for line in said if re.search(r"(^|\s)error:", line, re.IGNORECASE)]
    return f": {(errors or said)[-1][:300]}" if said else ""


def _interrupted_junit(detail: str, started: str) -> str:
    """The junit.xml of a run stopped before pytest wrote one: one error that says so."""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="pytest" errors="1" failures="0" '
            f'skipped="0" tests="1" time="0" timestamp={quoteattr(started)}><testcase classname="gpuhil.run" '
            f'name="interrupted" time="0"><error message={quoteattr(detail)} /></testcase></testsuite></testsuites>\n')


def _perf_lines(results: Path) -> list[str]:
    if not list(results.glob("perf-*.parquet")):
        return ["No perf rows were written (no perf case ran)."]
    from .perf.cli import perf_summary

    return perf_summary(results)


def _append_step_summary(text: str) -> None:
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as f:
            f.write(text)


def _say(*lines: str) -> None:
    """Progress on stdout; a reader that went away (`gpuhil run | head`) must not stop the run."""
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        silence_stdout()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
