"""The package layout is the architecture, so the import graph between packages is checked.

Each first-level package of ``rollback_bot`` (and each top-level module) is a node; an
import anywhere inside it of another one is an edge. The graph must have no cycle, nothing
may import the composition root (``app``) or the CLI, only the web layer and the entry
points see the ``services`` bundle, and the product never imports the loopback stand-ins.

The layers, bottom to top: storage, clock, config, metrics, ids, timeline; catalog; kube;
executors; rollbacks; incidents; alerts; slack; web; services, app, cli.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import rollback_bot

ROOT = Path(rollback_bot.__file__).resolve().parent
#: Only these sit above everything else and may import any package.
ENTRY_POINTS = {"app", "cli"}
#: The bundle of composed services is for the layers that are handed it.
SERVICES_USERS = {"web", *ENTRY_POINTS}


def _node(module: str) -> str | None:
    """The first-level package or module of ``rollback_bot`` that ``module`` names, if any."""
    parts = module.split(".")
    if parts[0] != "rollback_bot" or len(parts) < 2:
        return None
    name = parts[1]
    return name if (ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file() else None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        source = path.relative_to(ROOT).parts[0].removesuffix(".py")
        if source == "__init__":
            continue
        graph.setdefault(source, set())
        targets = {_node(module) for module in _imports(path)}
        graph[source] |= {t for t in targets if t is not None and t != source}
    return dict(graph)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_package_graph_has_no_cycle() -> None:
    cycle = _cycle(package_graph())
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle or [])


def test_nothing_imports_the_composition_root_or_the_cli() -> None:
    offenders = {
        source: sorted(targets & ENTRY_POINTS)
        for source, targets in package_graph().items()
        if source not in ENTRY_POINTS and targets & ENTRY_POINTS
    }
    assert offenders == {}


def test_only_the_web_layer_and_the_entry_points_see_the_services_bundle() -> None:
    offenders = sorted(
        source
        for source, targets in package_graph().items()
        if "services" in targets and source not in SERVICES_USERS
    )
    assert offenders == []


def test_the_product_never_imports_the_stand_ins() -> None:
    # The CLI's `demo` is the one door, opened lazily and only when the sandbox is installed.
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if path.name != "cli.py" and any(m.split(".")[0] == "sandbox" for m in _imports(path))
    ]
    assert offenders == []


def test_the_graph_sees_real_edges() -> None:
    # Guards the checker itself: an empty graph would make the tests above pass vacuously.
    graph = package_graph()
    assert "storage" in graph["rollbacks"]
    assert "rollbacks" in graph["app"]
    assert "services" in graph["web"]  # a top-level module is a node as well as a package
