"""One call that fixes every random number generator a chapter uses."""

from __future__ import annotations

import random
import sys

import numpy as np

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and NumPy's global generators, and Keras' when it is loaded.

    Each chapter calls this in its "Imports and seed" cell, so its own random draws (samples to
    show, bootstrap resamples) repeat from run to run. Training functions seed Keras again from
    their own configuration, so a chapter that never imports Keras is not slowed by loading it.

    Parameters
    ----------
    seed : int
        The run's seed, as recorded in ``run.json``.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``, for the chapter's own draws.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries that still draw from the legacy global state
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)
    return np.random.default_rng(seed)
