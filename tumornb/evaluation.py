"""Scoring trained classifiers on the held-out test split: predictions, calibration, leakage.

The test split is read here and nowhere in training or model selection. The one
fitted quantity, the softmax temperature, is fitted on the *validation* split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from tumornb.paths import atomic_path
from tumornb.training import run_images

__all__ = [
    "TestSet",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "leaking_test_rows",
    "leakage_composition",
    "predict_in_batches",
    "predict_proba",
    "reliability_table",
    "temperature_effect",
    "test_set",
    "write_json",
    "write_predictions",
]


class TestSet:
    """The test split of a run: images, integer labels, and their manifest rows."""

    __test__ = False  # not a pytest test class

    def __init__(self, images: np.ndarray, labels: np.ndarray, rows: pd.DataFrame, class_names: list[str]):
        self.images, self.labels, self.rows, self.class_names = images, labels, rows, class_names

    def __len__(self) -> int:
        return len(self.labels)


def test_set(run_dir: str | Path, image_size: int) -> TestSet:
    """The usable test images of a run at ``image_size``, as cached by chapter 01.

    ``rows["leaks"]`` marks the test images with a duplicate in the training split.
    """
    usable, images, class_names = run_images(run_dir, image_size)
    is_test = (usable["split"] == "test").to_numpy()
    index = {name: i for i, name in enumerate(class_names)}
    # Whether each test image has an exact or near duplicate in training (chapter 01's groups).
    rows = usable.assign(leaks=leaking_test_rows(usable))[is_test].reset_index(drop=True)
    return TestSet(images[is_test], rows["label"].map(index).to_numpy(), rows, class_names)


def leaking_test_rows(manifest: pd.DataFrame) -> np.ndarray:
    """Boolean mask over ``manifest``: test images with an exact or near duplicate in training."""
    grouped = manifest[manifest["dup_group"] >= 0]
    in_train = set(grouped.loc[grouped["split"] == "train", "dup_group"])
    return ((manifest["split"] == "test") & manifest["dup_group"].isin(in_train)).to_numpy()


def leakage_composition(labels: np.ndarray, leaks: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """Test images per class: all, those with a duplicate in training, and those kept without them.

    Leaving the leaked images out can change the class mix (a class may vanish), so metrics
    on what is kept average over other proportions than those on the whole test split.
    """
    labels, leaks = np.asarray(labels), np.asarray(leaks, dtype=bool)
    n = len(class_names)
    every, leaked = np.bincount(labels, minlength=n), np.bincount(labels[leaks], minlength=n)
    return pd.DataFrame(
        {"all": every, "with a duplicate in training": leaked, "kept": every - leaked},
        index=pd.Index(class_names, name="class"),
    )


def predict_proba(model, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of uint8 images ``(n, side, side)`` under a trained classifier."""
    # Plain calls, not Model.predict: that traces a new graph per model, and chapter 04
    # scores one model per variant and seed (TensorFlow then warns about retracing).
    return predict_in_batches(lambda x: model(x, training=False), images, batch_size=batch_size)


def predict_in_batches(forward: Callable, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """``forward`` applied to ``(batch, side, side, 1)`` float32 slices of uint8 images, concatenated.

    Parameters
    ----------
    forward : callable
        Maps a float32 batch to its class probabilities: a model call, or a traced
        graph of one (:class:`tumornb.predict.Predictor`).
    images : ndarray of shape (n, side, side)
    batch_size : int, default=64

    Returns
    -------
    ndarray of shape (n, n_classes), float64
    """
    batches = [
        np.asarray(forward(images[start : start + batch_size, ..., None].astype(np.float32)), np.float64)
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(batches) if batches else np.empty((0, 0))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``log(p) / T``: the same ranking, confidence sharpened (T < 1) or softened (T > 1)."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    Fit it on validation predictions, never on test ones (Guo et al., 2017).
    """
    labels = np.asarray(labels)

    def nll(log_t: float) -> float:
        p = apply_temperature(probabilities, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())

    result = optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, *, n_bins: int = 10) -> pd.DataFrame:
    """Confidence of the top class against its accuracy, in equal-width confidence bins.

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
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    table = reliability_table(probabilities, labels, n_bins=n_bins)
    return float(
        (table["count"] * (table["confidence"] - table["accuracy"]).abs()).sum() / table["count"].sum()
    )


def temperature_effect(temperature: float, ece_before: float, ece_after: float) -> str:
    """What the validation-fitted temperature did to the test ECE, as a clause worded from the numbers.

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


def write_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically (NaN as null)."""

    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float | np.floating):
            return None if not np.isfinite(value) else float(value)
        if isinstance(value, np.integer):
            return int(value)
        return value

    with atomic_path(Path(path), suffix=".json") as tmp:
        tmp.write_text(json.dumps(clean(payload), indent=2))
