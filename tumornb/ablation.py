"""The ablation of chapter 04: the classifier trained on three training sets, over several seeds.

Variants (:data:`VARIANTS`):

``real``
    The real training images (validation held out), as in chapter 03.
``real+synthetic``
    The same plus chapter 02's synthetic images, ``synthetic_fraction`` times as
    many per class (the D-GAN method's "+30%").
``10real+90synthetic``
    The original method's published extreme: 10% of the real training images
    of each class, topped up with synthetic ones until they make 90% of the set.

Each (variant, seed) is one parameterised execution of the notebook
``tumornb/templates/ablation_train.ipynb`` by papermill, written to
``RUN_DIR/ablation/<variant>/seed<k>/`` with its executed copy and its task
record (``task.json``: where, when and with which configuration it ran).
Executions are independent Dask tasks (:mod:`tumornb.cluster`): on a local
cluster of ``--jobs`` processes, or on any Dask cluster (``--scheduler``). A
finished one (``train.json`` present) is skipped, and chapter 03's own models
count as the repetition with its seed.

Only the training seed changes between repetitions: the validation split is the
run's (chapter 03's) and the test split is not read here. Chapter 04 scores
every repetition on the test split and compares variants with
:func:`seed_averaged_comparison`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tumornb.cluster import Task, TaskReport, dask_client, run_tasks
from tumornb.execute import ExecutionFailed, declared_parameters, execute_notebook
from tumornb.metrics import Comparison, Estimate, Metric
from tumornb.paths import RunDir

__all__ = [
    "REAL_SHARE_OF_EXTREME",
    "VARIANTS",
    "ablation_dir",
    "ablation_tasks",
    "extreme_synthetic_count",
    "run_ablation",
    "seed_averaged_comparison",
    "trained_repetitions",
    "variant_training_set",
]

VARIANTS = ("real", "real+synthetic", "10real+90synthetic")

#: Share of each class's real training images kept in ``10real+90synthetic``.
REAL_SHARE_OF_EXTREME = 0.10

TEMPLATE = Path(__file__).with_name("templates") / "ablation_train.ipynb"


def _extreme_real_count(n_real: int) -> int:
    return max(1, int(REAL_SHARE_OF_EXTREME * n_real))


def extreme_synthetic_count(n_real: int) -> int:
    """Synthetic images that ``10real+90synthetic`` takes of a class with ``n_real`` real ones."""
    return 9 * _extreme_real_count(n_real)


def ablation_dir(run_dir: str | os.PathLike[str], variant: str, seed: int) -> Path:
    """Folder of one repetition: ``RUN_DIR/ablation/<variant>/seed<k>``."""
    return RunDir(run_dir).root / "ablation" / variant / f"seed{seed}"


def variant_training_set(
    run_dir: str | os.PathLike[str],
    variant: str,
    *,
    image_size: int,
    seed: int,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    synthetic_fraction: float = 0.30,
):
    """The training set of one variant (see the module docstring).

    Parameters
    ----------
    run_dir : path-like
        A run where chapters 01 and 02 have run.
    variant : str
        One of :data:`VARIANTS`.
    image_size : int
    seed : int
        Which synthetic images, and which 10% of real ones, are drawn.
    split_seed : int, default=0
        The validation split's seed: chapter 03's, so every repetition is chosen
        on the same real validation images.
    val_fraction, synthetic_fraction : float

    Returns
    -------
    tumornb.training.TrainingSet

    Raises
    ------
    ValueError
        For an unknown variant, or a synthetic variant in a run without chapter 02.
    """
    from tumornb.training import TrainingSet, add_synthetic, real_training_set

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    real = real_training_set(run_dir, image_size, val_fraction=val_fraction, seed=split_seed)
    if variant == "real":
        return real
    if variant == "10real+90synthetic":
        rng = np.random.default_rng(seed)
        keep = np.concatenate(
            [
                rng.choice(members, size=_extreme_real_count(len(members)), replace=False)
                for members in (np.flatnonzero(real.y_train == c) for c in range(len(real.class_names)))
                if len(members)
            ]
        )
        keep.sort()
        real = TrainingSet(
            real.x_train[keep],
            real.y_train[keep],
            real.x_val,
            real.y_val,
            real.class_names,
            real.train_rows.iloc[keep].reset_index(drop=True),
            real.val_rows,
        )
        synthetic_fraction = 9.0  # nine synthetic images per real one kept: 90% of the set
    mixed = add_synthetic(real, run_dir, fraction=synthetic_fraction, seed=seed)
    if mixed is None:
        raise ValueError(f"variant {variant} needs chapter 02's synthetic images; run chapter 02 first")
    return mixed


def _chapter_03_repetitions(run: RunDir) -> list[dict]:
    found = []
    for variant in VARIANTS:
        info_path = run.model_dir(variant) / "train.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            found.append({"variant": variant, "seed": info["config"]["seed"], "dir": run.model_dir(variant)})
    return found


def trained_repetitions(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished training of the run, by variant and seed (chapter 03's and the ablation's).

    Returns
    -------
    DataFrame
        Columns ``variant``, ``seed``, ``dir``, sorted; one row per (variant, seed).
    """
    run = RunDir(run_dir)
    rows = _chapter_03_repetitions(run)
    for info_path in sorted((run.root / "ablation").glob("*/seed*/train.json")):
        info = json.loads(info_path.read_text())
        rows.append({"variant": info["variant"], "seed": info["config"]["seed"], "dir": info_path.parent})
    table = pd.DataFrame(rows, columns=["variant", "seed", "dir"])
    table = table.drop_duplicates(["variant", "seed"], keep="first")
    order = {v: i for i, v in enumerate(VARIANTS)}
    return table.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)


def ablation_tasks(
    run_dir: str | os.PathLike[str],
    *,
    seeds: Sequence[int],
    variants: Sequence[str] = VARIANTS,
    parameters: dict[str, Any] | None = None,
) -> list[Task]:
    """The (variant, seed) executions not trained yet, as :class:`tumornb.cluster.Task` objects.

    Parameters
    ----------
    run_dir : path-like
        A run where chapters 01-03 have run (02 for the synthetic variants).
    seeds : sequence of int
    variants : sequence of str, default=VARIANTS
    parameters : dict, optional
        Values for the template's parameters (``image_size``, ``epochs``, ...);
        a profile's, typically. Those the template does not declare are ignored.

    Returns
    -------
    list of Task
        Keyed ``"<variant>/seed<k>"``; each executes the template into
        ``ablation_dir(run_dir, variant, seed)`` and is done once ``train.json`` is there.
    """
    run = RunDir(run_dir)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    if not run.manifest.exists():
        raise FileNotFoundError(f"{run.root} has no manifest.csv: run chapters 01-03 before the ablation")
    declared = declared_parameters(TEMPLATE)
    passed = {k: v for k, v in (parameters or {}).items() if k in declared and k != "run_dir"}
    split_seed = int((parameters or {}).get("seed", 0))  # chapter 03's, which chose the validation split
    done = {(r.variant, r.seed) for r in trained_repetitions(run.root).itertuples()}
    tasks = []
    for seed in seeds:
        for variant in variants:
            if (variant, int(seed)) in done:
                continue
            out = ablation_dir(run.root, variant, int(seed))
            config = passed | {"variant": variant, "seed": int(seed), "split_seed": split_seed}
            action = partial(
                execute_notebook, TEMPLATE, out / "ablation_train.ipynb", config | {"run_dir": str(run.root)}
            )
            tasks.append(Task(f"{variant}/seed{seed}", out, out / "train.json", run.manifest, action, config))
    return tasks


def run_ablation(
    run_dir: str | os.PathLike[str],
    *,
    seeds: Sequence[int],
    variants: Sequence[str] = VARIANTS,
    parameters: dict[str, Any] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> TaskReport:
    """Train every (variant, seed) not trained yet, one papermill execution each, as Dask tasks.

    Parameters
    ----------
    run_dir : path-like
        A run where chapters 01-03 have run (02 for the synthetic variants).
    seeds : sequence of int
    variants : sequence of str, default=VARIANTS
    parameters : dict, optional
        Values for the template's parameters (``image_size``, ``epochs``, ...);
        a profile's, typically. Those the template does not declare are ignored.
    jobs : int, default=1
        Worker processes of the local Dask cluster (ignored with ``scheduler``).
    scheduler : str, optional
        Address of a running Dask scheduler whose workers see ``run_dir`` at the
        same path; default ``$TUMORNB_SCHEDULER``, else a local cluster.
    progress : bool, default=False
        A progress bar over the executions.
    log : callable

    Returns
    -------
    tumornb.cluster.TaskReport

    Raises
    ------
    tumornb.execute.ExecutionFailed
        After every execution has ended, when any failed; each failed one keeps
        its executed copy as ``ablation_train.failed.ipynb`` and the others are
        trained.
    """
    tasks = ablation_tasks(run_dir, seeds=seeds, variants=variants, parameters=parameters)
    if not tasks:
        log("ablation: every repetition is trained already")
        return TaskReport()
    with dask_client(scheduler, workers=jobs) as client:
        report = run_tasks(tasks, client, log=lambda line: log(f"ablation: {line}"), progress=progress)
    log(f"ablation: {report.summary()}")
    if not report.ok:
        raise ExecutionFailed(f"ablation: {report.summary()}")
    return report


def seed_averaged_comparison(
    metric: Metric,
    y_true: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    *,
    name: str = "metric",
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Difference of a metric between two variants, averaged over training seeds.

    ``preds_a[k]`` and ``preds_b[k]`` are the test predictions of the two
    variants trained with the k-th seed (the same initial weights and batch
    order). The point estimate is the mean over seeds of ``metric(B) - metric(A)``.
    The interval comes from a two-level bootstrap that resamples seeds and, on
    the same draw for every seed, test images: it holds both the randomness of
    training and that of the test set. The p-value is twice the smaller share
    of resampled differences on either side of zero.

    Returns
    -------
    tumornb.metrics.Comparison
    """
    y_true = np.asarray(y_true)
    a, b = np.asarray(preds_a), np.asarray(preds_b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(y_true):
        raise ValueError(f"need (seeds, images) predictions of equal shape, got {a.shape} and {b.shape}")
    n_seeds, n_images = a.shape
    rng = np.random.default_rng(seed)
    per_seed = np.array([metric(y_true, b[k]) - metric(y_true, a[k]) for k in range(n_seeds)])
    deltas = np.empty(n_boot)
    for i in range(n_boot):
        seeds = rng.integers(0, n_seeds, n_seeds)
        images = rng.integers(0, n_images, n_images)
        y = y_true[images]
        deltas[i] = np.mean([metric(y, b[k, images]) - metric(y, a[k, images]) for k in seeds])
    low, high = np.percentile(deltas, [2.5, 97.5])
    if np.allclose(deltas, 0):
        p_value = 1.0
    else:
        p_value = min(1.0, 2 * min((deltas <= 0).mean(), (deltas >= 0).mean()))
    return Comparison(name, Estimate(float(per_seed.mean()), float(low), float(high)), float(p_value))
