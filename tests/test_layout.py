"""The library's layout stays readable: no import cycles between modules (lazy imports included),
no module past ~600 lines, and no module-level device or catalog state (capabilities are passed)."""

import ast
import re
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


def test_no_module_level_capabilities_or_catalog_state():
    pattern = re.compile(r"^(_current|_active)\b|^\s*global\s+\w+(\s*,\s*\w+)*\s*$|GPUHIL_EMULATE_SKU", re.M)
    hits = {str(p.relative_to(SRC)): pattern.findall(p.read_text()) for p in SRC.rglob("*.py")}
    assert not {k: v for k, v in hits.items() if v}
