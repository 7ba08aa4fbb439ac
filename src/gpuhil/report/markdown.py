"""Markdown pieces the reports share: a code span and a table cell that stay what they are."""

from __future__ import annotations

import re


def code(text: str) -> str:
    """`text` as one markdown code span, whatever backticks it holds."""
    text = text.replace("\n", " ")
    run = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """One table cell: a '|' (in a test id, a parameter, a message) would end the cell, code spans
    included, so it is escaped; newlines would end the row."""
    return text[:300].replace("|", "\\|").replace("\n", " ")
