"""The architecture the README describes, checked: no import cycle, and dependencies run one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("cli", "backends", "formats"):
        for path in (ROOT / top).rglob("*.py"):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found["ckpt." + dotted.removesuffix(".__init__")] = path
    return found


def _runtime_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """What a module imports when it runs (at its top or inside functions), not what it names
    under ``if TYPE_CHECKING:`` for annotations only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ckpt"):
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name.startswith("ckpt"))
    return {name for name in out if name in known}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _runtime_imports(path, known) for name, path in known.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_dependencies_run_one_way() -> None:
    """formats/ and backends/core depend on the core only; no driver or operation imports the CLI;
    ops/ never asks for a driver (a store's fast path is its own capability)."""
    for module, imports in _graph().items():
        if module.startswith(("ckpt.formats", "ckpt.backends.core")):
            assert all(i.startswith(("ckpt.formats", "ckpt.backends.core")) for i in imports), (module, imports)
        if module.startswith("ckpt.backends"):
            assert not any(i.startswith("ckpt.cli") for i in imports), (module, imports)
        if module.startswith("ckpt.backends.ops"):
            drivers = ("sqlite", "postgres", "redis", "mongodb", "couchbase")
            assert not any(i.startswith(tuple(f"ckpt.backends.{d}" for d in drivers)) for i in imports), module
