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
