"""Scoring trained classifiers on the held-out test split: predictions, calibration, leakage.

The test split is read here and nowhere in training or model selection. The one
fitted quantity, the softmax temperature, is fitted on the *validation* split.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from tumornb import metrics
from tumornb.datasets import run_images
from tumornb.dedup import nearest_distances
from tumornb.metrics import Estimate
from tumornb.paths import atomic_path

__all__ = [
    "ALL_IMAGES",
    "LEAK_FREE",
    "TestSet",
    "apply_temperature",
    "bootstrap_groups",
    "calibration_summary",
    "expected_calibration_error",
    "fit_temperature",
    "headline_by_threshold",
    "headline_frame",
    "headline_metrics",
    "headline_record",
    "leaking_test_rows",
    "leakage_composition",
    "leakage_effect",
    "missing_classes_note",
    "predict_in_batches",
    "predict_proba",
    "reliability_table",
    "subsets_record",
    "temperature_effect",
    "test_set",
    "test_subsets",
    "traced_forward",
    "write_json",
    "write_predictions",
]


class TestSet:
    """The test split of a run: images, integer labels, and their manifest rows.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    labels : ndarray of shape (n,), int
    rows : DataFrame
        The manifest rows, with ``leaks``, ``dup_group`` and ``nearest_train_bits``.
    class_names : list of str
    """

    __test__ = False  # not a pytest test class

    def __init__(self, images: np.ndarray, labels: np.ndarray, rows: pd.DataFrame, class_names: list[str]):
        self.images, self.labels, self.rows, self.class_names = images, labels, rows, class_names

    def __len__(self) -> int:
        return len(self.labels)


def test_set(run_dir: str | Path, image_size: int) -> TestSet:
    """The usable test images of a run at ``image_size``, as cached by chapter 01.

    ``rows["leaks"]`` marks the test images with a duplicate in the training split;
    ``rows["nearest_train_bits"]`` is the pHash distance to the closest training image.

    Parameters
    ----------
    run_dir : path-like
    image_size : int

    Returns
    -------
    TestSet
    """
    usable, images, class_names = run_images(run_dir, image_size)
    is_test = (usable["split"] == "test").to_numpy()
    index = {name: i for i, name in enumerate(class_names)}
    # Whether each test image has an exact or near duplicate in training (chapter 01's groups).
    rows = usable.assign(leaks=leaking_test_rows(usable))[is_test].reset_index(drop=True)
    # How far each test image is from its closest training image (pHash bits): a looser notion of a copy.
    rows["nearest_train_bits"] = nearest_distances(
        rows["phash"], usable.loc[~is_test & (usable["split"] == "train"), "phash"]
    )
    return TestSet(images[is_test], rows["label"].map(index).to_numpy(), rows, class_names)


#: The test images chapter 04 reports first: those with no exact or near duplicate in training.
LEAK_FREE = "test images with no duplicate in training"
#: Every test image, reported beside.
ALL_IMAGES = "all test images"


def test_subsets(test: TestSet) -> dict[str, np.ndarray]:
    """Boolean masks over the test images: the leak-free subset first, then all of them.

    Parameters
    ----------
    test : TestSet

    Returns
    -------
    dict of str to ndarray of bool
        :data:`LEAK_FREE` first, then :data:`ALL_IMAGES`.

    Raises
    ------
    ValueError
        When every test image has a duplicate in training: there is nothing
        leak-free to report (re-split the download, or report it as such).
    """
    clean = ~test.rows["leaks"].to_numpy(bool)
    if not clean.any():
        raise ValueError(
            f"all {len(clean)} test images have a duplicate in training: no leak-free evaluation is possible"
        )
    return {LEAK_FREE: clean, ALL_IMAGES: np.ones(len(clean), bool)}


def bootstrap_groups(rows: pd.DataFrame) -> np.ndarray:
    """A group label per test image for the cluster bootstrap: its duplicate group, or itself alone.

    Chapter 01's duplicate groups (exact and near copies) are the correlated
    units of a download; an image without copies is a group of one.

    Parameters
    ----------
    rows : DataFrame
        The test rows (column ``dup_group``, -1 for an image without copies).

    Returns
    -------
    ndarray of shape (n,), int
    """
    dup = rows["dup_group"].to_numpy()
    return np.where(dup >= 0, dup, -1 - np.arange(len(rows)))


def headline_metrics(
    y_true: np.ndarray,
    probabilities: dict[str, np.ndarray],
    subsets: dict[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Estimate]]]:
    """Every headline metric of every variant on every subset, with (cluster) bootstrap intervals.

    Parameters
    ----------
    y_true : array of shape (n,)
    probabilities : dict
        Variant -> class probabilities of shape (n, n_classes).
    subsets : dict
        Name -> boolean mask over the images (see :func:`test_subsets`).
    groups : array of shape (n,), optional
        Resample whole groups (see :func:`bootstrap_groups`).

    Returns
    -------
    dict
        ``result[subset][variant][metric]`` is an :class:`~tumornb.metrics.Estimate`.
    """
    aucs = {"ROC-AUC (one-vs-rest)": metrics.roc_auc_ovr, "PR-AUC (one-vs-rest, macro)": metrics.pr_auc_ovr}
    result: dict[str, dict[str, dict[str, Estimate]]] = {}
    for subset, mask in subsets.items():
        y, g = y_true[mask], None if groups is None else groups[mask]
        result[subset] = {}
        for variant, p in probabilities.items():
            summary = metrics.classification_summary(y, p[mask].argmax(1), n_boot=n_boot, seed=seed, groups=g)
            for name, auc in aucs.items():
                summary[name] = metrics.bootstrap_ci(auc, y, p[mask], n_boot=n_boot, seed=seed, groups=g)
            result[subset][variant] = summary
    return result


def headline_record(headline: dict[str, dict[str, dict[str, Estimate]]]) -> dict:
    """:func:`headline_metrics` as plain dictionaries for ``metrics.json`` (value, low, high).

    Parameters
    ----------
    headline : dict
        :func:`headline_metrics`' result.

    Returns
    -------
    dict
        The same nesting, each estimate as ``{value, low, high}``.
    """
    return {
        subset: {
            variant: {metric: vars(e) for metric, e in summary.items()} for variant, summary in by.items()
        }
        for subset, by in headline.items()
    }


def headline_frame(headline: dict[str, dict[str, dict[str, Estimate]]]) -> pd.DataFrame:
    """:func:`headline_metrics` as a table: one row per metric, a column per (subset, variant).

    Parameters
    ----------
    headline : dict
        :func:`headline_metrics`' result.

    Returns
    -------
    DataFrame
        Metrics as rows, (subset, model) as columns.
    """
    return pd.DataFrame(
        {
            (subset, variant): {metric: str(e) for metric, e in summary.items()}
            for subset, by_variant in headline.items()
            for variant, summary in by_variant.items()
        }
    )


def headline_by_threshold(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    nearest_train_bits: np.ndarray,
    *,
    thresholds: tuple[int, ...] = (0, 2, 4, 6, 8),
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy and macro-F1 on the test images farther than ``t`` pHash bits from every training image.

    The leak-free subset depends on where "a copy" ends: at 2 bits (chapter 01's
    near duplicates) re-saved scans are caught, while neighbouring slices of one
    patient sit at about 4 bits. Tightening the threshold shows how much of the
    headline rests on test scans that resemble training scans.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
    nearest_train_bits : ndarray of shape (n,)
        Each test image's pHash distance to its nearest training image.
    thresholds : tuple of int
    groups : ndarray of shape (n,), optional
    n_boot : int, default=1000
    seed : int, default=0

    Returns
    -------
    DataFrame
        One row for all test images, then one per threshold: ``test images kept``,
        ``accuracy`` and ``macro-F1`` as ``value [low, high]`` text.
    """
    distance = np.asarray(nearest_train_bits)
    masks = {"all test images": np.ones(len(distance), bool)}
    masks |= {f"none within {t} bits of a training image": distance > t for t in thresholds}
    rows = {}
    for name, mask in masks.items():
        row = {"test images kept": int(mask.sum())}
        if mask.any():
            g = None if groups is None else groups[mask]
            for label, metric in (("accuracy", metrics.accuracy), ("macro-F1", metrics.macro_f1)):
                found = metrics.bootstrap_ci(
                    metric, y_true[mask], y_pred[mask], n_boot=n_boot, seed=seed, groups=g
                )
                row[label] = str(found)
        rows[name] = row
    return pd.DataFrame(rows).T


def leaking_test_rows(manifest: pd.DataFrame) -> np.ndarray:
    """Boolean mask over ``manifest``: test images with an exact or near duplicate in training.

    Parameters
    ----------
    manifest : DataFrame

    Returns
    -------
    ndarray of bool, shape (len(manifest),)
    """
    grouped = manifest[manifest["dup_group"] >= 0]
    in_train = set(grouped.loc[grouped["split"] == "train", "dup_group"])
    return ((manifest["split"] == "test") & manifest["dup_group"].isin(in_train)).to_numpy()


def leakage_composition(labels: np.ndarray, leaks: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Test images per class: all, those with a duplicate in training, and those kept without them.

    Leaving the leaked images out can change the class mix (a class may vanish), so metrics
    on what is kept average over other proportions than those on the whole test split.

    Parameters
    ----------
    labels : ndarray of shape (n,)
    leaks : ndarray of bool, shape (n,)
    class_names : list of str

    Returns
    -------
    DataFrame
    """
    labels, leaks = np.asarray(labels), np.asarray(leaks, dtype=bool)
    n = len(class_names)
    every, leaked = np.bincount(labels, minlength=n), np.bincount(labels[leaks], minlength=n)
    return pd.DataFrame(
        {"all": every, "with a duplicate in training": leaked, "kept": every - leaked},
        index=pd.Index(class_names, name="class"),
    )


def leakage_effect(
    headline: dict[str, dict[str, dict[str, Estimate]]],
    *,
    metrics: tuple[str, ...] = ("accuracy", "balanced accuracy", "macro-F1"),
) -> pd.DataFrame:
    """How much the leaked test images flatter each model: all images minus leak-free, in points.

    Parameters
    ----------
    headline : dict
        :func:`headline_metrics`' result, holding both :data:`LEAK_FREE` and :data:`ALL_IMAGES`.
    metrics : tuple of str
        The headline metrics to show.

    Returns
    -------
    pandas.DataFrame
        Indexed by (model, metric): each subset's estimate as text, and the difference.
    """
    rows = {}
    for name in headline[LEAK_FREE]:
        for metric in metrics:
            clean, every = headline[LEAK_FREE][name][metric], headline[ALL_IMAGES][name][metric]
            rows[(name, metric)] = {
                LEAK_FREE: str(clean),
                ALL_IMAGES: str(every),
                "all minus leak-free (points)": round(100 * (every.value - clean.value), 1),
            }
    return pd.DataFrame.from_dict(rows, orient="index")


def missing_classes_note(composition: pd.DataFrame) -> str:
    """A warning when leaving the leaked test images out empties a class, else ``""``.

    Parameters
    ----------
    composition : DataFrame
        :func:`leakage_composition`'s table.
    """
    emptied = composition.index[composition["kept"] == 0].tolist()
    if not emptied:
        return ""
    return (
        f"No {', '.join(emptied)} test images are free of a duplicate in training: the leak-free "
        "numbers average over fewer classes, in other proportions, than those on all test images "
        "(balanced accuracy and macro-F1 weigh each remaining class equally)."
    )


def subsets_record(subsets: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, dict[str, int]]:
    """Images and bootstrap groups per test subset, for ``metrics.json``.

    Parameters
    ----------
    subsets : dict of str to ndarray of bool, shape (n_test,)
        From :func:`test_subsets`.
    groups : ndarray of shape (n_test,)
        From :func:`bootstrap_groups`.
    """
    return {s: {"images": int(m.sum()), "groups": len(np.unique(groups[m]))} for s, m in subsets.items()}


def predict_proba(model, images: np.ndarray, *, batch_size: int = 64, flip: bool = False) -> np.ndarray:
    """Class probabilities of uint8 images under a trained classifier.

    Parameters
    ----------
    model : keras.Model
        A classifier from :func:`tumornb.training.train_classifier`.
    images : ndarray of shape (n, side, side), uint8
    batch_size : int, default=64
    flip : bool, default=False
        Test-time augmentation: average each image's probabilities with its left-right mirror's.

    Returns
    -------
    ndarray of shape (n, n_classes), float64
    """
    return predict_in_batches(traced_forward(model), images, batch_size=batch_size, flip=flip)


#: Each model's traced forward pass, for as long as the model lives.
_FORWARD_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def traced_forward(model) -> Callable:
    """``model(x, training=False)`` as one graph for every batch size, traced once per model.

    Called eagerly, batch by batch, the per-operation overhead outweighs the arithmetic on
    small images (6,200 images of 32 px, flip included: 23 s against 4 s on 2 cores).
    Model.predict traces a new graph and builds a dataset at every call, so chapter 04,
    which scores each variant and seed, would retrace; one graph per model does neither,
    and a batch of one stays fast.

    Parameters
    ----------
    model : keras.Model
        A classifier taking ``(batch, side, side, 1)`` float32 images.

    Returns
    -------
    callable
        A ``tf.function`` of a float32 batch; the same one at every call for this model.
    """
    forward = _FORWARD_GRAPHS.get(model)
    if forward is None:
        from tumornb.backend import tf

        live_model = weakref.ref(model)  # the cache must not keep the model alive
        forward = tf.function(
            lambda x: live_model()(x, training=False),
            input_signature=[tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)],
        )
        _FORWARD_GRAPHS[model] = forward
    return forward


def predict_in_batches(
    forward: Callable, images: np.ndarray, *, batch_size: int = 64, flip: bool = False
) -> np.ndarray:
    """``forward`` applied to ``(batch, side, side, 1)`` float32 slices of uint8 images, concatenated.

    Parameters
    ----------
    forward : callable
        Maps a float32 batch to its class probabilities: a model call, or a traced
        graph of one (:class:`tumornb.predict.Predictor`).
    images : ndarray of shape (n, side, side)
    batch_size : int, default=64
    flip : bool, default=False
        Average each image's probabilities with those of its left-right mirror (test-time
        augmentation with the one warp that training's augmentation and anatomy both allow).

    Returns
    -------
    ndarray of shape (n, n_classes), float64
    """

    def probabilities(batch: np.ndarray) -> np.ndarray:
        x = batch[..., None].astype(np.float32)
        p = np.asarray(forward(x), np.float64)
        return (p + np.asarray(forward(x[:, :, ::-1].copy()), np.float64)) / 2 if flip else p

    starts = range(0, len(images), batch_size)
    batches = [probabilities(images[start : start + batch_size]) for start in starts]
    return np.concatenate(batches) if batches else np.empty((0, 0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``log(p) / T``: the same ranking, confidence sharpened (T < 1) or softened (T > 1).

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
    temperature : float

    Returns
    -------
    ndarray of shape (n, n_classes)
    """
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    Fit it on validation predictions, never on test ones (Guo et al., 2017).

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
        On images not used to score (chapter 03's validation images).
    labels : ndarray of shape (n,)

    Returns
    -------
    float
    """
    labels = np.asarray(labels)

    def nll(log_t: float) -> float:
        p = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())

    result = optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def calibration_summary(
    val_probabilities: np.ndarray,
    val_labels: np.ndarray,
    test_probabilities: np.ndarray,
    test_labels: np.ndarray,
    subsets: dict[str, np.ndarray],
) -> dict[str, float]:
    """A temperature fitted on validation predictions, and its effect on each subset of the test images.

    Parameters
    ----------
    val_probabilities : ndarray of shape (n_val, n_classes)
        Chapter 03's validation images, where the temperature is fitted.
    val_labels : ndarray of shape (n_val,)
    test_probabilities : ndarray of shape (n_test, n_classes)
    test_labels : ndarray of shape (n_test,)
    subsets : dict of str to ndarray of bool, shape (n_test,)
        From :func:`test_subsets`.

    Returns
    -------
    dict
        ``accuracy (validation)``, ``temperature (fitted on validation)``, and per
        subset ``accuracy (S)``, ``ECE before (S)`` and ``ECE after (S)``.
    """
    temperature = fit_temperature(val_probabilities, val_labels)
    scaled = apply_temperature(test_probabilities, temperature)
    summary = {
        "accuracy (validation)": float(np.mean(val_probabilities.argmax(1) == np.asarray(val_labels))),
        "temperature (fitted on validation)": temperature,
    }
    for subset, mask in subsets.items():
        y = np.asarray(test_labels)[mask]
        summary[f"accuracy ({subset})"] = float(np.mean(test_probabilities[mask].argmax(1) == y))
        summary[f"ECE before ({subset})"] = expected_calibration_error(test_probabilities[mask], y)
        summary[f"ECE after ({subset})"] = expected_calibration_error(scaled[mask], y)
    return summary


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, *, n_bins: int = 10) -> pd.DataFrame:
    """Confidence of the top class against its accuracy, in equal-width confidence bins.

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
    labels : ndarray of shape (n,)
    n_bins : int, default=10

    Returns
    -------
    DataFrame
        One row per non-empty bin: ``confidence`` (mean), ``accuracy``, ``count``.
    """
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == np.asarray(labels)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    table = pd.DataFrame({"bin": bins, "confidence": confidence, "accuracy": correct.astype(float)})
    grouped = table.groupby("bin").agg(
        confidence=("confidence", "mean"), accuracy=("accuracy", "mean"), count=("accuracy", "size")
    )
    return grouped.reset_index(drop=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins.

    Parameters
    ----------
    probabilities : ndarray of shape (n, n_classes)
    labels : ndarray of shape (n,)
    n_bins : int, default=10

    Returns
    -------
    float
    """
    table = reliability_table(probabilities, labels, n_bins=n_bins)
    return float(
        (table["count"] * (table["confidence"] - table["accuracy"]).abs()).sum() / table["count"].sum()
    )


def temperature_effect(temperature: float, ece_before: float, ece_after: float) -> str:
    """What the validation-fitted temperature did to the test ECE, as a clause worded from the numbers.

    Parameters
    ----------
    temperature : float
    ece_before, ece_after : float

    Returns
    -------
    str

    Examples
    --------
    >>> temperature_effect(0.71, 0.144, 0.219)
    'T = 0.71 sharpens the probabilities and raises the test ECE from 0.144 to 0.219'
    """
    shape = "sharpens" if temperature < 1 else "softens"
    before, after = round(ece_before, 3), round(ece_after, 3)
    if before == after:
        change = f"leaves the test ECE at {before:.3f}"
    else:
        change = f"{'lowers' if after < before else 'raises'} the test ECE from {before:.3f} to {after:.3f}"
    return f"T = {temperature:.2f} {shape} the probabilities and {change}"


def write_predictions(
    path: str | Path,
    rows: pd.DataFrame,
    labels: np.ndarray,
    probabilities: dict[str, np.ndarray],
    class_names,
) -> pd.DataFrame:
    """``predictions.csv``: one row per test image and variant, with every class probability.

    Columns: ``variant``, ``path``, ``true``, ``predicted``, then ``p_<class>`` per class.
    Written atomically.

    Parameters
    ----------
    path : path-like
    rows : DataFrame
        The test rows (column ``path``).
    labels : ndarray of shape (n,)
    probabilities : dict of str to ndarray of shape (n, n_classes)
        By variant.
    class_names : list of str

    Returns
    -------
    DataFrame
    """
    frames = []
    for variant, p in probabilities.items():
        frame = pd.DataFrame(
            {
                "variant": variant,
                "path": rows["path"].to_numpy(),
                "true": np.asarray(class_names)[labels],
                "predicted": np.asarray(class_names)[p.argmax(1)],
            }
        )
        for i, name in enumerate(class_names):
            frame[f"p_{name}"] = p[:, i].round(6)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    with atomic_path(Path(path), suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN or infinities as None, recursively.

    What ``json.dumps`` then writes is standard JSON (null, never ``NaN``), which every
    reader, not only Python's, accepts.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically (NaN as null, see :func:`json_safe`).

    Parameters
    ----------
    path : path-like
    payload : dict
    """
    with atomic_path(Path(path), suffix=".json") as tmp:
        tmp.write_text(json.dumps(json_safe(payload), indent=2))
