"""Every notebook runs top to bottom on a headless kernel.

Long studies run as their quick variant: the test shrinks the notebook's study parameters
(the saved notebook keeps the full study and its outputs) and checks that every
substitution still applies, so a renamed parameter cannot silently bring the long run back.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
QUICK = {  # notebook -> {text in a code cell: its quick variant}
    "02_compression_study": {"images=100,": "images=20,", "finetune_images=2048": "finetune_images=128"},
}


def quick_variant(book: nbformat.NotebookNode, name: str) -> None:
    for old, new in QUICK.get(name, {}).items():
        cells = [c for c in book.cells if c.cell_type == "code" and old in c.source]
        assert cells, f"{name}: no code cell contains {old!r} (update QUICK)"
        for cell in cells:
            cell.source = cell.source.replace(old, new)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    quick_variant(book, path.stem)
    NotebookClient(book, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
