"""The whole book on a test split larger than any common Kaggle download's (6,200 test images).

Real downloads reach 1,300 test images; every other test uses a few hundred. At this size
a chart whose data grows with the test split (ROC/PR curves, scatter plots) would hit
Altair's 5,000-row limit and stop the run, as it once did in chapter 04. The images are
tiny (stored at 40-56 px, used at 32 px) so the chapters and the book fit in CI. Chapter 02 is
left out: it reads only the training split, and training-split sizes are covered elsewhere
(`test_real_data.py`); its charts have fixed sizes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tumornb.book import build_book
from tumornb.plots import MAX_CHART_ROWS
from tumornb.runner import run_chapters

pytestmark = pytest.mark.slow

N_TEST = 4 * 1550
SCALE = {
    "phantom_train_per_class": 30,
    "phantom_test_per_class": N_TEST // 4,
    "phantom_size_range": [40, 56],
    "image_size": 32,
    "embedding_max_images": 300,
    "epochs": 1,
    "n_boot": 50,
}
#: The chapters that read the test split.
CHAPTERS = ["01_eda", "03_cnn", "04_eval", "05_visualize_predictions"]
#: A chapter page may hold figures and tables, never data that grows with the dataset.
MAX_PAGE_BYTES = 3_000_000


@pytest.fixture(scope="module")
def scale_book(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "scale"
    run_chapters(
        run_dir,
        profile="smoke",
        only=CHAPTERS,
        overrides=SCALE,
        ablate=False,
        progress=False,
        log=lambda line: None,
    )
    return build_book(run_dir).parent


def embedded_charts(html: str) -> list[dict]:
    """The Vega-Lite specs that Altair's HTML renderer wrote into a page."""
    decoder, specs = json.JSONDecoder(), []
    for match in re.finditer(r"\}\)\(\{", html):  # the renderer's "})({...spec...}, {embed options})"
        try:
            spec = decoder.raw_decode(html, match.end() - 1)[0]
        except json.JSONDecodeError:
            continue
        if "vega-lite" in str(spec.get("$schema", "")):
            specs.append(spec)
    return specs


def test_the_run_has_more_test_images_than_real_downloads(scale_book):
    """Check that the run really evaluated 6,200 test images (chapter 04's metrics.json)."""
    metrics = json.loads((scale_book.parents[1] / "metrics.json").read_text())
    assert metrics["n_test"] == N_TEST


def test_no_chart_embeds_data_that_grows_with_the_test_split(scale_book):
    """Check every Altair chart of every chapter page: each dataset at most MAX_CHART_ROWS rows."""
    found = {}
    for name in CHAPTERS:
        html = (scale_book / "notebooks" / f"{name}.html").read_text()
        specs = embedded_charts(html)
        assert len(specs) == len(set(re.findall(r'id="(altair-viz-[0-9a-f]+)"', html))), name
        found[name] = [len(rows) for spec in specs for rows in spec.get("datasets", {}).values()]
    assert found["01_eda"] and found["04_eval"], found  # the charts were found, so the check can fail
    assert all(n <= MAX_CHART_ROWS for rows in found.values() for n in rows), found


def test_chapter_pages_stay_light(scale_book):
    """Check that no chapter page of the 6,200-image book exceeds MAX_PAGE_BYTES."""
    sizes = {p.name: p.stat().st_size for p in (scale_book / "notebooks").glob("*.html")}
    assert sorted(sizes) == [f"{name}.html" for name in CHAPTERS]
    assert max(sizes.values()) <= MAX_PAGE_BYTES, sizes
