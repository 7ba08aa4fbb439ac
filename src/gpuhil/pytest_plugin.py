"""The gpuhil pytest plugin: markers from the matrix, gates from Requirements, known issues as xfail.

Loaded by the repo's conftest.py. Test bodies never gate themselves: a kernel config's Requirements
arrive as a `requires` marker and are decided here by `requirements.check`, the function dispatch uses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from . import capabilities, gpu_pinning, matrix as matrix_mod, session as session_mod
from .requirements import Requirements, check
from .selection import applies, identify, selected

CTX = pytest.StashKey["session_mod.SessionContext"]()
KNOWN_ISSUE = pytest.StashKey["matrix_mod.KnownIssue"]()
EXPIRED = pytest.StashKey["matrix_mod.KnownIssue"]()
PERF = pytest.StashKey["PerfRecorder"]()
MERGED = pytest.StashKey["Path"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("gpuhil")
    g.addoption("--emulate-sku", metavar="ID", help="cap this GPU's resource limits at a catalog SKU's (ISA unchanged)")
    g.addoption("--target-sku", metavar="ID", help="reason CPU-side as this catalog SKU (gates, AOT targets)")
    g.addoption("--perf", action="store_true", help="run perf-marked cases and record them")
    g.addoption("--results-dir", metavar="DIR", help="where perf rows and run artefacts go")
    g.addoption("--tier", choices=("default", "full"), help="default: slow cases deselected; full: everything")
    g.addoption("--matrix", metavar="PATH", help="hardware_matrix.yaml to use (default: the repo's)")


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid")  # set by xdist on its workers only
    if worker:
        gpu_pinning.pin_worker(os.environ, worker)  # before the probe below initialises CUDA here
    elif getattr(config.option, "numprocesses", None):
        gpu_pinning.announce()
    path = config.getoption("--matrix") or os.environ.get("GPUHIL_MATRIX") or Path(config.rootpath) / matrix_mod.MATRIX_FILE
    try:
        mx = matrix_mod.load(path)
        emulate, target = config.getoption("--emulate-sku"), config.getoption("--target-sku")
        ctx = session_mod.build(mx, emulate=emulate, target=target)
    except (matrix_mod.MatrixError, session_mod.SessionSetupError, capabilities.EmulationRefused) as exc:
        raise pytest.UsageError(f"gpuhil: {exc}") from None
    config.stash[CTX] = ctx
    matrix_mod.set_active(mx)  # suites parametrize over the session's catalog, --matrix included
    if emulate:
        os.environ[capabilities.EMULATE_ENV] = emulate  # xdist workers and subprocesses emulate too
    if ctx.caps.runnable:
        capabilities.set_current(ctx.caps)  # kernel dispatch in this process obeys the same limits
    if config.getoption("--perf"):
        from .perf.recorder import PerfRecorder, new_run_id

        run_id = new_run_id()
        results = Path(config.getoption("--results-dir") or Path(config.rootpath) / "results" / f"perf-{run_id}")
        config.stash[PERF] = PerfRecorder(results, ctx, worker or "main", run_id)
    for sku in mx.skus.values():
        config.addinivalue_line("markers", f"{sku.id}: in the {sku.name} runner's selection")
    for arch in matrix_mod.ARCH_MARKERS:
        config.addinivalue_line("markers", f"{arch}: in the selection of a SKU of this arch")


def pytest_unconfigure(config: pytest.Config) -> None:
    # A session's catalog and limits do not outlive it (in-process sessions, e.g. pytester, follow).
    matrix_mod.set_active(None)
    capabilities.set_current(None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return config.stash[CTX].header_lines()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ctx = config.stash[CTX]
    facts = ctx.caps.facts()
    keep, dropped = [], []
    tier = config.getoption("--tier") or _tier_from_markexpr(config.getoption("-m"), ctx.matrix)
    for item in items:
        case = identify(item)
        for sku_id, sel in ctx.matrix.selections.items():
            if selected(sel, case):
                item.add_marker(sku_id)
                item.add_marker(ctx.matrix.skus[sku_id].arch)
        _gate(item, ctx)
        for ki in ctx.matrix.known_issues:
            if applies(ki, case) and ki.predicate.holds(facts):
                _mark_known_issue(item, ki)
        if (case.tier == "full" and tier == "default") or (item.get_closest_marker("perf") and not config.getoption("--perf")):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _tier_from_markexpr(expr: str, mx) -> str:
    """`-m <sku or arch>` asks for that runner's list, whose own tier then applies; anything else
    (`-m gpu`, `-m "not perf"`) keeps the default tier."""
    names = set(mx.skus) | set(matrix_mod.ARCH_MARKERS)
    return "full" if expr and names & set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) else "default"


def _gate(item: pytest.Item, ctx) -> None:
    for mark in item.iter_markers("requires"):
        req = mark.args[0] if mark.args else Requirements(**mark.kwargs)
        verdict = check(req, ctx.caps)
        if not verdict.ok:
            item.add_marker(pytest.mark.skip(reason=f"requires {req.describe()}: {verdict.explain()}"))
            return


def _mark_known_issue(item: pytest.Item, ki) -> None:
    if ki.expired():
        item.stash[EXPIRED] = ki
        return
    text = f"known issue {ki.id}: {ki.reason} ({ki.link}; expires {ki.expires})"
    item.stash[KNOWN_ISSUE] = ki
    item.add_marker(pytest.mark.skip(reason=text) if ki.mode == "skip" else pytest.mark.xfail(reason=text, strict=True))


def pytest_runtest_setup(item: pytest.Item) -> None:
    ki = item.stash.get(EXPIRED, None)
    if ki is not None:
        mx = item.config.stash[CTX].matrix
        line = mx.line_of("known_issues", mx.known_issues.index(ki), "expires")
        pytest.fail(f"known issue '{ki.id}' expired on {ki.expires} ({ki.link}): re-verify it on this device, "
                    f"then extend or retire it at {mx.path}:{line}", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    ki = item.stash.get(KNOWN_ISSUE, None)
    if ki is not None and rep.when == "call" and rep.failed and "XPASS(strict)" in str(rep.longrepr):
        rep.longrepr = (f"[XPASS(strict)] known issue '{ki.id}' did not reproduce here: the bug looks fixed. "
                        f"Retire the entry from hardware_matrix.yaml ({ki.link}).")


def pytest_sessionfinish(session: pytest.Session) -> None:
    rec = session.config.stash.get(PERF, None)
    if rec is not None and not hasattr(session.config, "workerinput"):  # the controller merges workers' rows
        from .perf.store import merge

        merged = merge(rec.results_dir, rec.run_id)
        if merged:
            session.config.stash[MERGED] = merged


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    merged = config.stash.get(MERGED, None)
    if merged is not None:
        terminalreporter.write_line(f"gpuhil: perf rows merged into {merged} (compare: gpuhil perf compare {merged})")


@pytest.fixture(scope="session")
def gpuhil_session(request: pytest.FixtureRequest):
    """The session's probe, catalog match and capabilities."""
    return request.config.stash[CTX]
