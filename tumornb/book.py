"""Render a run's executed notebooks as a static HTML book (Jupyter Book 1.x).

Jupyter Book only renders pages inside its source folder, so the build stages
one: the project's ``_config.yml`` and ``book/`` pages, the run's executed
notebooks, a table of contents listing only the chapters that ran, and the
Vega libraries for offline charts. Notebooks are rendered as executed, never
re-run.

Altair's HTML output fetches vega, vega-lite and vega-embed from a CDN, so its
charts are blank offline. The book ships the bundle from ``vl-convert`` once in
``_static/`` (Jupyter Book adds every ``_static/*.js`` to every page head),
wrapped in a function scope so its top-level names do not collide with
Sphinx's globals, and sets ``VEGA_DEBUG`` so Altair's loader uses it instead
of the CDN.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tumornb.paths import RunDir
from tumornb.reporting import reporting_page
from tumornb.runner import chapter_notebooks, project_root

__all__ = ["build_book", "stage_book", "vega_offline_script"]

#: Book pages that come before the chapters, from the project's ``book/`` folder.
FRONT_PAGES = ("intro",)
#: Pages after the chapters.
BACK_PAGES = ("reproducibility", "cluster", "api")
#: Jupyter Book adds every ``_static/*.css`` to every page: long code lines wrap at the page
#: width instead of scrolling out of sight.
BOOK_CSS = """div.cell_input pre, div.highlight pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""
#: The page generated from the run's own files (:mod:`tumornb.reporting`), first after the chapters.
REPORTING_PAGE = "reporting"


def vega_offline_script() -> str:
    """JavaScript that defines ``vegaEmbed`` locally and tells Altair to use it."""
    import altair as alt
    import vl_convert

    versions = {
        "vega_version": alt.VEGA_VERSION,
        "vegalite_version": alt.VEGALITE_VERSION,
        "vegaembed_version": alt.VEGAEMBED_VERSION,
    }
    bundle = vl_convert.javascript_bundle()
    return (
        "/* vega, vega-lite and vega-embed, bundled by vl-convert for offline use. */\n"
        f"window.VEGA_DEBUG = Object.assign(window.VEGA_DEBUG || {{}}, {versions!r});\n"
        "(function () {\n" + bundle + "\n})();\n"
    )


def stage_book(run_dir: str | os.PathLike[str], source_dir: str | os.PathLike[str] | None = None) -> Path:
    """Assemble the book's source folder for a run; returns its path.

    Parameters
    ----------
    run_dir : path-like
        A run directory with executed notebooks in ``notebooks/``.
    source_dir : path-like, optional
        Where to stage; ``RUN_DIR/_book_src`` by default. Replaced if present.

    Raises
    ------
    FileNotFoundError
        When the run has no executed chapter.
    """
    run = RunDir(run_dir)
    root = project_root()
    executed = [
        name
        for name in chapter_notebooks(root / "notebooks")
        if (run.notebooks_dir / f"{name}.ipynb").exists()
    ]
    if not executed:
        raise FileNotFoundError(
            f"no executed chapter in {run.notebooks_dir}: run `tumornb run --run-dir {run_dir}` first"
        )
    source = Path(source_dir) if source_dir else run.root / "_book_src"
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    (source / "_static").mkdir()

    shutil.copy(root / "_config.yml", source / "_config.yml")
    for page in (*FRONT_PAGES, *BACK_PAGES):
        shutil.copy(root / "book" / f"{page}.md", source / f"{page}.md")
    for name in executed:
        shutil.copy(run.notebooks_dir / f"{name}.ipynb", source / "notebooks" / f"{name}.ipynb")
    (source / "_static" / "vega-offline.js").write_text(vega_offline_script())
    (source / "_static" / "tumornb.css").write_text(BOOK_CSS)
    (source / f"{REPORTING_PAGE}.md").write_text(reporting_page(run.root, set(executed)))

    toc = {
        "format": "jb-book",
        "root": FRONT_PAGES[0],
        "parts": [
            {
                "caption": "Chapters",
                "chapters": [{"file": f"notebooks/{name}"} for name in executed],
            },
            {"caption": "About", "chapters": [{"file": page} for page in (REPORTING_PAGE, *BACK_PAGES)]},
        ],
    }
    (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    return source


def build_book(
    run_dir: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    quiet: bool = True,
) -> Path:
    """Build the HTML book of a run; returns the path of ``index.html``.

    Parameters
    ----------
    run_dir : path-like
        The run to render.
    out_dir : path-like, optional
        The HTML goes to ``OUT_DIR/_build/html``; default ``RUN_DIR``.
    quiet : bool, default=True
        Hide Sphinx's log unless the build fails.

    Raises
    ------
    RuntimeError
        When the build fails or warns (warnings are errors: a missing page only
        warns in Jupyter Book).
    """
    run = RunDir(run_dir)
    source = stage_book(run.root)
    out = Path(out_dir).resolve() if out_dir else run.root
    command = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(source),
        "--path-output",
        str(out),
        "-W",
        "--keep-going",
        "--all",
    ]
    proc = subprocess.run(command, capture_output=quiet, text=True, check=False)
    if proc.returncode != 0:
        log = (proc.stdout or "")[-3000:] + (proc.stderr or "")[-3000:] if quiet else ""
        raise RuntimeError(f"jupyter-book build of {source} failed (exit {proc.returncode}):\n{log}")
    return out / "_build" / "html" / "index.html"
