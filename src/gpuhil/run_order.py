"""The order tests ran in, per worker process, and a session that runs chosen tests in a chosen order.

`gpuhil run` reruns a failed test (gpuhil.reruns) and, when it passes alone, runs it again after the
test that preceded it in the same worker process: that needs the order each process ran its tests in.
xdist's controller does not keep it (it sends tests ahead to its workers), so each worker appends one
JSON line per test to `<notes>/<worker>.order` as the test starts: its process id (xdist gives a
replacement worker its id again), its node id, and its planted fault if any (gpuhil.reruns never
reruns those). A line is written before the test body runs, so a test that kills its worker is in
the log too.

`--run-nodeids FILE` keeps, of what the session collected, the node ids the file lists (one a line)
and runs them in the file's order: the reruns collect exactly what their run collected (same options,
same suites) and their node ids match it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ORDER = "order"  # the note: <notes>/<worker>.order
PLANTED_MARKER = "planted"  # fixtures/faults.py's marker: a fault put there on purpose


class OrderLog:
    """Registered in each xdist worker that has a notes folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem) -> None:
        mark = item.get_closest_marker(PLANTED_MARKER)
        line = {"pid": os.getpid(), "nodeid": item.nodeid,
                "planted": str(mark.args[0]) if mark is not None and mark.args else None}
        with open(self.path, "a") as f:  # one short line per write: whole even if the process dies next
            f.write(json.dumps(line) + "\n")


def read(notes: Path) -> list[list[dict]]:
    """Each worker process's tests, in the order it ran them (a torn last line is left out)."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for log in sorted(Path(notes).glob(f"*.{ORDER}")):
        for text in log.read_text(errors="replace").splitlines():
            try:
                line = json.loads(text)
                runs.setdefault((log.name, int(line["pid"])), []).append(line)
            except (ValueError, KeyError, TypeError):
                continue
    return list(runs.values())


def predecessors(notes: Path) -> dict[str, str]:
    """node id -> the node id that ran just before it in the same worker process."""
    before: dict[str, str] = {}
    for run in read(notes):
        for prev, line in zip(run, run[1:]):
            before[line["nodeid"]] = prev["nodeid"]
    return before


def planted(notes: Path) -> set[str]:
    """Node ids of the planted-fault tests that ran."""
    return {line["nodeid"] for run in read(notes) for line in run if line.get("planted")}


def keep_listed(config: pytest.Config, items: list[pytest.Item], listed: Path) -> None:
    """Keep the items `listed` names, in its order; the rest are deselected."""
    try:
        wanted = [n for n in Path(listed).read_text().splitlines() if n.strip()]
    except OSError as exc:
        raise pytest.UsageError(f"gpuhil: --run-nodeids {listed}: cannot read it ({exc.strerror or exc})") from None
    by_id = {item.nodeid: item for item in items}
    keep = [by_id[n] for n in dict.fromkeys(wanted) if n in by_id]
    dropped = [item for item in items if item.nodeid not in set(wanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
