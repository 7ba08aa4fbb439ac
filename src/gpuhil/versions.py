"""Version strings as the probe reports them ('13.0', '2.11.0+cu130', '4.8.1'), compared numerically."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable


def version_tuple(text: str) -> tuple[int, ...]:
    """'13.0' -> (13, 0); '2.11.0+cu130' -> (2, 11, 0). Trailing non-numeric parts are ignored."""
    parts = []
    for piece in re.split(r"[.+]", str(text)):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def compare(op: Callable[[tuple, tuple], bool], have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """`op` over two version tuples, missing components counting as zero ('13' == '13.0')."""
    n = max(len(have), len(want))
    return op(have + (0,) * (n - len(have)), want + (0,) * (n - len(want)))


def version_at_least(have: str, want: str) -> bool:
    return compare(operator.ge, version_tuple(have), version_tuple(want))
