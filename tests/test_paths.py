"""The run directory: where a chapter opened with no run_dir writes."""

from pathlib import Path

import numpy as np

from tumornb import seed_everything
from tumornb.paths import NOTEBOOK_RUN_DIR, RUN_DIR_ENV, RunDir


def test_run_dir_none_follows_the_environment_then_the_notebook_default(tmp_path, monkeypatch):
    """Check RunDir(None): $TUMORNB_RUN_DIR when set, else ../runs/notebook from the working folder."""
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "elsewhere"))
    assert RunDir().root == (tmp_path / "elsewhere").resolve()
    assert RunDir(tmp_path / "given").root == (tmp_path / "given").resolve()
    monkeypatch.delenv(RUN_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert RunDir().root == (tmp_path / Path(NOTEBOOK_RUN_DIR)).resolve()


def test_seed_everything_repeats_every_generator():
    """Check that the same seed repeats Python's, NumPy's global and the returned generator's draws."""
    import random

    def draws(seed):
        rng = seed_everything(seed)
        return random.random(), np.random.rand(), rng.random()  # noqa: NPY002

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
