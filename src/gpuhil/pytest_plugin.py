"""The gpuhil pytest plugin: markers from the matrix, gates from Requirements, known issues as xfail.

Loaded by the repo's conftest.py. Test bodies never gate themselves: a kernel config's Requirements
arrive as a `requires` marker (Requirements, or a callable taking the session's Capabilities, e.g. a
provider's requirements for a problem) and are decided here by `Session.verdict`, whose hardware part
is `gating.check`, the function dispatch uses.

The session comes from `--session-file` (what `gpuhil run` built once: the controller and every xdist
worker load it, no process probes again), else each process builds it from the same options
(`--emulate-sku`, `--target-sku`, `--matrix`). `--selection ID` keeps, of suites/, what that SKU's
runner runs (tests outside suites/ named on the command line stay); `--tier` is explicit, or the
selection's, or read from `-m` for an interactive `pytest -m h100`. Nothing about the device is kept
in module state or the environment. `--perf` adds the perf-marked cases, `--perf-only` runs only
them (gpuhil run's second session). Each test's time per phase goes into junit.xml (gpuhil.phase_times).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from . import session as session_mod
from .catalog import matrix as matrix_mod
from .catalog.selection import applies, identify, selected
from . import ids, isolation, phase_times, run_order
from .gating import Requirements

CTX = pytest.StashKey["session_mod.Session"]()
KNOWN_ISSUE = pytest.StashKey["matrix_mod.KnownIssue"]()
EXPIRED = pytest.StashKey["matrix_mod.KnownIssue"]()
PERF = pytest.StashKey["PerfRecorder"]()
MERGED = pytest.StashKey["Path"]()
COMPILE_CACHE = pytest.StashKey[contextlib.ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("gpuhil")
    g.addoption("--emulate-sku", metavar="ID", help="cap this GPU's resource limits at a catalog SKU's (ISA unchanged)")
    g.addoption("--target-sku", metavar="ID", help="decide as this catalog SKU, no device needed (gates, AOT targets)")
    g.addoption("--session-file", metavar="PATH", help="the session `gpuhil run` built (session.json): load it, never probe")
    g.addoption("--selection", metavar="ID", help="keep, of suites/, the catalog selection of this SKU's runner")
    g.addoption("--perf", action="store_true", help="run perf-marked cases and record them")
    g.addoption("--perf-only", action="store_true",
                help="run only the perf-marked cases and record them (gpuhil run's perf phase; implies --perf)")
    g.addoption("--results-dir", metavar="DIR", help="where perf rows and run artefacts go")
    g.addoption("--tier", choices=("default", "full"), help="default: slow cases deselected; full: everything")
    g.addoption("--matrix", metavar="PATH", help="hardware_matrix.yaml to use (default: the repo's)")
    g.addoption("--compile-cache", metavar="DIR",
                help="keep compiled gpuhil kernels in DIR, shared by workers and runs (gpuhil run: $GPUHIL_CACHE_DIR/cute)")
    g.addoption("--compile-cache-max-bytes", metavar="SIZE", default="2GiB",
                help="bound of --compile-cache: least recently used entries go beyond it (default 2GiB)")
    g.addoption("--run-nodeids", metavar="FILE",
                help="run only the node ids FILE lists (one a line), in its order (gpuhil run's reruns)")


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid")  # set by xdist on its workers only
    results_dir = config.getoption("--results-dir")
    # Pins a worker's GPU first. The perf phase of a run keeps its workers' notes apart (xdist reuses ids).
    isolation.register(config, Path(results_dir) if results_dir else None,
                       "notes-perf" if config.getoption("--perf-only") else "notes")
    try:
        ctx = _session(config)
        _check_selection(config.getoption("--selection"), ctx.matrix)
    except (matrix_mod.MatrixError, ids.InvalidValue, *session_mod.SETUP_ERRORS) as exc:
        raise pytest.UsageError(f"gpuhil: {exc}") from None
    config.stash[CTX] = ctx
    config.stash[COMPILE_CACHE] = _compile_cache_scope(config)
    config.pluginmanager.register(phase_times.PhaseTimes(), "gpuhil-phase-times")  # the report's time per phase
    mx = ctx.matrix
    if _perf(config):
        from .perf.recorder import PerfRecorder, new_run_id

        run_id = new_run_id()
        results = Path(config.getoption("--results-dir") or Path(config.rootpath) / "results" / f"perf-{run_id}")
        config.stash[PERF] = PerfRecorder(results, ctx, worker or "main", run_id)
    for sku in mx.skus.values():
        config.addinivalue_line("markers", f"{sku.id}: in the {sku.name} runner's selection")
    for arch in matrix_mod.ARCH_MARKERS:
        config.addinivalue_line("markers", f"{arch}: in the selection of a SKU of this arch")
    for marker in sorted({m for sku in mx.skus.values() for m in sku.markers}):
        config.addinivalue_line("markers", f"{marker}: in the selection of a SKU the catalog tags '{marker}'")


def _perf(config: pytest.Config) -> bool:
    return config.getoption("--perf") or config.getoption("--perf-only")


def _session(config: pytest.Config) -> session_mod.Session:
    session_file = config.getoption("--session-file")
    if session_file is not None:
        given = [f for f in ("--emulate-sku", "--target-sku", "--matrix") if config.getoption(f) is not None]
        if given:
            raise session_mod.SessionSetupError(f"--session-file carries the session: leave out {', '.join(given)}")
        return session_mod.load_file(Path(session_file), suites_dir=Path(config.rootpath) / "suites")
    path = (config.getoption("--matrix") or ids.env_value("GPUHIL_MATRIX")
            or Path(config.rootpath) / matrix_mod.MATRIX_FILE)
    return session_mod.build(matrix_mod.load(path), emulate=config.getoption("--emulate-sku"),
                             target=config.getoption("--target-sku"))


def _compile_cache_scope(config: pytest.Config) -> contextlib.ExitStack:
    """This process's compiles go through --compile-cache, until pytest_unconfigure."""
    from .kernels import compile_cache

    stack = contextlib.ExitStack()
    folder = config.getoption("--compile-cache")
    if folder is None:
        return stack
    if not folder.strip():
        raise pytest.UsageError("gpuhil: --compile-cache: empty value: give a folder, or leave the option out")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise pytest.UsageError(f"gpuhil: --compile-cache {folder}: is a file, not a folder")
    try:
        max_bytes = compile_cache.parse_size(config.getoption("--compile-cache-max-bytes"))
    except ValueError as exc:
        raise pytest.UsageError(f"gpuhil: --compile-cache-max-bytes: {exc}") from None
    stack.enter_context(compile_cache.scope(compile_cache.CompileCache(Path(folder).resolve(), max_bytes)))
    return stack


def pytest_unconfigure(config: pytest.Config) -> None:
    scope = config.stash.get(COMPILE_CACHE, None)
    if scope is not None:
        scope.close()


def _check_selection(selection: str | None, mx) -> None:
    if selection is not None and selection not in mx.selections:
        raise session_mod.SessionSetupError(f"--selection: the catalog {mx.path} has no selection '{selection}' "
                                            f"(it has: {', '.join(mx.selections)})")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .kernels.compile_cache import scoped

    cache = scoped()
    return config.stash[CTX].header_lines() + ([f"compile cache: {cache.root}"] if cache else [])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ctx = config.stash[CTX]
    facts = ctx.caps.facts()
    keep, dropped = [], []
    tier = _tier(config, ctx.matrix)
    perf, perf_only = _perf(config), config.getoption("--perf-only")
    default_timeouts = not (config.getoption("timeout", None) or config.getini("timeout"))
    for item in items:
        case = identify(item)
        if case.provider is not None:  # junit.xml carries it, for the report's per-provider outcomes
            item.user_properties.append(("provider", case.provider))
        if default_timeouts and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(_tier_timeout(item, case.tier)))
        for sku_id, sel in ctx.matrix.selections.items():
            if selected(sel, case):
                sku = ctx.matrix.skus[sku_id]
                for marker in (sku_id, sku.arch, *sku.markers):
                    item.add_marker(marker)
        _gate(item, ctx)
        for ki in ctx.matrix.known_issues:
            if applies(ki, case) and ki.predicate.holds(facts):
                _mark_known_issue(item, ki)
        timed = item.get_closest_marker("perf") is not None
        if (case.tier == "full" and tier == "default") or (timed and not perf) or (perf_only and not timed):
            dropped.append(item)
        else:
            keep.append(item)
    selection = config.getoption("--selection")
    if selection is not None:
        keep, outside = _split_by_selection(keep, selection)
        dropped += outside
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    listed = config.getoption("--run-nodeids")
    if listed is not None:
        run_order.keep_listed(config, items, Path(listed))


def _split_by_selection(items: list[pytest.Item], selection: str) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """Cases of suites/ outside the selection (they lack its SKU marker) apart from the rest."""
    inside, outside = [], []
    for item in items:
        out = identify(item).suite is not None and item.get_closest_marker(selection) is None
        (outside if out else inside).append(item)
    return inside, outside


# Seconds a test may take before it is cut (pytest-timeout; `@pytest.mark.timeout` or --timeout win).
# A first CuTe DSL compile of a large kernel takes tens of seconds; a full-tier numerics case on a
# DeepSeek-V3 layer, or a perf case with its ceilings, a few minutes.
TIER_TIMEOUTS = {"default": 300, "full": 900, "perf": 900}


def _tier_timeout(item: pytest.Item, tier: str) -> int:
    return TIER_TIMEOUTS["perf" if item.get_closest_marker("perf") else tier]


def _tier(config: pytest.Config, mx) -> str:
    """`--tier` when given (`gpuhil run` always gives it), else the `--selection`'s own tier, else
    what an interactive `-m` asks for."""
    selection = config.getoption("--selection")
    return config.getoption("--tier") or (mx.selections[selection].tier if selection else
                                          _tier_from_markexpr(config.getoption("-m"), mx))


def _tier_from_markexpr(expr: str, mx) -> str:
    """Interactive runs only: `-m <sku, arch or catalog marker>` asks for those runners' lists, whose own
    tiers then apply; anything else (`-m gpu`, `-m "not perf"`) keeps the default tier."""
    names = set(mx.skus) | set(matrix_mod.ARCH_MARKERS) | {m for sku in mx.skus.values() for m in sku.markers}
    return "full" if expr and names & set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)) else "default"


def _gate(item: pytest.Item, ctx) -> None:
    for mark in item.iter_markers("requires"):
        for req in _requirements(mark, ctx.caps):
            if req.device_memory_bytes:
                ctx = _with_free_memory(item.config)
            verdict = ctx.verdict(req)
            if not verdict.ok:
                item.add_marker(pytest.mark.skip(reason=f"requires {req.describe()}: {verdict.explain()}"))
                return


def _with_free_memory(config: pytest.Config):
    """The session with this process's free device memory, read once, when the first case asks for
    device memory (a case's need is judged against it: `gating.check`); unchanged without a device."""
    ctx = config.stash[CTX]
    if ctx.attached and ctx.caps.mem_free_bytes is None:
        import dataclasses

        from .device.current import with_free_memory

        ctx = config.stash[CTX] = dataclasses.replace(ctx, caps=with_free_memory(ctx.caps))
    return ctx


def _requirements(mark, caps) -> tuple[Requirements, ...]:
    """A `requires` marker's Requirements: given, built from kwargs, or asked of a callable with the
    session's capabilities (what a provider's dispatch will pick on this device)."""
    if not mark.args:
        return (Requirements(**mark.kwargs),)
    got = mark.args[0](caps) if callable(mark.args[0]) else mark.args[0]
    return (got,) if isinstance(got, Requirements) else tuple(got)


def _argnames(mark) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking `sku` runs once per SKU of the session's catalog (--matrix included), filtered
    by an optional `skus(where=predicate, ids=fn)` marker."""
    if "sku" not in metafunc.fixturenames or any("sku" in _argnames(m) for m in metafunc.definition.iter_markers("parametrize")):
        return
    mark = metafunc.definition.get_closest_marker("skus")
    where = mark.kwargs.get("where", lambda sku: True) if mark else (lambda sku: True)
    ids = mark.kwargs.get("ids", lambda sku: sku.id) if mark else (lambda sku: sku.id)
    skus = [s for s in metafunc.config.stash[CTX].matrix.skus.values() if where(s)]
    metafunc.parametrize("sku", skus, ids=[ids(s) for s in skus])


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
def gpuhil_session(request: pytest.FixtureRequest) -> session_mod.Session:
    """The session's probe, catalog match and capabilities."""
    return request.config.stash[CTX]
