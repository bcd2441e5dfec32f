"""The floors of docs/architecture.md, checked on the source: an app imports only apps on lower
floors (the ground, o2o/, imports none), nothing star-imports, and no two modules import each
other, directly or round a longer loop.  Imports inside functions count like any other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# docs/architecture.md draws these floors; an arrow may only point down.
FLOORS = {
    "o2o": 0,
    "catalog": 1, "stores": 1,
    "members": 2, "inventory": 2, "promotions": 2,
    "payments": 3,
    "orders": 4,
    "pos": 5, "reporting": 5, "integrations": 5, "settlement": 5,
}


def product_modules() -> dict[str, Path]:
    """Every module of the product (not its tests or migrations), by dotted name."""
    found = {}
    for app in FLOORS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = product_modules()


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return out


def module_edges(name: str, path: Path) -> set[str]:
    """The product modules ``name`` depends on: ``from a.b import c`` names a.b.c when c is a module."""
    edges = set()
    for _line, module, names in imports_of(path):
        submodules = {f"{module}.{n}" for n in names} & MODULES.keys()
        if submodules:
            edges |= submodules
            if len(submodules) < len(names):
                edges.add(module)
        else:
            edges.add(module)
    return {e for e in edges if e in MODULES and e != name}


def test_every_app_is_on_a_floor():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")} - {"bench"}
    assert apps == set(FLOORS), "add the new app to FLOORS and to docs/architecture.md"


def test_imports_point_down_the_floors_only():
    wrong = []
    for name, path in MODULES.items():
        app = name.split(".")[0]
        for line, module, _names in imports_of(path):
            other = module.split(".")[0]
            if other in FLOORS and other != app and FLOORS[other] >= FLOORS[app]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                             f"(floor {FLOORS[app]} → floor {FLOORS[other]})")
    assert wrong == []


def test_nothing_star_imports():
    # One exception: a settings module extending another (Django's settings layering) glues no app.
    starred = [f"{path.relative_to(ROOT)}:{node.lineno}"
               for path in [*MODULES.values(), *ROOT.glob("*/tests/**/*.py"), *ROOT.glob("tests/**/*.py")]
               if not path.name.endswith(("settings.py", "settings_test.py"))
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)]
    assert starred == []


def test_no_import_cycle_between_modules():
    graph = {name: module_edges(name, path) for name, path in MODULES.items()}
    cycles = strongly_connected(graph)
    assert cycles == [], f"modules that import each other: {cycles}"


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_loops(graph, expected):
    assert strongly_connected(graph) == expected


def test_the_floor_check_sees_an_upward_import(tmp_path):
    upward = tmp_path / "upward.py"
    upward.write_text("def f():\n    from orders.models import Order\n", encoding="utf-8")
    assert [m for _line, m, _names in imports_of(upward)] == ["orders.models"]
