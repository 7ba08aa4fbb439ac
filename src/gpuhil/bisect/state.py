"""The bisect folder's state file: what was asked (good, bad, case, repeats) and every finished step,
written whole (temp + rename) after each step. It is the bisect's only memory: a rerun with the same
folder replays its steps into a fresh `git bisect` and goes on from there; a rerun that asks for
another bisect is refused rather than mixed with this one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic

NAME = "state.json"
SCHEMA = 1
VERDICTS = ("good", "bad", "skip")


class StateError(Exception):
    """The folder's state cannot be used: the message is one line."""


@dataclass
class Step:
    n: int
    sha: str
    subject: str
    role: str  # good, bad (the endpoints, checked first) or midpoint (git bisect's choice)
    verdict: str  # good, bad, skip
    reason: str
    started: str
    seconds: float
    log: str  # relative to the bisect folder
    runs: list[dict[str, Any]] = field(default_factory=list)  # perf: each repeat's row and verdict


@dataclass
class State:
    good: str
    bad: str
    case: str
    repeats: int | None  # perf series only
    steps: list[Step] = field(default_factory=list)
    result: dict[str, Any] | None = None  # {"first_bad": sha, ...} or {"candidates": [...]} or {"stopped": why}

    def asked(self) -> dict[str, Any]:
        return {"good": self.good, "bad": self.bad, "case": self.case, "repeats": self.repeats}

    def verdicts(self) -> dict[str, str]:
        return {s.sha: s.verdict for s in self.steps}

    def save(self, folder: Path) -> None:
        atomic.write_text(folder / NAME, json.dumps({"schema": SCHEMA, **asdict(self)}, indent=1) + "\n")


def load(folder: Path) -> State | None:
    """The folder's state, None when it has none. Anything unreadable is a StateError."""
    path = folder / NAME
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if doc.pop("schema") != SCHEMA:
            raise ValueError(f"schema is not {SCHEMA}")
        steps = [Step(**s) for s in doc.pop("steps")]
        state = State(**doc, steps=steps)
        bad = [s.verdict for s in steps if s.verdict not in VERDICTS]
        if bad:
            raise ValueError(f"unknown verdict {bad[0]!r}")
        return state
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise StateError(f"{path}: not a gpuhil bisect state ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def check_same(state: State, asked: dict[str, Any], path: Path) -> None:
    """A rerun continues only the bisect the folder holds: same good, bad, case and repeats."""
    held = state.asked()
    differs = [k for k in held if held[k] != asked[k]]
    if differs:
        k = differs[0]
        raise StateError(f"{path / NAME} holds a bisect with {k} {held[k]!r}, this command asks {asked[k]!r}: "
                         "rerun the same command to resume it, or give another --results-dir")
