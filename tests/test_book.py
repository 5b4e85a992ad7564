import re
import shutil
import subprocess

import pytest

from tumornb.book import build_book
from tumornb.runner import chapter_notebooks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def book_html(smoke_run):
    index = build_book(smoke_run)
    return index.parent


def test_book_has_every_chapter_and_the_intro(book_html):
    """Check that the built site holds the intro and one page per executed chapter, linked."""
    index = (book_html / "intro.html").read_text()
    for name in chapter_notebooks():
        page = book_html / "notebooks" / f"{name}.html"
        assert page.exists(), name
        assert f"notebooks/{name}.html" in index
    eda = (book_html / "notebooks" / "01_eda.html").read_text()
    for heading in ("Class balance", "Duplicates and leakage", "A map of the images"):
        assert heading in eda
    for name in chapter_notebooks():  # nbval's checks are cell tags, invisible in the book
        assert "NBVAL" not in (book_html / "notebooks" / f"{name}.html").read_text(), name


def test_charts_load_vega_from_the_site_not_a_cdn(book_html):
    """Check that every page loads the bundled Vega libraries, which Altair is told to use."""
    eda = (book_html / "notebooks" / "01_eda.html").read_text()
    assert re.search(r'<script src="\.\./_static/vega-offline\.js', eda)
    script = (book_html / "_static" / "vega-offline.js").read_text()
    assert "window.VEGA_DEBUG" in script and "vegaEmbed" in script
    assert len(set(re.findall(r'id="(altair-viz-[0-9a-f]+)"', eda))) == 3


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(
    _chromium() is None, reason="needs Chromium (apt-get install chromium) for a real browser"
)
def test_charts_draw_in_a_browser_with_no_network(book_html, tmp_path):
    """Check in headless Chromium, with name resolution blocked, that every Altair chart is drawn."""
    page = book_html / "notebooks" / "01_eda.html"
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=8000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    charts = set(re.findall(r'id="(altair-viz-[0-9a-f]+)"', page.read_text()))
    drawn = re.findall(r'class="vega-embed', dom)
    assert len(charts) == 3 and len(drawn) == len(charts)


def test_reporting_page_quotes_the_run_and_links_to_sections_that_exist(book_html, smoke_run):
    """Check the generated checklist: the run's own headline numbers, and every link lands on a heading."""
    import json

    page = (book_html / "reporting.html").read_text()
    saved = json.loads((smoke_run / "metrics.json").read_text())
    accuracy = saved["headline"][saved["first_subset"]]["real"]["accuracy"]
    assert f"{accuracy['value']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}]" in page
    links = re.findall(r'href="(notebooks/[0-9a-z_]+\.html)#([a-z0-9-]+)"', page)
    assert len(links) >= 8
    for target, anchor in links:
        assert f'id="{anchor}"' in (book_html / target).read_text(), (target, anchor)
