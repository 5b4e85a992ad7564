"""The committed notebooks are clean, and nbval has outputs to compare against."""

from pathlib import Path

import nbformat
import pytest

from tumornb.notebooks import clean_notebook, is_checked
from tumornb.runner import chapter_notebooks

NOTEBOOKS = list(chapter_notebooks().values())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path: Path):
    """Check that cleaning the committed notebook changes nothing (refresh with tumornb.notebooks)."""
    nb = nbformat.read(path, as_version=4)
    assert clean_notebook(nb) == nb, f"{path} is not clean: python -m tumornb.notebooks refresh {path}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_parameters_and_checked_outputs(path: Path):
    """Check the papermill parameters cell and that every nbval-checked cell has a stored output."""
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "run_dir" in tagged[0].source and "seed" in tagged[0].source
    checked = [c for c in nb.cells if is_checked(c)]
    assert checked and all(c.outputs for c in checked)


SKELETON_START = ("Overview", "Prerequisites", "Parameters", "Imports and seed")
SKELETON_END = ("Summary", "What's next", "Resources")
MAX_CODE_LINES = 15


def _sections(nb) -> list[str]:
    return [
        line.removeprefix("## ").strip()
        for cell in nb.cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_follows_the_skeleton(path: Path):
    """Check the sections every chapter shares, and that its first code cell after the parameters seeds."""
    nb = nbformat.read(path, as_version=4)
    sections = _sections(nb)
    assert tuple(sections[: len(SKELETON_START)]) == SKELETON_START, sections
    assert tuple(sections[-len(SKELETON_END) :]) == SKELETON_END, sections
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "seed_everything(seed)" in code[1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_has_thin_cells_and_a_mechanism(path: Path):
    """Check that no code cell is long, and that a tagged cell works one mechanism out after a formula."""
    nb = nbformat.read(path, as_version=4)
    long = {i: len(c.source.splitlines()) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    long = {i: n for i, n in long.items() if n > MAX_CODE_LINES}
    assert not long, f"code cells over {MAX_CODE_LINES} lines (cell index: lines): {long}"
    mechanisms = [i for i, c in enumerate(nb.cells) if "mechanism" in c.metadata.get("tags", [])]
    assert mechanisms, "no cell tagged 'mechanism'"
    for i in mechanisms:
        assert nb.cells[i].cell_type == "code"
        assert nb.cells[i - 1].cell_type == "markdown" and "$" in nb.cells[i - 1].source, (
            f"cell {i}: the markdown before a mechanism cell states its formula"
        )


def test_refresh_stores_the_checked_cells_outputs_through_the_shared_executor(tmp_path):
    """Check that refreshing a chapter keeps the checked cell's new output, and nothing else beside it."""
    from tumornb.notebooks import CHECK_TAG, refresh_checked_outputs

    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernel})
    parameters, checked = nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print(x + 1)")
    parameters.metadata["tags"], checked.metadata["tags"] = ["parameters"], [CHECK_TAG]
    nb.cells = [parameters, checked]
    nbformat.write(nb, tmp_path / "01_t.ipynb")
    refresh_checked_outputs(tmp_path / "01_t.ipynb")
    refreshed = nbformat.read(tmp_path / "01_t.ipynb", as_version=4)
    assert [o.get("text") for o in refreshed.cells[1].outputs] == ["2\n"]
    assert refreshed.cells[0].outputs == [] and clean_notebook(refreshed) == refreshed
    assert [p.name for p in tmp_path.iterdir()] == ["01_t.ipynb"]
