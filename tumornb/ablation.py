"""The ablation of chapter 04: the classifier trained on three training sets, over several seeds.

Variants (:data:`VARIANTS`):

``real``
    The real training images (validation held out), as in chapter 03.
``real+synthetic``
    The same plus chapter 02's synthetic images, ``synthetic_fraction`` times as
    many per class (the D-GAN method's "+30%").
``real+filtered-synthetic``
    The same, drawn only from the synthetic images chapter 02's judge assigns
    to their own class with probability at least
    :data:`tumornb.fidelity.FILTER_CONFIDENCE`; a class with too few such
    images gets all it has (``n_synthetic`` in ``train.json`` counts them).
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tumornb.cluster import Task, TaskReport, config_hash, dask_client, run_tasks
from tumornb.execute import ExecutionFailed, declared_parameters, execute_notebook
from tumornb.fidelity import FILTER_CONFIDENCE
from tumornb.metrics import Comparison, Metric, t_interval, table_comparisons, verdict
from tumornb.paths import RunDir

__all__ = [
    "CHANGE",
    "CONFOUNDS",
    "AblationResult",
    "analyse_ablation",
    "REAL_SHARE_OF_EXTREME",
    "VARIANTS",
    "ablation_dir",
    "ablation_tasks",
    "comparable_repetitions",
    "evaluate_ablation",
    "extreme_synthetic_count",
    "null_rejection_rate",
    "per_seed_differences",
    "run_ablation",
    "seed_ensemble",
    "seed_averaged_comparison",
    "trained_repetitions",
    "variant_training_set",
]

VARIANTS = ("real", "real+synthetic", "real+filtered-synthetic", "10real+90synthetic")

#: Share of each class's real training images kept in ``10real+90synthetic``.
REAL_SHARE_OF_EXTREME = 0.10

TEMPLATE = Path(__file__).with_name("templates") / "ablation_train.ipynb"


def _extreme_real_count(n_real: int) -> int:
    return max(1, int(REAL_SHARE_OF_EXTREME * n_real))


def extreme_synthetic_count(n_real: int) -> int:
    """Synthetic images that ``10real+90synthetic`` takes of a class with ``n_real`` real ones.

    Parameters
    ----------
    n_real : int
        Real training images of one class.

    Returns
    -------
    int
    """
    return 9 * _extreme_real_count(n_real)


def ablation_dir(run_dir: str | os.PathLike[str], variant: str, seed: int) -> Path:
    """Folder of one repetition: ``RUN_DIR/ablation/<variant>/seed<k>``.

    Parameters
    ----------
    run_dir : path-like
    variant : str
        One of :data:`VARIANTS`.
    seed : int

    Returns
    -------
    Path
        ``RUN_DIR/ablation/VARIANT/seedSEED``.
    """
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
    tumornb.datasets.TrainingSet

    Raises
    ------
    ValueError
        For an unknown variant, or a synthetic variant in a run without chapter 02.
    """
    from tumornb.datasets import TrainingSet, add_synthetic, real_training_set

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
    min_confidence = FILTER_CONFIDENCE if variant == "real+filtered-synthetic" else None
    mixed = add_synthetic(
        real, run_dir, fraction=synthetic_fraction, seed=seed, min_confidence=min_confidence
    )
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


def _training_config(info_path: Path) -> dict[str, Any]:
    config = dict(json.loads(info_path.read_text())["config"])
    config.pop("seed", None)
    return config


def trained_repetitions(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished training of the run, by variant and seed (chapter 03's and the ablation's).

    Parameters
    ----------
    run_dir : path-like

    Returns
    -------
    DataFrame
        Columns ``variant``, ``seed``, ``dir`` and ``config`` (the hash of the
        training configuration without its seed: repetitions are comparable only
        when it matches), sorted; one row per (variant, seed).
    """
    run = RunDir(run_dir)
    rows = _chapter_03_repetitions(run)
    for info_path in sorted((run.root / "ablation").glob("*/seed*/train.json")):
        info = json.loads(info_path.read_text())
        rows.append({"variant": info["variant"], "seed": info["config"]["seed"], "dir": info_path.parent})
    for row in rows:
        row["config"] = config_hash(_training_config(Path(row["dir"]) / "train.json"))
    table = pd.DataFrame(rows, columns=["variant", "seed", "dir", "config"])
    table = table.drop_duplicates(["variant", "seed"], keep="first")
    order = {v: i for i, v in enumerate(VARIANTS)}
    return table.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)


def comparable_repetitions(repetitions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split repetitions into those trained with the run's most common configuration and the rest.

    Pooling seeds only makes sense when nothing but the seed (and the variant's
    training set) changed: a repetition trained with other epochs or another
    learning rate would pass its difference off as seed noise.

    Parameters
    ----------
    repetitions : DataFrame
        :func:`trained_repetitions`' table.

    Returns
    -------
    (kept, excluded) : DataFrame, DataFrame
        ``excluded`` has a ``reason`` column naming the settings that differ.
    """
    if repetitions.empty:
        return repetitions, repetitions.assign(reason=[])
    common = repetitions["config"].mode().iloc[0]
    kept = repetitions[repetitions["config"] == common]
    excluded = repetitions[repetitions["config"] != common].copy()
    reference = _training_config(Path(kept["dir"].iloc[0]) / "train.json")
    reasons = []
    for row in excluded.itertuples():
        config = _training_config(Path(row.dir) / "train.json")
        differs = sorted(k for k in set(config) | set(reference) if config.get(k) != reference.get(k))
        reasons.append(
            "trained with "
            + ", ".join(f"{k} = {config.get(k)} (the others: {reference.get(k)})" for k in differs)
        )
    return kept, excluded.assign(reason=reasons)


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
    run_dir, seeds, variants, parameters
        As for :func:`ablation_tasks`.
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


def per_seed_differences(
    metric: Metric, y_true: np.ndarray, preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray]
) -> np.ndarray:
    """``metric(B_k) - metric(A_k)`` for each training seed ``k``, on the same test images.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``.
    y_true : ndarray of shape (n,)
    preds_a, preds_b : sequence of ndarray of shape (n,)
        Predictions of A and of B, one per seed, in the same seed order.

    Returns
    -------
    ndarray of shape (n_seeds,)
        B minus A, per seed.
    """
    y_true = np.asarray(y_true)
    a, b = np.asarray(preds_a), np.asarray(preds_b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(y_true):
        raise ValueError(f"need (seeds, images) predictions of equal shape, got {a.shape} and {b.shape}")
    return np.array([metric(y_true, b[k]) - metric(y_true, a[k]) for k in range(len(a))])


def seed_averaged_comparison(
    metric: Metric,
    y_true: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    *,
    name: str = "metric",
    level: float = 0.95,
) -> Comparison:
    """Difference of a metric between two variants, averaged over training seeds, with a t-interval.

    ``preds_a[k]`` and ``preds_b[k]`` are the test predictions of the two
    variants trained with the k-th seed. Each seed gives one paired difference
    ``metric(B_k) - metric(A_k)``; their mean is the estimate, and the interval
    and two-sided p-value are Student's t on those ``k`` differences with
    ``k - 1`` degrees of freedom. The spread between seeds holds the randomness
    of training (initial weights, batches, which synthetic images) and the part
    of test-set noise that differs between seeds; the test images themselves are
    held fixed. A two-level bootstrap over 3 seeds rejected a true null 10-14%
    of the time at a nominal 5% (too few seeds to resample); this interval keeps
    its level at any number of seeds when the differences are roughly normal
    (:func:`null_rejection_rate` checks it), at the price of a wide interval
    when there are few.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``.
    y_true : ndarray of shape (n,)
    preds_a, preds_b : sequence of ndarray of shape (n,)
        One per seed, paired by seed.
    name : str, default="metric"
    level : float, default=0.95

    Returns
    -------
    tumornb.metrics.Comparison
        With a p-value of 1 when every seed's difference is 0, and 0 when all
        are equal but not 0 (no spread to test against).
    """
    from scipy import stats

    differences = per_seed_differences(metric, y_true, preds_a, preds_b)
    k = len(differences)
    if k < 2:
        raise ValueError(f"a seed-averaged comparison needs at least 2 seeds, got {k}")
    difference = t_interval(differences, level=level)
    spread = differences.std(ddof=1)
    if spread == 0:
        return Comparison(name, difference, 1.0 if difference.value == 0 else 0.0)
    p_value = 2 * stats.t.sf(abs(difference.value) / (spread / np.sqrt(k)), k - 1)
    return Comparison(name, difference, float(p_value))


def null_rejection_rate(
    *,
    n_seeds: int = 5,
    n_images: int = 400,
    seed_sd: float = 0.04,
    accuracy: float = 0.8,
    n_simulations: int = 400,
    alpha: float = 0.05,
    seed: int = 0,
) -> float:
    """How often :func:`seed_averaged_comparison` rejects when the two variants are equally good.

    Each simulated ablation draws, for every seed and variant, a training
    outcome: the model's accuracy is ``accuracy`` plus normal noise of SD
    ``seed_sd`` (0.04 makes per-seed differences spread by about 6 points, as
    measured on real downloads), and on a shared set of test images of varying
    difficulty each prediction is right with that model's chance. Both variants
    come from the same distribution, so every rejection is a false one.

    Parameters
    ----------
    n_seeds : int, default=5
    n_images : int, default=400
        Test images per simulated evaluation.
    seed_sd : float, default=0.04
        Spread of accuracy between training seeds.
    accuracy : float, default=0.8
        Both variants' true accuracy.
    n_simulations : int, default=400
    alpha : float, default=0.05
    seed : int, default=0

    Returns
    -------
    float
        The share of ``n_simulations`` ablations with accuracy p-value below ``alpha``
        (close to ``alpha`` for a well-calibrated test).
    """
    from scipy.special import expit, logit

    from tumornb.metrics import accuracy as share_right  # the parameter ``accuracy`` is the skill

    rng = np.random.default_rng(seed)
    y_true = np.ones(n_images, int)
    rejected = 0
    for _ in range(n_simulations):
        difficulty = rng.normal(0, 1.5, n_images)  # the same hard images for every model

        def predictions(rng=rng, difficulty=difficulty) -> np.ndarray:
            skill = np.clip(accuracy + rng.normal(0, seed_sd, n_seeds), 0.05, 0.95)
            right = rng.random((n_seeds, n_images)) < expit(logit(skill)[:, None] - difficulty)
            return right.astype(int)  # 1 is the true label: right predictions are 1

        comparison = seed_averaged_comparison(share_right, y_true, predictions(), predictions())
        rejected += comparison.p_value < alpha
    return rejected / n_simulations


#: The column of the ablation's table that holds the t-test's p-value over seeds.
P_SEEDS = "p (t over seeds)"

#: What each variant changes, as the verdict words it.
CHANGE = {
    "real+synthetic": "adding the synthetic images",
    "real+filtered-synthetic": "adding only the synthetic images the judge assigns to their class",
    "10real+90synthetic": "training on 10% real + 90% synthetic images",
}


@dataclass
class AblationResult:
    """Chapter 04's ablation: every repetition's scores, the per-seed differences, the comparisons.

    Attributes
    ----------
    per_run : DataFrame
        ``variant``, ``seed``, ``test images`` (the subset), ``metric``, ``value``.
    differences : DataFrame
        ``comparison``, ``seed``, ``test images``, ``metric``, ``difference`` (points):
        the per-seed paired differences each interval is computed from.
    table : DataFrame
        :func:`tumornb.metrics.comparison_table` per subset of test images (Holm
        across the comparisons of that subset), with ``test images`` and ``seeds``.
    excluded : DataFrame
        Repetitions left out because their configuration differs (see
        :func:`comparable_repetitions`), with the reason.
    probabilities : dict
        Test probabilities keyed by ``(variant, seed)``, when :func:`evaluate_ablation` made them.
    """

    per_run: pd.DataFrame
    differences: pd.DataFrame
    table: pd.DataFrame
    excluded: pd.DataFrame
    probabilities: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    def verdict(self, subset: str) -> str:
        """The sentences for ``subset``'s comparisons, worded from their numbers, and the confounds."""
        rows = self.table[self.table["test images"] == subset]
        sentences = [
            verdict(comparison, what=CHANGE[name.removesuffix(" vs real")], p_adjusted=p)
            for name, (comparison, p) in zip(
                rows["comparison"], table_comparisons(self.table, subset, p_label=P_SEEDS), strict=True
            )
        ]
        seeds = sorted(set(rows["seeds"]))
        return (
            f"**Verdict over {', '.join(map(str, seeds))} training seeds, on the {subset}** "
            "(each variant against `real` trained with the same seeds; Student's t on the per-seed "
            "differences). " + " ".join(sentences) + " " + CONFOUNDS
        )

    def differences_table(self) -> pd.DataFrame:
        """The per-seed differences (points), one column per seed."""
        return self.differences.pivot_table(
            index=["test images", "comparison", "metric"], columns="seed", values="difference", sort=False
        )

    def to_dict(self) -> dict[str, Any]:
        """Every table as records, for ``metrics.json``."""
        return {
            "per_run": self.per_run.to_dict(orient="records"),
            "per_seed_differences": self.differences.to_dict(orient="records"),
            "comparisons": self.table.to_dict(orient="records"),
            "excluded": self.excluded.drop(columns=["dir"], errors="ignore")
            .astype(str)
            .to_dict(orient="records"),
        }


#: What the ablation's design cannot separate from the method; printed beside every verdict.
CONFOUNDS = (
    "*Confounds:* `real+synthetic` takes more optimisation steps than `real` (about 30% more per epoch, "
    "its training set being larger; the plateau schedule then lets each variant train until its own "
    "validation loss levels off), so longer training alone could explain part of a gain; and the "
    "synthetic images of every seed come from chapter 02's one GAN, trained once on all "
    "real fitting images, so its own randomness is not in the interval, and `10real+90synthetic` draws "
    "indirectly on every real image, not on 10% of them."
)


def analyse_ablation(
    y_true: np.ndarray,
    predictions: dict[tuple[str, int], np.ndarray],
    subsets: dict[str, np.ndarray],
    *,
    excluded: pd.DataFrame | None = None,
    metrics: dict[str, Metric] | None = None,
) -> AblationResult:
    """Compare every variant with ``real``, seed by seed, on each subset of the test images.

    Parameters
    ----------
    y_true : array of shape (n,)
    predictions : dict
        ``(variant, seed) -> predicted labels`` of comparable repetitions.
    subsets : dict
        Name -> boolean mask over the test images (the leak-free subset first).
    excluded : DataFrame, optional
        What :func:`comparable_repetitions` left out, carried into the result.
    metrics : dict, optional
        Name -> ``metric(y_true, y_pred)``; accuracy and macro-F1 by default.

    Returns
    -------
    AblationResult
    """
    from tumornb.metrics import accuracy, macro_f1, subset_comparison_table

    metrics = metrics or {"accuracy": accuracy, "macro-F1": macro_f1}
    y_true = np.asarray(y_true)
    seeds_of: dict[str, set[int]] = {}
    for variant, seed in predictions:
        seeds_of.setdefault(variant, set()).add(seed)
    runs, differences, found = [], [], {}
    for subset, mask in subsets.items():
        y = y_true[mask]
        for (variant, seed), predicted in predictions.items():
            for metric, score in metrics.items():
                runs.append((variant, seed, subset, metric, score(y, predicted[mask])))
        found[subset] = []
        for other in VARIANTS[1:]:
            shared = sorted(seeds_of.get(other, set()) & seeds_of.get("real", set()))
            if len(shared) < 2:
                continue
            for metric, score in metrics.items():
                a = [predictions[("real", s)][mask] for s in shared]
                b = [predictions[(other, s)][mask] for s in shared]
                for s, d in zip(shared, per_seed_differences(score, y, a, b), strict=True):
                    differences.append((f"{other} vs real", s, subset, metric, 100 * d))
                comparison = seed_averaged_comparison(score, y, a, b, name=metric)
                found[subset].append((f"{other} vs real", comparison))
    table = subset_comparison_table(found, p_label=P_SEEDS)
    if len(table):
        n_seeds = {v: len(seeds_of.get(v, set()) & seeds_of.get("real", set())) for v in VARIANTS}
        table.insert(2, "seeds", table["comparison"].str.removesuffix(" vs real").map(n_seeds))
    columns = ["comparison", "seed", "test images", "metric", "difference"]
    return AblationResult(
        per_run=pd.DataFrame(runs, columns=["variant", "seed", "test images", "metric", "value"]),
        differences=pd.DataFrame(differences, columns=columns),
        table=table,
        excluded=excluded if excluded is not None else pd.DataFrame(columns=["variant", "seed", "reason"]),
    )


def evaluate_ablation(
    run_dir: str | os.PathLike[str], images: np.ndarray, y_true: np.ndarray, subsets: dict[str, np.ndarray]
) -> AblationResult | None:
    """Predict the test images with every comparable repetition of the run and analyse them.

    Parameters
    ----------
    run_dir : path-like
    images : ndarray of shape (n, side, side)
        The test images (chapter 04's only use of them).
    y_true : ndarray of shape (n,)
    subsets : dict
        Name -> boolean mask over the images, the leak-free subset first.

    Returns
    -------
    AblationResult or None
        None when ``real`` has fewer than 2 comparable seeds (no ablation trained).
    """
    from tumornb.evaluation import predict_proba
    from tumornb.training import load_trained

    repetitions, excluded = comparable_repetitions(trained_repetitions(run_dir))
    if (repetitions["variant"] == "real").sum() < 2:
        return None
    probabilities = {
        (r.variant, r.seed): predict_proba(load_trained(r.dir).model, images)
        for r in repetitions.itertuples()
    }
    predictions = {key: p.argmax(1) for key, p in probabilities.items()}
    found = analyse_ablation(y_true, predictions, subsets, excluded=excluded)
    found.probabilities = probabilities
    return found


def seed_ensemble(probabilities: dict[tuple[str, int], np.ndarray], variant: str = "real") -> np.ndarray:
    """The class probabilities of ``variant`` averaged over its training seeds: a free ensemble.

    The ablation trains each variant once per seed anyway; averaging their
    probabilities is the classic deep ensemble (Lakshminarayanan et al., 2017).

    Parameters
    ----------
    probabilities : dict
        ``(variant, seed) -> (n_images, n_classes)`` probabilities.
    variant : str, default="real"

    Returns
    -------
    ndarray of shape (n_images, n_classes)

    Raises
    ------
    ValueError
        When ``variant`` has no repetition.
    """
    members = [p for (v, _), p in sorted(probabilities.items(), key=lambda item: item[0][1]) if v == variant]
    if not members:
        raise ValueError(f"no trained repetition of {variant!r} to average")
    return np.mean(members, axis=0)
