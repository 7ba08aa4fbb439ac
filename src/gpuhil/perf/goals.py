"""Performance goals as data (baselines/goals.yaml), judged on one run's perf rows.

A goal selects series of a run and bounds one metric of each:

    suite     the suite folder (exact)
    provider  glob on the row's provider (default "*")
    test      glob on the test function (default "*")
    params    {parameter: glob, ">=N"/"<=N"/">N"/"<N", or a list of them (any-of)} on the case's parameters
    metric    pct_of_roofline (min), pct_of_same_work (min), vs_peer (min), median_us (max), host_us (max),
              host_ratio (max: host_us over host_peer_us, the peer's host time timed interleaved with ours)
    min / max the bound; peer: the provider vs_peer divides by (the same problem's row)
    ceil      optional, what makes a miss CEIL rather than MISS (the goal asks more than this run's
              ceiling allows): `same_work` (pct_of_roofline: the same-work reference misses the bound
              too) or `peer_share` (vs_peer: the bound times the peer's % of roofline exceeds ceil_pct,
              default 100)
    reason    why the goal is what it is

Verdicts: MET, MISS, CEIL; a row no verdict may use (errored, throttled) is ERROR or INVALID through
baseline.unusable, the same function that keeps it from a baseline verdict. `--gate` fails on MISS
and ERROR. A malformed file is one PerfInputError naming the file and field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .baseline import unusable
from .store import series_key
from .validate import PerfInputError

GOALS_FILE = "goals.yaml"  # beside the SKU folders in baselines/
METRICS = {  # metric -> the bound it takes (every metric is better when faster)
    "pct_of_roofline": "min", "pct_of_same_work": "min", "vs_peer": "min", "median_us": "max", "host_us": "max",
    "host_ratio": "max",
}
CEILS = {"same_work": "pct_of_roofline", "peer_share": "vs_peer"}
FIELDS = ("id", "suite", "provider", "test", "params", "metric", "min", "max", "peer", "ceil", "ceil_pct", "reason")
GATE_FAILS = ("MISS", "ERROR")


@dataclass(frozen=True)
class Goal:
    id: str
    suite: str
    metric: str
    reason: str
    provider: str = "*"
    test: str = "*"
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    peer: str | None = None
    ceil: str | None = None
    ceil_pct: float = 100.0

    @property
    def bound(self) -> str:
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"

    def selects(self, row: dict[str, Any]) -> bool:
        if row["suite"] != self.suite or not fnmatchcase(row["provider"], self.provider):
            return False
        if not fnmatchcase(test_of(row), self.test):
            return False
        have = params_of(row)
        return all(k in have and any(_param_matches(have[k], w) for w in want) for k, want in self.params.items())


@dataclass(frozen=True)
class GoalVerdict:
    goal: Goal
    series: str | None  # None: no row of the run matches the goal
    verdict: str  # MET, MISS, CEIL, ERROR, INVALID, NONE
    value: float | None
    note: str


def test_of(row: dict[str, Any]) -> str:
    """The test function of a row's case id (`path::test[params]`)."""
    return row["case_id"].rsplit("::", 1)[-1].split("[", 1)[0]


def params_of(row: dict[str, Any]) -> dict[str, str]:
    """The case's parameters other than its provider, as the perf fixture wrote them (empty before it did)."""
    try:
        got = json.loads(row.get("params") or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in got.items()} if isinstance(got, dict) else {}


def same_problem(row: dict[str, Any], other: dict[str, Any]) -> bool:
    return (row["suite"], test_of(row), row.get("params")) == (other["suite"], test_of(other), other.get("params")) \
        and row.get("params") is not None


def _param_matches(have: str, want: str) -> bool:
    for op in (">=", "<=", ">", "<"):
        if want.startswith(op):
            try:
                x, bound = float(have), float(want[len(op):])
            except ValueError:
                return False
            return {">=": x >= bound, "<=": x <= bound, ">": x > bound, "<": x < bound}[op]
    return fnmatchcase(have, want)


# --- loading -------------------------------------------------------------------------------------------

def _number(where: str, name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise PerfInputError(f"{where}: field '{name}' must be a positive number, got {v!r}")
    return float(v)


def _text(where: str, name: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise PerfInputError(f"{where}: field '{name}' must be a non-empty string, got {v!r}")
    return v


def _goal(path: Path, i: int, doc: Any, seen: set[str]) -> Goal:
    where = f"{path}: goals[{i}]"
    if not isinstance(doc, dict):
        raise PerfInputError(f"{where}: expected a mapping with fields {', '.join(FIELDS)}")
    if "id" in doc:
        where = f"{path}: goal '{_text(where, 'id', doc['id'])}' (goals[{i}])"
    extra = sorted(str(k) for k in doc if k not in FIELDS)
    if extra:
        raise PerfInputError(f"{where}: unknown field '{extra[0]}' (fields: {', '.join(FIELDS)})")
    for name in ("id", "suite", "metric", "reason"):
        if name not in doc:
            raise PerfInputError(f"{where}: missing field '{name}'")
    gid = _text(where, "id", doc["id"])
    if gid in seen:
        raise PerfInputError(f"{where}: field 'id' repeats goal '{gid}'")
    metric = doc["metric"]
    if metric not in METRICS:
        raise PerfInputError(f"{where}: field 'metric' is {metric!r}, expected one of {', '.join(METRICS)}")
    bounds = [b for b in ("min", "max") if b in doc]
    if bounds != [METRICS[metric]]:
        raise PerfInputError(f"{where}: metric '{metric}' takes field '{METRICS[metric]}' (and not the other bound)")
    if (metric == "vs_peer") != ("peer" in doc):
        raise PerfInputError(f"{where}: field 'peer' " + ("is missing: metric 'vs_peer' divides by the peer's median"
                                                          if metric == "vs_peer" else "only goes with metric 'vs_peer'"))
    ceil = doc.get("ceil")
    if ceil is not None and CEILS.get(ceil) != metric:
        raise PerfInputError(f"{where}: field 'ceil' is {ceil!r}; "
                             + "; ".join(f"'{c}' goes with metric '{m}'" for c, m in CEILS.items()))
    if "ceil_pct" in doc and ceil != "peer_share":
        raise PerfInputError(f"{where}: field 'ceil_pct' only goes with ceil 'peer_share'")
    params = doc.get("params", {})
    if not isinstance(params, dict):
        raise PerfInputError(f"{where}: field 'params' must be a mapping of parameter -> glob, bound or list of them")
    norm: dict[str, tuple[str, ...]] = {}
    for k, v in params.items():
        vs = v if isinstance(v, list) else [v]
        if not vs or any(isinstance(x, (bool, dict, list)) or x is None for x in vs):
            raise PerfInputError(f"{where}: field 'params.{k}' must be a glob, a bound (>=N) or a non-empty list of them")
        norm[str(k)] = tuple(str(x) for x in vs)
    bound = METRICS[metric]
    return Goal(id=gid, suite=_text(where, "suite", doc["suite"]), metric=metric, reason=_text(where, "reason", doc["reason"]),
                provider=_text(where, "provider", doc.get("provider", "*")), test=_text(where, "test", doc.get("test", "*")),
                params=norm, **{bound: _number(where, bound, doc[bound])},
                peer=_text(where, "peer", doc["peer"]) if "peer" in doc else None, ceil=ceil,
                ceil_pct=_number(where, "ceil_pct", doc["ceil_pct"]) if "ceil_pct" in doc else 100.0)


def load(path: Path) -> list[Goal]:
    """The goals of `path`, checked; PerfInputError (one line: file and field) when malformed."""
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PerfInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PerfInputError(f"{path}: unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        raise PerfInputError(f"{path}: not valid YAML ({at}{getattr(exc, 'problem', None) or exc})".splitlines()[0]) from None
    if not isinstance(doc, dict) or "goals" not in doc:
        raise PerfInputError(f"{path}: missing field 'goals' (a list of goals; see gpuhil.perf.goals)")
    extra = sorted(str(k) for k in doc if k not in ("schema", "goals"))
    if extra:
        raise PerfInputError(f"{path}: unknown top-level field '{extra[0]}' (fields: schema, goals)")
    if doc.get("schema", 1) != 1:
        raise PerfInputError(f"{path}: field 'schema' is {doc.get('schema')!r}; this gpuhil reads schema 1")
    if not isinstance(doc["goals"], list):
        raise PerfInputError(f"{path}: field 'goals' must be a list")
    seen: set[str] = set()
    out = []
    for i, g in enumerate(doc["goals"]):
        goal = _goal(path, i, g, seen)
        seen.add(goal.id)
        out.append(goal)
    return out


# --- verdicts ------------------------------------------------------------------------------------------

def _metric(goal: Goal, row: dict[str, Any], peer: dict[str, Any] | None) -> tuple[float | None, str]:
    """(value, "") or (None, why it cannot be computed from this run's rows)."""
    if goal.metric == "vs_peer":
        if peer is None:
            return None, f"no row of peer '{goal.peer}' for this problem"
        refused = unusable(peer)
        if refused is not None:
            return None, f"peer '{goal.peer}' is {refused.verdict}: {refused.note}"
        return peer["median_us"] / row["median_us"], ""
    if goal.metric == "pct_of_roofline":
        v = row.get("pct_of_ceiling")
        return (v, "") if v is not None else (None, "the row has no roofline (the case declared no work)")
    if goal.metric == "host_ratio":
        ours, peer_us = row.get("host_us"), row.get("host_peer_us")
        return (ours / peer_us, "") if ours and peer_us else (None, "the row has no host time beside its peer's")
    if goal.metric == "pct_of_same_work":
        ref = row.get("same_work_us")
        return (100 * ref / row["median_us"], "") if ref else (None, "the row has no same-work reference")
    v = row.get(goal.metric)
    return (v, "") if v is not None else (None, f"the row has no {goal.metric}")


def _ceil_note(goal: Goal, row: dict[str, Any], peer: dict[str, Any] | None) -> tuple[bool, str]:
    """(whether the ceiling explains the miss, the numbers that say so) for a missed goal."""
    if goal.ceil == "same_work" and row.get("same_work_us") and row.get("pct_of_ceiling"):
        roof_us = row["median_us"] * row["pct_of_ceiling"] / 100
        share = 100 * roof_us / row["same_work_us"]
        return share < goal.min, (f"a {row['same_work']} reaches {share:.1f} % in this run, this row "
                                  f"{100 * row['same_work_us'] / row['median_us']:.1f} % of its rate")
    if goal.ceil == "peer_share" and peer is not None and peer.get("pct_of_ceiling"):
        needed = goal.min * peer["pct_of_ceiling"]
        return needed > goal.ceil_pct, (f"{goal.min:g}x needs {needed:.1f} % of the roofline, {goal.peer} is at "
                                        f"{peer['pct_of_ceiling']:.1f} %, this row {row.get('pct_of_ceiling') or 0:.1f} %")
    return False, ""


def judge_goal(goal: Goal, row: dict[str, Any], rows: list[dict[str, Any]]) -> GoalVerdict:
    key = series_key(row["suite"], row["case_id"], row["provider"])
    refused = unusable(row)
    if refused is not None:
        return GoalVerdict(goal, key, refused.verdict, None, refused.note)
    peer = next((r for r in rows if r["provider"] == goal.peer and same_problem(row, r)), None) if goal.peer else None
    value, why = _metric(goal, row, peer)
    if value is None:
        return GoalVerdict(goal, key, "INVALID", None, why)
    met = value >= goal.min if goal.min is not None else value <= goal.max
    if met:
        return GoalVerdict(goal, key, "MET", value, "")
    ceil, note = _ceil_note(goal, row, peer)
    return GoalVerdict(goal, key, "CEIL" if ceil else "MISS", value, note)


def judge(goals: list[Goal], rows: list[dict[str, Any]]) -> list[GoalVerdict]:
    """Every goal of the run's suites against every row it selects; one that selects none is NONE (a
    partial run, or a provider this device does not run)."""
    suites = {r["suite"] for r in rows}
    out = []
    for goal in (g for g in goals if g.suite in suites):
        chosen = [r for r in rows if goal.selects(r)]
        if not chosen:
            out.append(GoalVerdict(goal, None, "NONE", None, "no row of this run matches"))
        out.extend(judge_goal(goal, r, rows) for r in chosen)
    return out


def gate_fails(verdicts: list[GoalVerdict]) -> dict[str, int]:
    """Counts of the verdicts that fail `--gate` (MISS, ERROR); empty when the gate passes."""
    counts = {v: sum(1 for x in verdicts if x.verdict == v) for v in GATE_FAILS}
    return {v: n for v, n in counts.items() if n}
