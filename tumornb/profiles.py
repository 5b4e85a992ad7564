"""Profiles: how much work a run does.

A profile is a dictionary of notebook parameters. Each chapter receives the
ones its ``parameters`` cell declares; ``-p key=value`` overrides any of them.

The classifier's training is sized by a **budget**, not a fixed length: with
``schedule="plateau"`` (:mod:`tumornb.schedules`) each training holds its peak
learning rate while the validation loss improves, then cools down and ends, so
the data decides how long it trains. ``epochs`` is the most it may run and
``train_minutes`` the most minutes on the machine at hand (per training run);
the cool-down starts in time to end within both. ``train.json`` records the
budget, the epochs and steps used, and what started the cool-down.

========  ==============================================================
smoke     CI: the whole book in a few minutes on 2 CPU cores
default   the README's main command: a meaningful result on the embedded
          phantom data on 2 CPU cores (measured times in the README)
full      real data at full size: hours on a CPU, minutes on a GPU
========  ==============================================================
"""

from __future__ import annotations

import ast
from typing import Any

__all__ = ["PROFILES", "parse_override", "profile_parameters"]

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "image_size": 64,
        "seed": 0,
        "phantom_train_per_class": 40,
        "phantom_test_per_class": 10,
        "embedding_max_images": 300,
        "epochs": 2,
        "schedule": "plateau",
        "train_minutes": None,
        "learning_rate": 5e-4,
        "gan_image_size": 32,
        "gan_width": 8,
        "gan_epochs": 2,
        "gan_augment": True,
        "compare_per_class": True,
        "synthetic_source": "best",
        "judge_epochs": 2,
        "n_boot": 200,
        "ablation_seeds": [0, 1],
        # CI: the two variants of the method itself; unit tests cover the other two variants' data.
        "ablation_variants": ["real", "real+synthetic"],
        "ablate_in_run": True,
    },
    "default": {
        "image_size": 128,
        "seed": 0,
        "phantom_train_per_class": 300,
        "phantom_test_per_class": 75,
        "embedding_max_images": 1500,
        "epochs": 100,
        "schedule": "plateau",
        "train_minutes": 15,
        "learning_rate": 5e-4,
        "gan_image_size": 64,
        "gan_width": 16,
        "gan_epochs": 30,
        "gan_augment": False,
        "compare_per_class": True,
        "synthetic_source": "best",
        "judge_epochs": 40,
        "n_boot": 1000,
        "ablation_seeds": [0, 1, 2, 3, 4],
        "ablation_variants": None,  # every variant of tumornb.ablation.VARIANTS
        "ablate_in_run": False,
    },
    "full": {
        "image_size": 128,
        "seed": 0,
        "phantom_train_per_class": 1200,
        "phantom_test_per_class": 300,
        "embedding_max_images": 4000,
        "epochs": 200,
        "schedule": "plateau",
        "train_minutes": None,
        "learning_rate": None,
        "gan_image_size": 128,
        "gan_width": 32,
        "gan_epochs": 200,
        "gan_augment": True,
        "compare_per_class": True,
        "synthetic_source": "best",
        "judge_epochs": 60,
        "n_boot": 2000,
        "ablation_seeds": [0, 1, 2, 3, 4],
        "ablation_variants": None,  # every variant of tumornb.ablation.VARIANTS
        "ablate_in_run": True,
    },
}


def profile_parameters(name: str) -> dict[str, Any]:
    """A copy of profile ``name``'s parameters.

    Parameters
    ----------
    name : str
        ``smoke``, ``default`` or ``full``.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If there is no such profile.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return dict(PROFILES[name])


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value as a Python literal when it is one.

    Parameters
    ----------
    text : str
        ``KEY=VALUE``; the value is read as a Python literal when it is one, else kept as text.

    Returns
    -------
    (str, object)

    Examples
    --------
    >>> parse_override("image_size=96"), parse_override("data_dir=/data/mri")
    (('image_size', 96), ('data_dir', '/data/mri'))
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise ValueError(f"parameter override must look like key=value, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed
