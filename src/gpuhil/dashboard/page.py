"""The site's page frame: navigation, escaping and inline data. Every page is one HTML file that links
assets/ relatively, so the site opens from file:// with no server (browsers refuse fetch() of local
files, hence data travels inside the page as JSON)."""

from __future__ import annotations

import html
import json
from typing import Any

PAGES = (("index.html", "Overview"), ("trends.html", "Trends"), ("compare.html", "Compare"),
         ("coverage.html", "Coverage"), ("roofline.html", "Roofline"))


def esc(value: Any) -> str:
    """Text from data (test names, reasons, ids) for HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no '</script>', '<!--' or '&' can close or bend the element."""
    return (json.dumps(data, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def frame(current: str, title: str, body: str, *, footer: str = "", data: dict[str, Any] | None = None,
          plotly: bool = False, scripts: tuple[str, ...] = ()) -> str:
    here = ' class="here"'
    nav = " ".join(f'<a href="{href}"{here if href == current else ""}>{esc(name)}</a>' for href, name in PAGES)
    blobs = "".join(f'<script type="application/json" id="{esc(k)}">{json_for_script(v)}</script>\n'
                    for k, v in (data or {}).items())
    scripts = ('<script src="assets/plotly.min.js"></script>\n' if plotly else "") + \
        '<script src="assets/site.js"></script>\n' + "".join(f'<script src="{esc(s)}"></script>\n' for s in scripts)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · gpuhil</title>
<link rel="stylesheet" href="assets/site.css">
</head>
<body>
<header><span class="brand">gpuhil</span> <nav>{nav}</nav></header>
<main>
<h1>{esc(title)}</h1>
{body}
</main>
<footer>{footer}</footer>
{blobs}{scripts}</body>
</html>
"""


def table(headers: list[str], rows: list[str], *, cls: str = "") -> str:
    """rows are already-rendered <tr> elements; headers are plain text."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def short_case(case_id: str) -> str:
    """'suites/argmax/test_x.py::test_x[gpuhil-cute-M1]' -> 'test_x[gpuhil-cute-M1]'."""
    return case_id.rsplit("::", 1)[-1]
