"""The layering contract (DESIGN.md §2): imports point one way.

* core (everything outside ``nn``, ``studies``, ``cli``): imports neither torch nor any
  layer above it — module-level and function-level imports alike;
* ``imcsim.nn`` (the torch adapter): the core and itself, never ``studies`` or ``cli``;
* ``imcsim.studies``: anything but ``cli``;
* ``imcsim/__init__.py`` is the facade: its lazy names (PEP 562) may point anywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import imcsim

ROOT = Path(imcsim.__file__).parent
LAYERS = {"core": 0, "nn": 1, "studies": 2, "cli": 3}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("nn", "studies", "cli"):
        return parts[1]
    return "core"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(path: Path, package: str = "") -> set[str]:
    """Every module ``path`` imports anywhere in its body (absolute names)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


SOURCES = [p for p in ROOT.rglob("*.py") if p != ROOT / "__init__.py"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    mine = layer_of(module_name(path))
    for target in sorted(imports_of(path, package_of(path))):
        if target == "torch" or target.startswith("torch."):
            assert mine != "core", f"{path.relative_to(ROOT)} (core) imports {target}"
        if target.startswith("imcsim."):
            assert LAYERS[layer_of(target)] <= LAYERS[mine], (
                f"{path.relative_to(ROOT)} ({mine}) imports {target} ({layer_of(target)})"
            )


def test_the_graph_walker_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from imcsim.studies import zoo\n    import torch.nn\n")
    assert {"imcsim.studies", "imcsim.studies.zoo", "torch.nn"} <= imports_of(source)


def test_import_imcsim_loads_no_torch() -> None:
    code = "import imcsim, sys; assert 'torch' not in sys.modules, 'torch imported'"
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
