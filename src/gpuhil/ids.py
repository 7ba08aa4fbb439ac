"""Identifiers that become paths or pytest markers, and values that must not be empty: one rule, checked
where each value enters (catalog, options, environment, perf rows).

A SKU id names folders (baselines/<sku>/, results/...-<sku>) and a marker; a run id names
rows/<run_id>/; a suite names baselines/<sku>/<suite>.json. A value outside the pattern could climb out
of its folder (`../../x`), differ only by case on a case-insensitive file system, or turn into a marker
pytest already gives a meaning to (a SKU `skip` would skip that runner's whole list).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# No separator, no leading dot and no '..', so an id is one plain path component that stays in its
# folder; 64 characters keep paths short.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SAFE_ID_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 64, no '..'"
# A marker is also read as one word by `-m` expressions and by the plugin's tier rule, and lower case
# keeps two SKU folders apart on a case-insensitive file system: ids that become markers keep to this
# subset of SAFE_ID.
MARKER_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
MARKER_ID_RULE = "lower-case letters, digits and '_', starting with a letter, at most 64"

# Markers pytest, its plugins (pytest-timeout, xdist) or gpuhil give a meaning of their own, and the
# words of `-m` expressions. A catalog name equal to one of these would change what that marker selects.
PYTEST_MARKERS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings",
                            "tryfirst", "trylast", "timeout", "xdist_group", "pytester_example_path"})
GPUHIL_MARKERS = frozenset({"gpu", "aot", "perf", "slow", "case", "requires", "skus", "known_issue", "planted"})
MARKEXPR_WORDS = frozenset({"and", "or", "not"})
RESERVED_MARKERS = PYTEST_MARKERS | GPUHIL_MARKERS | MARKEXPR_WORDS


class InvalidValue(ValueError):
    """A value refused at the boundary where it entered; the message names the value and where it came from."""


def id_problem(value: object) -> str | None:
    """Why `value` is not a safe identifier, or None when it is one."""
    if not isinstance(value, str):
        return f"not a string ({type(value).__name__})"
    if not value.strip():
        return "empty"
    if ".." in value or not SAFE_ID.fullmatch(value):
        return f"not a safe identifier ({SAFE_ID_RULE})"
    return None


def check_id(value: object, what: str) -> str:
    """`value` when it is a safe identifier, else InvalidValue naming `what`."""
    problem = id_problem(value)
    if problem:
        raise InvalidValue(f"{what} {value!r}: {problem}")
    return value  # type: ignore[return-value]


def marker_problem(value: object, reserved: frozenset[str] | set[str] = RESERVED_MARKERS) -> str | None:
    """Why `value` cannot be a catalog marker (SKU id, catalog `markers:` entry), or None."""
    problem = id_problem(value)
    if problem:
        return problem
    if not MARKER_ID.fullmatch(value):  # type: ignore[arg-type]
        return f"not a marker name ({MARKER_ID_RULE})"
    if value in reserved:
        return "shadows a marker pytest or gpuhil already defines"
    return None


def option_value(value: str | None, flag: str) -> str | None:
    """An optional command-line value: None when the option was not given, refused when given empty
    (`--emulate-sku ''` must not silently mean 'no emulation')."""
    if value is None:
        return None
    if not value.strip():
        raise InvalidValue(f"{flag}: empty value: give a catalog SKU id or leave the option out")
    return value


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An environment variable: None when unset, refused when set but empty (a CI template that
    expanded to nothing must not silently fall back to a default)."""
    env = os.environ if environ is None else environ
    if name not in env:
        return None
    value = env[name]
    if not value.strip():
        raise InvalidValue(f"${name} is set but empty: unset it or give it a value")
    return value


def env_id(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """An environment variable that becomes a path component: unset, or a safe identifier."""
    value = env_value(name, environ)
    return None if value is None else check_id(value, f"${name}")


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """A yes/no environment variable: unset is no; 1/true/yes/on and 0/false/no/off (any case) are
    read; anything else is refused, so a typo never silently turns a check off."""
    value = env_value(name, environ)
    if value is None:
        return False
    word = value.strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise InvalidValue(f"${name}={value!r}: not a yes/no value (1/true/yes/on or 0/false/no/off)")
