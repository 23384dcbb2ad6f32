"""No module-level import cycle inside rnnkit: read from the source with ``ast``, no module imported.

A cycle that only the import order in ``rnnkit/__init__.py`` keeps working breaks as soon as
someone reorders that file; lower layers (cells, sequences, kernels) must never import higher
ones (layers, models, tasks). Imports inside functions are not counted: they run later.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnnkit"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The rnnkit modules ``module`` imports at module level, with the packages whose __init__ that runs."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        # importing rnnkit.a.b runs rnnkit.a first; the importer's own ancestors are already running
        while target and target != "rnnkit":
            if target != module and not module.startswith(target + "."):
                found.add(target)
            target = target.rpartition(".")[0]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_module_level_import_cycle():
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {module: _imports(path, module, set(paths)) for module, path in paths.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_kernels_never_import_layers():
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    for module, path in paths.items():
        if module.startswith("rnnkit.kernels"):
            imported = _imports(path, module, set(paths))
            assert not {name for name in imported if name.startswith(("rnnkit.layers", "rnnkit.models"))}, module
