"""The library's layout stays readable: no import cycles between modules (lazy imports included),
no module past ~600 lines, kernels and ops never reach the catalog or the session, and no module keeps
device state: nothing a function mutates lives at module level, and no cached function probes a device
or builds capabilities (capabilities are passed explicitly, probed per call where they are not)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "gpuhil"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """gpuhil modules `path` imports anywhere in its body: `from pkg import sub` counts as `pkg.sub`
    when that is a module, as `pkg` otherwise."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gpuhil")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("gpuhil"):
                for a in node.names:
                    found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    return {m: {i for i in imports_of(p, set(modules)) if i in modules and i != m} for m, p in modules.items()}


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(g[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_modules_are_readable_in_one_sitting():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def reachable(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for n in g[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return seen


def test_kernels_and_ops_never_reach_the_catalog_or_the_session():
    """A kernel or an op takes capabilities as an argument: importing one (lazily included) must not
    pull in the YAML catalog, pydantic or the session."""
    g = graph()
    banned = ("gpuhil.catalog", "gpuhil.session")
    hits = {m: sorted(n for n in reachable(g, m) if n.startswith(banned))
            for m in g if m.startswith(("gpuhil.kernels", "gpuhil.ops"))}
    assert not {m: h for m, h in hits.items() if h}


def module_level_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "pop", "popitem", "clear", "remove",
            "discard", "__setitem__"}


def module_state_writes(path: Path) -> list[str]:
    """Where a function writes module state: a `global` statement, or an item assignment or mutating
    call on a name bound at module level and not in the function."""
    tree = ast.parse(path.read_text())
    module = module_level_names(tree)
    found = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        local = {a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs}
        local |= {t.id for n in ast.walk(fn) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.For, ast.With))
                  for t in ast.walk(n) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        for node in ast.walk(fn):
            if isinstance(node, ast.Global):
                found.append(f"{fn.name}: global {', '.join(node.names)}")
            target = None
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name):
                        target = t.value.id
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
                target = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if target in module and target not in local:
                found.append(f"{fn.name}: writes module-level {target}")
    return found


def test_no_function_writes_module_state():
    hits = {str(p.relative_to(SRC)): w for p in SRC.rglob("*.py") if (w := module_state_writes(p))}
    assert not hits, hits


# What reads a device or makes capabilities of one: a process must never keep their result.
DEVICE_READS = {"probe", "probed_capabilities", "device_capabilities", "catalog_capabilities", "build",
                "from_fingerprint"}
CACHES = {"cache", "lru_cache", "cached_property"}


def called_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def cached_device_reads(path: Path) -> list[str]:
    """Cached functions (functools.cache, lru_cache, cached_property) that probe a device or build
    capabilities. `probe(driver=...)` is handed its driver (e.g. none, for software facts only)."""
    found = []
    for fn in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)):
        decorators = {d.func if isinstance(d, ast.Call) else d for d in fn.decorator_list}
        if not any((d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)) in CACHES for d in decorators):
            continue
        params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}  # a callable it is handed is not ours
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
            name = called_name(call)
            if name in DEVICE_READS and name not in params and not (name == "probe" and any(k.arg == "driver" for k in call.keywords)):
                found.append(f"{fn.name} calls {name}")
    return found


def test_no_cached_function_reads_a_device():
    hits = {str(p.relative_to(SRC)): r for p in SRC.rglob("*.py") if (r := cached_device_reads(p))}
    assert not hits, hits


def test_device_capabilities_are_probed_on_every_call(monkeypatch):
    from gpuhil.device import current
    from gpuhil.device.probe import DeviceFingerprint

    seen = iter([DeviceFingerprint(gpu_present=True, name="first", cc="9.0", arch_family=9, sm_count=132),
                 DeviceFingerprint(gpu_present=True, name="second", cc="9.0", arch_family=9, sm_count=78)])
    monkeypatch.setattr(current, "probe", lambda index=0: next(seen))
    monkeypatch.setattr(current.torch_facts, "confirmed_on_device", lambda ops: ops)
    assert [current.device_capabilities().sm_count for _ in range(2)] == [132, 78]
