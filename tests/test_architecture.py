"""The layering contract (DESIGN.md §2, docs/architecture.md): imports point one way and
form no circle.

Layer order, every import counted (module-level and function-level alike; imports under
``if TYPE_CHECKING:`` are annotations only and excluded)::

    core (everything outside the packages below; no torch)
      → nn (the torch adapter)
        → zoo (models, checkpoints, data, the user's workload) | train (training loop,
          data-parallel workers, gradient compressors) — peers that do not import each other
          → studies (experiments) → cli

``imcsim/__init__.py`` is the facade: its lazy names (PEP 562) may point anywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import imcsim

ROOT = Path(imcsim.__file__).parent
LAYERS = {"core": 0, "nn": 1, "zoo": 2, "train": 2, "studies": 3, "cli": 4}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "core"


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path, root: Path = ROOT) -> str:
    name = module_name(path, root)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST, annotations: bool = False):
    """Every import statement in ``tree``; ``if TYPE_CHECKING:`` bodies only with
    ``annotations``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if _is_type_checking(node) and not annotations:
            children = node.orelse
        stack.extend(children)


def imports_with_lines(path: Path, package: str = "",
                       annotations: bool = False) -> dict[str, int]:
    """Every module ``path`` imports anywhere in its body (absolute names) -> first line
    (imports for annotations only, under ``TYPE_CHECKING``, with ``annotations``)."""
    found: dict[str, int] = {}
    for node in _import_nodes(ast.parse(path.read_text()), annotations):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            found.setdefault(name, node.lineno)
    return found


def imports_of(path: Path, package: str = "") -> set[str]:
    return set(imports_with_lines(path, package))


def sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if p != root / "__init__.py")


SOURCES = sources(ROOT)


def import_graph(root: Path, annotations: bool = False) -> dict[str, dict[str, int]]:
    """Module -> {imported module of the same tree: line}.  ``from pkg import name`` counts
    as an import of ``pkg.name`` when that is a module, else of ``pkg`` itself."""
    paths = {module_name(p, root): p for p in sources(root)}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        for target, line in imports_with_lines(path, package_of(path, root),
                                               annotations).items():
            if target in paths and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    for edges in graph.values():  # a package import is implied by its submodules'
        for target in [t for t in edges if any(s.startswith(t + ".") for s in edges)]:
            del edges[target]
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a closed path
    ``a -> b -> … -> a`` through the component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(_cycle_through(sorted(component), graph))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _cycle_through(component: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """A shortest closed path from the component's first module back to itself."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return component


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + \
        f" -> {cycle[-1]}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    mine = layer_of(module_name(path))
    for target, line in sorted(imports_with_lines(path, package_of(path)).items()):
        where = f"{path.relative_to(ROOT)}:{line} ({mine})"
        if target == "torch" or target.startswith("torch."):
            assert mine != "core", f"{where} imports {target}"
        if target.startswith("imcsim.") and layer_of(target) != mine:
            theirs = layer_of(target)
            assert LAYERS[theirs] < LAYERS[mine], f"{where} imports {target} ({theirs})"


def test_no_import_circles() -> None:
    """Not even through annotations: two modules whose types name each other are one."""
    graph = import_graph(ROOT, annotations=True)
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(describe(c, graph) for c in found)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "imcsim"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_deliberate_circle_is_found_and_named(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "a.py": "from imcsim.b import x\n",
        "b.py": "import os\n\ndef f():\n    from imcsim import c\n",  # function level counts
        "c.py": "from . import a\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from imcsim import e\n",
        "e.py": "import imcsim.d\n",  # an annotation-only import back is no circle
    })
    graph = import_graph(root)
    found = circles(graph)
    assert found == [["imcsim.a", "imcsim.b", "imcsim.c", "imcsim.a"]]
    assert describe(found[0], graph) == ("imcsim.a (line 1) -> imcsim.b (line 4) -> "
                                         "imcsim.c (line 1) -> imcsim.a")
    typed = circles(import_graph(root, annotations=True))  # what the circle test reads
    assert ["imcsim.d", "imcsim.e", "imcsim.d"] in typed and len(typed) == 2


def test_the_graph_walker_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from imcsim.studies import zoo\n    import torch.nn\n")
    assert {"imcsim.studies", "imcsim.studies.zoo", "torch.nn"} <= imports_of(source)


def test_import_imcsim_loads_no_torch() -> None:
    code = ("import imcsim, imcsim.zoo, imcsim.train, imcsim.studies, sys; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_old_module_paths_still_import_with_a_warning() -> None:
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "try:\n    import imcsim.studies.train\nexcept DeprecationWarning as w:\n"
            "    assert 'imcsim.train.loop' in str(w)\nelse:\n    raise SystemExit('no warning')\n"
            "warnings.simplefilter('ignore')\n"
            "from imcsim.studies import build_model, example_input\n"
            "import imcsim.studies.zoo as old, imcsim.zoo.checkpoints as new\n"
            "assert old is new and build_model.__module__ == 'imcsim.zoo.models'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elts = target.elts if isinstance(target, ast.Tuple) else [target]
                names.update(t.id for t in elts if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("path", [p for p in SOURCES if p.name not in ("__init__.py",
                                                                       "__main__.py")],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_declares_its_public_names(path: Path) -> None:
    """``__all__`` in every module, naming only what the module defines or imports."""
    tree = ast.parse(path.read_text())
    declared = [n for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert declared, f"{path.relative_to(ROOT)} has no __all__"
    names = ast.literal_eval(declared[0].value)
    assert set(names) <= _top_level_names(tree), set(names) - _top_level_names(tree)
