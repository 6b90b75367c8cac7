"""The modules of ``daclip_kit`` import each other without cycles (docs/architecture.md, "Layers").

The graph is read from the source with :mod:`ast`, not by importing anything: every ``import`` and
``from ... import`` statement counts, at module level and inside functions and methods alike
(a function-level import is how a cycle hides), with relative imports resolved against the
importing module. Imports under ``if TYPE_CHECKING:`` are left out: they never run. ``from P import
name`` is an edge to the submodule ``P.name`` when there is one, else to ``P`` (its
``__init__``). Importing ``a.b.c`` is an edge to ``a.b.c`` only (not to the packages above it,
which every submodule would otherwise depend on).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT_PACKAGE = "daclip_kit"


def module_names(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` (``__init__`` is the package)."""
    names = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node of ``tree``, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or the longest of its prefixes that is a module of the package, else ``None``."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(src: Path = SRC, package: str = ROOT_PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body."""
    modules = module_names(src, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [_known(alias.name, modules) for alias in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    if not is_package:
                        base = base[:-1]
                    if node.level > 1:
                        base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else _known(source, modules))
            graph[name].update(t for t in targets if t is not None and t != name)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
    return sorted(found)


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first), for the message."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return paths[node] + [start]
            if child not in paths:
                paths[child] = paths[node] + [child]
                queue.append(child)
    return component


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 100 and "daclip_kit.weights.hub" in graph  # the whole package was read
    cycles = [" -> ".join(one_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, ("import cycles (break each by moving what both sides need into a module below them):\n"
                        + "\n".join(cycles))


def test_the_two_named_cycles_stay_broken():
    """The cycles of issue 29 stay broken, at any depth: ``weights.fetch`` uses ``weights.hub`` (and
    both ``weights.paths``), never the reverse; ``train.config`` (the trainer table) uses
    ``train.distill_config`` (and both ``train.sections``), never the reverse."""
    graph = import_graph()

    def reaches(a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            node = todo.pop()
            if node == b:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return False

    assert not reaches("daclip_kit.weights.hub", "daclip_kit.weights.fetch")
    assert not reaches("daclip_kit.train.distill_config", "daclip_kit.train.config")
    assert "daclip_kit.weights.paths" in graph["daclip_kit.weights.hub"] & graph["daclip_kit.weights.fetch"]
    assert "daclip_kit.train.sections" in graph["daclip_kit.train.config"] & graph["daclip_kit.train.distill_config"]


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("b_text, cyclic", [
    ("from . import a\n", True),                                   # module level
    ("def f():\n    from .a import X\n", True),                    # inside a function
    ("import pkg.sub.c\n", False),                                 # c imports nobody
    ("class K:\n    def m(self):\n        import pkg.sub.a\n", True),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X\n", False),
    ("from .. import top\n", True),                                # top imports a
])
def test_the_graph_sees_every_kind_of_import(tmp_path, b_text, cyclic):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/top.py": "from .sub.a import X\n",
                      "pkg/sub/__init__.py": "", "pkg/sub/a.py": "from .b import Y\nX = 1\n",
                      "pkg/sub/b.py": b_text, "pkg/sub/c.py": ""})
    graph = import_graph(tmp_path, "pkg")
    assert "pkg.sub.b" in graph["pkg.sub.a"]
    assert bool(strongly_connected(graph)) is cyclic, graph
