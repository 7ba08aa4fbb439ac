"""What `gpuhil bisect` runs at each step: one pytest node id, or one perf series.

A CASE with a `|` is a perf series as the perf store keys it (`suite|case_id|provider`, store.series_key;
a case_id never holds `|`, so the split is unambiguous), its case_id being the pytest node id the
`perf` fixture recorded; anything else is a pytest node id. A node id is `path/to/test_x.py::name[...]`,
the path relative to the repository root and inside it: the step runs exactly that, in the step's
worktree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .. import ids
from ..perf.store import series_key

NODE_ID_FORM = "path/to/test_x.py::test_name[params]"
SERIES_FORM = "suite|case_id|provider"


class BadCase(ValueError):
    """The CASE argument is malformed: the message is the one line to print."""


@dataclass(frozen=True)
class PytestCase:
    """A pytest node id: good when it passes, bad when it fails or errors."""

    node_id: str
    kind = "test"

    @property
    def path(self) -> str:
        return self.node_id.split("::", 1)[0]

    def __str__(self) -> str:
        return self.node_id


@dataclass(frozen=True)
class PerfSeries:
    """A perf series: its case is run with --perf and its row judged against the good commit's rows."""

    suite: str
    node_id: str  # the series' case_id
    provider: str
    kind = "perf"

    @property
    def path(self) -> str:
        return self.node_id.split("::", 1)[0]

    @property
    def key(self) -> str:
        return series_key(self.suite, self.node_id, self.provider)

    def __str__(self) -> str:
        return self.key


def node_id_problem(text: str) -> str | None:
    """Why `text` is not a pytest node id of a file inside the repository, or None."""
    if not text.strip():
        return "empty"
    if re.search(r"[\x00-\x1f\x7f]", text):
        return "holds a control character"
    if text.startswith("-"):
        return "starts with '-' (a pytest option, not a test)"
    path, sep, name = text.partition("::")
    if not sep or not name or name.startswith("::") or name.endswith("::"):
        return f"not a pytest node id ({NODE_ID_FORM}): a test names its file and its function"
    if "\\" in path or path.startswith("/") or re.match(r"[A-Za-z]:", path):
        return f"file part '{path}' must be a path relative to the repository root, with '/'"
    parts = PurePosixPath(path).parts
    if ".." in parts or not path.endswith(".py"):
        return f"file part '{path}' must be a .py file inside the repository"
    return None


def parse(text: str) -> PytestCase | PerfSeries:
    """The CASE argument, or BadCase naming it and what is wrong."""
    if "|" in text:
        parts = text.split("|")
        if len(parts) != 3:
            raise BadCase(f"CASE {text!r}: a perf series is {SERIES_FORM} (3 parts), this has {len(parts)}")
        suite, case_id, provider = parts
        problem = ids.id_problem(suite)
        if problem:
            raise BadCase(f"CASE {text!r}: suite {suite!r}: {problem}")
        problem = node_id_problem(case_id)
        if problem:
            raise BadCase(f"CASE {text!r}: case_id {case_id!r}: {problem}")
        if not provider.strip() or provider != provider.strip():
            raise BadCase(f"CASE {text!r}: provider {provider!r}: empty or padded with spaces")
        return PerfSeries(suite, case_id, provider)
    problem = node_id_problem(text)
    if problem:
        raise BadCase(f"CASE {text!r}: {problem} (or a perf series, {SERIES_FORM})")
    return PytestCase(text)
