"""nbval re-runs these chapters with their own small defaults, into a temporary run directory.

Each chapter's ``run_dir = None`` means the folder ``$TUMORNB_RUN_DIR`` names (see
:class:`tumornb.paths.RunDir`); the kernels nbval starts inherit it from this process.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tumornb.paths import RUN_DIR_ENV

NOTEBOOKS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Keep the chapters on one xdist worker, in order: each reads what the one before wrote."""
    for item in items:
        if item.path.parent == NOTEBOOKS:
            item.add_marker(pytest.mark.xdist_group("notebooks"))


def pytest_configure(config):
    if RUN_DIR_ENV not in os.environ:
        config.tumornb_run_dir = tempfile.mkdtemp(prefix="tumornb-nbval-")
        os.environ[RUN_DIR_ENV] = config.tumornb_run_dir


def pytest_unconfigure(config):
    run_dir = getattr(config, "tumornb_run_dir", None)
    if run_dir:
        os.environ.pop(RUN_DIR_ENV, None)
        shutil.rmtree(run_dir, ignore_errors=True)
