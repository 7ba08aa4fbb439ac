"""`gpuhil bisect --good SHA --bad SHA -- CASE`: the first commit at which a test fails, or a perf
series slows down, between a good and a bad commit.

Everything that can refuse the bisect is checked before anything is written (one line, exit 2): the
CASE, the revisions (unknown, good not an ancestor of bad, the case's file absent at bad), a working
tree with uncommitted changes (the bisect tests commits: edits in the tree would be neither tested nor
noticed), the folder (not a bisect folder, or one holding another bisect).

Then the two endpoints are run first, so the answer cannot rest on a premise that does not hold: the
case must pass at good and fail at bad (for a perf series: good is measured `repeats` times, the
reference every later step is judged against, and bad must be SLOW against it). Then git decides:
`git bisect start --no-checkout BAD GOOD` in the bisect's own worktree, and after each step `git
bisect good|bad|skip SHA`, until git names the first bad commit (or, when only skipped commits are
left, the commits it could be). git's search, not one written here: it halves the candidate set over
merges as well as a line, and after a skip it picks a commit away from the skipped one rather than
its neighbour. `git bisect run` is not used: the steps are run here, so each is logged and recorded
(state.py) the moment it ends, the perf reference is measured before the first midpoint, and a
rerun replays what was recorded into a fresh `git bisect` instead of trusting state git left behind.

Exit status: 0 the first bad commit was found; 1 the bisect cannot name one commit (an endpoint is not
what it was said to be, or only skipped commits are left); 2 refused; 128 + N stopped by signal N (the
step in progress is not recorded: the same command resumes).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import atomic, ids
from ..runner import CACHE_DIR_ENV, default_cache_root
from ..supervise import Supervisor
from . import state as state_mod, step as step_mod
from .git import GitError, Outcome, Repo, Worktree
from .state import State, StateError, Step
from .target import BadCase, PerfSeries, parse

DEFAULT_REPEATS = 5
LOCK = ".lock"  # held while a bisect runs in the folder: two at once would interleave their steps
MIN_REPEATS = 3  # below this a reference is a young series: judge() assumes its noise instead of measuring it


class Refused(Exception):
    """The bisect cannot start: one line, exit 2."""


@dataclass
class Plan:
    repo: Repo
    case: object  # target.PytestCase or target.PerfSeries
    good: str
    bad: str
    repeats: int | None
    folder: Path
    state: State
    resumed: bool
    step_env: step_mod.StepEnv


def _repeats(value: str | None, case) -> int | None:
    if not isinstance(case, PerfSeries):
        if value is not None:
            raise Refused("--repeats: only a perf series is repeated (a test step runs its case once)")
        return None
    if value is None:
        return DEFAULT_REPEATS
    try:
        n = int(value)
    except ValueError:
        raise Refused(f"--repeats {value!r}: not an integer") from None
    if n < MIN_REPEATS:
        raise Refused(f"--repeats {n}: at least {MIN_REPEATS} (the good commit's runs are the reference; "
                      f"fewer leave its noise unmeasured)")
    return n


def prepare(args, environ, cwd: Path, python: str) -> Plan:
    """Every check that can refuse the bisect, in order; nothing is written."""
    given = [c for c in (args.case or [])]
    if len(given) != 1:
        raise Refused(f"CASE: give one pytest node id or perf series after -- (got {len(given)})")
    case = parse(given[0])
    repeats = _repeats(args.repeats, case)
    for flag, value in (("--good", args.good), ("--bad", args.bad)):
        if value is None:
            raise Refused(f"{flag}: missing: give a commit (sha, tag or branch)")
    repo = Repo(cwd, environ)
    good, bad = repo.commit(args.good, "--good"), repo.commit(args.bad, "--bad")
    if good == bad:
        raise Refused(f"--good and --bad are the same commit {good[:12]}")
    if not repo.is_ancestor(good, bad):
        raise Refused(f"--good {args.good} ({good[:12]}) is not an ancestor of --bad {args.bad} ({bad[:12]})")
    if not repo.has_file(bad, case.path):
        raise Refused(f"CASE {case}: {case.path} does not exist at --bad {bad[:12]}")
    changed = repo.changed_files()
    if changed:
        raise Refused(f"{repo.root}: uncommitted changes ({len(changed)} file(s), e.g. {changed[0]}): commit or stash "
                      "them; a bisect tests commits, never the working tree")
    try:
        cache_root = Path(ids.env_value(CACHE_DIR_ENV, environ) or default_cache_root(environ)).resolve()
    except ids.InvalidValue as exc:
        raise Refused(str(exc)) from None
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = (cwd / args.results_dir).resolve() if args.results_dir else repo.root / "results" / f"bisect-{stamp}"
    asked = State(good, bad, str(case), repeats)
    held = _folder_state(folder, asked)
    problem = Worktree(repo, folder / "worktree").problem()
    if problem:
        raise Refused(f"--results-dir {folder}: {problem}")
    return Plan(repo, case, good, bad, repeats, folder, held or asked, held is not None,
                step_mod.StepEnv(python, environ, cache_root))


def _folder_state(folder: Path, asked: State) -> State | None:
    """The state a folder holds for this very bisect (None: a new or empty folder)."""
    if folder.exists() and not folder.is_dir():
        raise Refused(f"--results-dir {folder}: is a file, not a folder")
    held = state_mod.load(folder) if folder.is_dir() else None
    if held is None:
        if folder.is_dir() and any(f.name != LOCK for f in folder.iterdir()):
            raise Refused(f"--results-dir {folder}: not empty and holds no {state_mod.NAME}: give a new folder, "
                          "or the folder of the bisect to resume")
        return None
    state_mod.check_same(held, asked.asked(), folder)
    return held


def main(args, environ, cwd: Path, python: str = sys.executable) -> int:
    try:
        plan = prepare(args, environ, cwd, python)
    except (Refused, BadCase, GitError, StateError) as exc:
        print(f"gpuhil bisect: {exc}", file=sys.stderr)
        return 2
    with Supervisor() as sup:
        sup.defer()  # a stop signal ends the step in progress; the bisect then stops between two git commands
        try:
            return Bisect(plan, sup).run()
        except GitError as exc:
            print(f"gpuhil bisect: {exc}", file=sys.stderr)
            return 2


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum


class Bisect:
    def __init__(self, plan: Plan, sup: Supervisor) -> None:
        self.p, self.sup, self.state = plan, sup, plan.state
        self.worktree = Worktree(plan.repo, plan.folder / "worktree")
        self.new_steps = 0

    def say(self, line: str) -> None:
        print(f"gpuhil bisect: {line}", flush=True)

    def run(self) -> int:
        p = self.p
        p.folder.mkdir(parents=True, exist_ok=True)
        with open(p.folder / LOCK, "w") as lock:
            try:  # released by the kernel however this process ends, SIGKILL included
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"gpuhil bisect: --results-dir {p.folder}: another gpuhil bisect is running in it", file=sys.stderr)
                return 2
            return self._run()

    def _run(self) -> int:
        p = self.p
        self.state.save(p.folder)
        self.say(f"{p.case} from good {p.good[:12]} to bad {p.bad[:12]}; folder {p.folder}"
                 + (f" (resuming: {len(self.state.steps)} step(s) recorded)" if p.resumed else ""))
        if self.state.result is not None:
            return self.finish(self.state.result)
        self.worktree.open(at=p.good)
        try:
            stopped = self.endpoint(p.good, "good") or self.endpoint(p.bad, "bad")
            if stopped:
                return self.finish({"stopped": stopped})
            outcome = self.worktree.start(p.bad, p.good)
            while not outcome.done:
                outcome = self.next_step(outcome)
        except Interrupted as exc:
            self.say(f"stopped by a signal; {len(self.state.steps)} step(s) recorded, the one in progress was not. "
                     f"Resume with the same command and --results-dir {p.folder}")
            return 128 + exc.signum
        if outcome.first_bad:
            return self.finish({"first_bad": outcome.first_bad, "subject": p.repo.subject(outcome.first_bad)})
        return self.finish({"candidates": [[sha, p.repo.subject(sha)] for sha in outcome.candidates]})

    def endpoint(self, sha: str, role: str) -> str | None:
        """Run an endpoint (unless recorded); why the bisect cannot go on, or None."""
        done = next((s for s in self.state.steps if s.sha == sha and s.role == role), None) or self.step(sha, role, None)
        if done.verdict == role:
            return None
        return (f"the case is {done.verdict} at --{role} {sha[:12]} ({done.reason}), not {role}: "
                f"bisect between a commit where it is good and one where it is bad")

    def next_step(self, outcome: Outcome) -> Outcome:
        sha = outcome.next
        known = self.state.verdicts().get(sha)
        if known is None:  # replayed steps are marked without running
            known = self.step(sha, "midpoint", outcome.steps_left).verdict
        return self.worktree.mark(known, sha)

    def step(self, sha: str, role: str, steps_left: int | None) -> Step:
        if self.sup.received:
            raise Interrupted(self.sup.received[0])
        p, n = self.p, len(self.state.steps) + 1
        step_dir = p.folder / "steps" / f"{n:02d}-{sha[:12]}"
        shutil.rmtree(step_dir, ignore_errors=True)  # what an interrupted attempt at this step left
        self.worktree.checkout(sha)
        subject = p.repo.subject(sha)
        left = "" if steps_left is None else f", about {steps_left} more after it" if steps_left else ", the last one"
        self.say(f"step {n} ({role}{left}): {sha[:12]} {subject}")
        started, t0 = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), time.monotonic()
        runs, verdict, reason = self.perf_runs(sha, role, n, step_dir) if isinstance(p.case, PerfSeries) \
            else self.test_run(sha, step_dir)
        seconds = round(time.monotonic() - t0, 1)
        step = Step(n, sha, subject, role, verdict, reason, started, seconds,
                    str((step_dir / "step.log").relative_to(p.folder)),
                    [{"n": i, "command": r.command, "returncode": r.returncode, "seconds": r.seconds,
                      "verdict": r.verdict, "detail": r.detail, "row": r.row} for i, r in enumerate(runs, 1)])
        atomic.write_text(step_dir / "step.log", _step_log(step, runs))
        self.state.steps.append(step)
        self.state.save(p.folder)
        self.new_steps += 1
        self.say(f"  {verdict}: {reason} ({seconds} s; log {step_dir / 'step.log'})")
        return step

    def test_run(self, sha: str, step_dir: Path):
        run = step_mod.run_pytest(self.sup, self.p.step_env, self.p.case, self.worktree.path, sha, step_dir / "run-1")
        if run.signum is not None:
            raise Interrupted(run.signum)
        run.verdict, run.detail = step_mod.case_verdict(run)
        return [run], run.verdict, run.detail

    def perf_runs(self, sha: str, role: str, n: int, step_dir: Path):
        p = self.p
        is_reference = role == "good"
        history = None if is_reference else step_mod.reference(self.reference_runs())
        runs, decided = [], None
        for i in range(1, p.repeats + 1):
            run = step_mod.run_pytest(self.sup, p.step_env, p.case, self.worktree.path, sha, step_dir / f"run-{i}",
                                      run_id=f"bisect-{sha[:12]}-s{n}-r{i}")
            if run.signum is not None:
                raise Interrupted(run.signum)
            step_mod.judge_perf_run(run, p.case, history)
            runs.append(run)
            self.say(f"  run {i}/{p.repeats}: {run.verdict} {run.detail}")
            if run.verdict == "ABSENT":
                return runs, "skip", run.detail
            if not is_reference:
                decided = step_mod.majority([r.verdict for r in runs], p.repeats)
                if decided:
                    break
        counts = ", ".join(f"{sum(r.verdict == v for r in runs)} {v}" for v in dict.fromkeys(r.verdict for r in runs))
        if not is_reference:
            return runs, decided or "skip", f"{counts} of {len(runs)} run(s) against the good commit"
        usable = step_mod.reference([{"row": r.row} for r in runs])
        if len(usable) < MIN_REPEATS:
            return runs, "skip", f"only {len(usable)} usable run(s) of {len(runs)} ({counts}): no reference"
        medians = sorted(e.median_us for e in usable)
        return runs, "good", (f"reference: {len(usable)} runs, medians {medians[0]:.2f}..{medians[-1]:.2f} us")

    def reference_runs(self) -> list[dict]:
        good = next(s for s in self.state.steps if s.role == "good")
        return good.runs

    def finish(self, result: dict) -> int:
        if self.state.result is None:
            self.state.result = result
            self.state.save(self.p.folder)
            self.worktree.remove()
        total = len(self.state.steps)
        self.say(f"{total} step(s), {self.new_steps} run by this command; logs under {self.p.folder / 'steps'}")
        if "first_bad" in result:
            self.say(f"first bad commit: {result['first_bad']} {result['subject']}")
            return 0
        if "candidates" in result:
            self.say("only skipped commits are left: the first bad commit is one of")
            for sha, subject in result["candidates"]:
                print(f"  {sha} {subject}")
            return 1
        self.say(f"no answer: {result['stopped']}")
        return 1


def _step_log(step: Step, runs) -> str:
    lines = [f"commit   {step.sha} {step.subject}", f"role     {step.role}", f"verdict  {step.verdict}: {step.reason}",
             f"started  {step.started}, {step.seconds} s"]
    for i, run in enumerate(runs, 1):
        lines += ["", f"run {i}: exit {run.returncode} in {run.seconds} s: {run.verdict} {run.detail}".rstrip(),
                  f"  command  {' '.join(run.command)}", f"  env      {run.env_shown}",
                  f"  output   {run.dir / 'output.txt'}", f"  last {step_mod.TAIL_LINES} lines:",
                  *(f"    {ln}" for ln in run.tail())]
    return "\n".join(lines) + "\n"
