"""Keep the committed chapter notebooks clean, with nbval's reference outputs.

A committed notebook holds no execution counts, no stray metadata and no
outputs -- except in cells tagged ``nbval-check-output``, whose outputs are
what ``pytest --nbval-lax`` compares a fresh execution against. (The tag, not
nbval's ``# NBVAL_CHECK_OUTPUT`` comment, so the rendered book shows no marker.) Refresh them
after changing a chapter::

    python -m tumornb.notebooks refresh notebooks/01_eda.ipynb
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path

import nbformat

__all__ = ["CHECK_TAG", "clean_notebook", "is_checked", "refresh_checked_outputs"]

CHECK_TAG = "nbval-check-output"
_KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def is_checked(cell) -> bool:
    """Whether nbval compares this cell's output (``--nbval-lax`` mode).

    Parameters
    ----------
    cell : nbformat.NotebookNode

    Returns
    -------
    bool
    """
    return cell.cell_type == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` as it should be committed (see the module docstring).

    Parameters
    ----------
    nb : nbformat.NotebookNode

    Returns
    -------
    nbformat.NotebookNode
        A cleaned copy; ``nb`` is not modified.
    """
    nb = copy.deepcopy(nb)
    nb.metadata = {k: nb.metadata[k] for k in _KEEP_NOTEBOOK_METADATA if k in nb.metadata}
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}
    code_cells = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        cell.metadata = {"tags": tags} if tags else {}
        cell.pop("id", None)
        if cell.cell_type != "code":
            continue
        code_cells += 1
        # nbval skips a cell with outputs but no execution count ("unrun"): checked
        # cells get their position among the code cells, which never changes by a re-run.
        count = code_cells if is_checked(cell) and cell.outputs else None
        cell.execution_count = count
        if not is_checked(cell):
            cell.outputs = []
        for output in cell.outputs:
            if output.get("output_type") == "execute_result":
                output["execution_count"] = count
    nb.nbformat, nb.nbformat_minor = 4, 4
    return nb


def refresh_checked_outputs(path: str | os.PathLike[str]) -> Path:
    """Execute a chapter with its own default parameters and store the cleaned result.

    Parameters
    ----------
    path : path-like
        A chapter in ``notebooks/``.

    Returns
    -------
    Path
    """
    from tumornb.execute import execute_notebook

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        executed = execute_notebook(path, Path(tmp) / path.name, {}, cwd=path.parent, progress=True)
        nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # papermill's own bookkeeping
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(clean_notebook(nb), path)
    return path


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "refresh":
        sys.exit("usage: python -m tumornb.notebooks refresh NOTEBOOK...")
    for name in sys.argv[2:]:
        print("refreshed", refresh_checked_outputs(name))
