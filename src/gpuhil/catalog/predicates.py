"""Feature predicates: the `when:` of a known issue, evaluated over capability facts.

A predicate maps fact names to conditions. All conditions must hold (AND); a list is any-of (OR).
A condition on a fact that is unknown here (None: no DSL installed, a library absent) does not hold.
Device names are deliberately not facts: a known issue is keyed on what the device can do.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from ..thirdparty import LIBRARIES
from ..versions import compare, version_tuple

BOOL, INT, VERSION = "bool", "int", "version"

# The facts a predicate may name, with their kinds. `Capabilities.facts()` provides them.
FACT_KINDS: dict[str, str] = {
    "gpu_present": BOOL,
    "cluster_launch": BOOL,
    "torch_cuda": BOOL,
    "arch_family": INT,
    "sm_count": INT,
    "smem_optin_bytes": INT,
    "max_cluster_size": INT,
    "cc": VERSION,
    "dsl_cuda": VERSION,
    "cutlass_dsl": VERSION,
    "torch": VERSION,
    "cudnn": VERSION,
}
# A kernel library's installed version is the fact `library:<distribution>` (a version); the libraries
# gpuhil wraps are also named by their short fact name: `flashinfer: "<0.8"`.
LIBRARY_PREFIX = "library:"
ALIASES = {"cutlass_dsl_cuda": "dsl_cuda", **{lib.fact: LIBRARY_PREFIX + lib.dist for lib in LIBRARIES}}


def kind_of(fact: str) -> str | None:
    if fact.startswith(LIBRARY_PREFIX) and len(fact) > len(LIBRARY_PREFIX):
        return VERSION
    return FACT_KINDS.get(fact)

_OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
        "<": operator.lt, ">": operator.gt}
_COND = re.compile(r"^\s*(<=|>=|==|!=|<|>)?\s*([0-9][0-9.]*)\s*$")


class PredicateError(ValueError):
    """A predicate that cannot be understood. `path` names the offending key."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Condition:
    fact: str
    op: str
    value: Any

    def holds(self, facts: dict[str, Any]) -> bool:
        have = facts.get(self.fact)
        if have is None:
            return False
        kind = kind_of(self.fact)
        if kind == BOOL:
            return bool(have) == self.value
        if kind == INT:
            return _OPS[self.op](int(have), self.value)
        return compare(_OPS[self.op], version_tuple(have), self.value)

    def describe(self) -> str:
        v = ".".join(map(str, self.value)) if isinstance(self.value, tuple) else self.value
        return f"{self.fact} {self.op} {v}"


def parse_condition(fact: str, raw: Any, path: tuple) -> Condition:
    kind = kind_of(fact)
    if kind == BOOL:
        if not isinstance(raw, bool):
            raise PredicateError(path, f"'{fact}' takes true or false, got {raw!r}")
        return Condition(fact, "==", raw)
    if isinstance(raw, bool):
        raise PredicateError(path, f"'{fact}' takes a number or a comparison like '<13.0', got {raw!r}")
    if kind == INT and isinstance(raw, int):
        return Condition(fact, "==", raw)
    m = _COND.match(str(raw))
    if not m:
        raise PredicateError(path, f"'{fact}': cannot read condition {raw!r} (use e.g. 12, '>=9.0', '<13.0')")
    op = m.group(1) or "=="
    if kind == INT:
        if "." in m.group(2):
            raise PredicateError(path, f"'{fact}' is an integer, got {raw!r}")
        return Condition(fact, op, int(m.group(2)))
    return Condition(fact, op, version_tuple(m.group(2)))


@dataclass(frozen=True)
class Predicate:
    """AND over facts; each fact's conditions are OR-ed (a YAML list)."""

    clauses: tuple[tuple[Condition, ...], ...]

    @classmethod
    def parse(cls, mapping: Any, path: tuple = ()) -> "Predicate":
        if not isinstance(mapping, dict) or not mapping:
            raise PredicateError(path, "a predicate is a non-empty mapping of fact: condition")
        clauses = []
        for key, raw in mapping.items():
            fact = ALIASES.get(key, key)
            if kind_of(fact) is None:
                known = ", ".join(sorted(FACT_KINDS) + sorted(ALIASES) + [LIBRARY_PREFIX + "<distribution>"])
                raise PredicateError(path + (key,), f"unknown fact '{key}' in predicate (known: {known})")
            values = raw if isinstance(raw, list) else [raw]
            if not values:
                raise PredicateError(path + (key,), f"'{key}': empty list")
            clauses.append(tuple(parse_condition(fact, v, path + (key,)) for v in values))
        return cls(tuple(clauses))

    def holds(self, facts: dict[str, Any]) -> bool:
        return all(any(c.holds(facts) for c in clause) for clause in self.clauses)

    def describe(self) -> str:
        return " and ".join(" or ".join(c.describe() for c in clause) for clause in self.clauses)
