"""What the matrix can address in a collected test: suite, test, params, provider, tier.

Per-SKU selections and known issues both match against this one identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .matrix import KnownIssue, Selection


@dataclass(frozen=True)
class CaseIdentity:
    suite: str | None  # folder under suites/; None for the harness's own tests
    test: str  # test function name, without parameters
    params: dict[str, str]
    provider: str | None
    backend: str | None  # the provider's backend
    tier: str  # "default" or "full": the case's problem's tier (else: slow-marked tests are "full"; perf: default)
    origin: str | None = None  # "gpuhil", or the distribution that registered the provider
    problem: str | None = None  # the case's problem, by name


def param_text(value: Any) -> str:
    """How a parameter value is written in the matrix: a provider/config by its name, else str()."""
    return str(getattr(value, "name", value))


def identify(item) -> CaseIdentity:
    """A collected test's identity. A case built by `gpuhil.testing.case` carries its provider and
    problem in a `case` marker; parameter names mean nothing here."""
    try:
        rel = Path(str(item.path)).resolve().relative_to(Path(str(item.config.rootpath)).resolve() / "suites")
        suite = rel.parts[0] if len(rel.parts) > 1 else None
    except ValueError:  # outside suites/: the harness's own tests
        suite = None
    raw = getattr(getattr(item, "callspec", None), "params", {})
    params = {k: param_text(v) for k, v in raw.items()}
    mark = item.get_closest_marker("case")
    provider, problem = mark.args if mark else (None, None)
    # A perf case runs whenever --perf asks for the perf set, which its suite curates: never "full".
    full = not item.get_closest_marker("perf") and (getattr(problem, "tier", "default") == "full"
                                                    or item.get_closest_marker("slow"))
    return CaseIdentity(suite, getattr(item, "originalname", item.name), params,
                        param_text(provider) if provider is not None else None, getattr(provider, "backend", None),
                        "full" if full else "default", getattr(provider, "origin", None),
                        param_text(problem) if problem is not None else None)


def selected(sel: Selection, case: CaseIdentity) -> bool:
    """Whether a SKU's runner runs this case: any suite its selection does not skip, at its tier, for its
    providers. A new suite folder is selected everywhere without a catalog edit."""
    if case.suite is None or case.suite in sel.skipped:
        return False
    if case.tier == "full" and sel.tier != "full":
        return False
    return case.provider is None or any(fnmatchcase(case.provider, p) for p in sel.providers)


def applies(ki: KnownIssue, case: CaseIdentity) -> bool:
    a = ki.applies_to
    if not fnmatchcase(case.suite or "", a.suite) or not fnmatchcase(case.test, a.test):
        return False
    if a.provider != "*" and (case.provider is None or not fnmatchcase(case.provider, a.provider)):
        return False
    if a.backend != "*" and (case.backend is None or not fnmatchcase(case.backend, a.backend)):
        return False
    if a.third_party is not None and (case.origin is None or (case.origin != "gpuhil") != a.third_party):
        return False
    for key, want in a.params.items():
        have = case.params.get(key)
        if isinstance(want, bool):  # YAML true/false against Python's True/False
            have, want = (have or "").lower(), str(want).lower()
        if have is None or not fnmatchcase(have, str(want)):
            return False
    return True
