"""Shared fixtures: small datasets written to temporary folders, never to the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tumornb.phantom import write_phantom_dataset

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kaggle-sartaj-brain-mri"
TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Group and order the tests for ``pytest -n 2`` (``make test``).

    An xdist worker builds each fixture it needs itself, so the tests that read the
    smoke run share one worker (the run takes minutes), and so do a file's tests
    (its module fixtures); ``notebooks/conftest.py`` keeps the chapters together.
    Groups start in collection order (``--dist loadgroup --no-loadscope-reorder`` in
    pyproject.toml), so the two longest, the smoke run's and the chapters', come first:
    one starts on each worker, and the short ones fill in around them.
    """
    for item in items:
        if TESTS not in item.path.parents or item.get_closest_marker("xdist_group"):
            continue
        group = "smoke_run" if "smoke_run" in item.fixturenames else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))

    def start_order(item) -> int:
        if TESTS.parent / "notebooks" in item.path.parents:
            return 1
        return 0 if "smoke_run" in item.fixturenames else 2

    items.sort(key=start_order)  # stable: the chapters' cells keep their order


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory) -> Path:
    """A small phantom dataset (48 train, 16 test images), shared by the session."""
    out = tmp_path_factory.mktemp("phantom") / "data"
    write_phantom_dataset(
        out,
        n_train_per_class=12,
        n_test_per_class=4,
        seed=3,
        size_range=(64, 96),
        duplicate_fraction=0.0,
    )
    return out


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real dataset not found at {REAL_DATA} (only in the project's shared workspace)")
    return REAL_DATA


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The whole book executed once with the smoke profile on the phantom data, ablation included."""
    from tumornb.runner import run_chapters

    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    run_chapters(run_dir, profile="smoke", progress=False, log=lambda line: None)
    return run_dir
