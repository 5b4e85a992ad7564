"""Bootstrap intervals with scikit-learn's metrics against tumornb's counted ones, side by side.

Chapter 04 bootstraps six metrics for every model and subset; scikit-learn's input checks
cost more per call than the counting itself. ``tumornb.metrics`` counts by hand (its tests
check each metric equals scikit-learn's), so the intervals are the same and arrive sooner::

    python benchmarks/bench_bootstrap.py --n-test 1300 --n-boot 1000

Prints the seconds each takes, their ratio, and the largest difference between the intervals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn import metrics as skm

from tumornb import metrics


def sklearn_metrics(n_classes: int) -> dict:
    """The headline metrics as scikit-learn computes them."""
    labels = np.arange(n_classes)

    def macro_f1(y, p):
        return skm.f1_score(y, p, labels=np.unique(y), average="macro", zero_division=0)

    def average_precision(y, proba):
        one_hot = y[:, None] == labels
        return skm.average_precision_score(one_hot, proba) if one_hot.any(0).all() else np.nan

    return {
        "accuracy": skm.accuracy_score,
        "balanced accuracy": skm.balanced_accuracy_score,
        "macro-F1": macro_f1,
        "Cohen's kappa": skm.cohen_kappa_score,
        "ROC-AUC": lambda y, proba: skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels),
        "PR-AUC": average_precision,
    }


def tumornb_metrics() -> dict:
    """The same metrics as :mod:`tumornb.metrics` counts them."""
    return {
        "accuracy": metrics.accuracy,
        "balanced accuracy": metrics.balanced_accuracy,
        "macro-F1": metrics.macro_f1,
        "Cohen's kappa": metrics.cohen_kappa,
        "ROC-AUC": metrics.roc_auc_ovr,
        "PR-AUC": metrics.pr_auc_ovr,
    }


def intervals(functions: dict, y: np.ndarray, proba: np.ndarray, n_boot: int) -> tuple[dict, float]:
    """Every metric's bootstrap interval, and the seconds they took."""
    started, found = time.perf_counter(), {}
    for name, metric in functions.items():
        second = proba if name.endswith("AUC") else proba.argmax(1)
        found[name] = metrics.bootstrap_ci(metric, y, second, n_boot=n_boot, seed=0, groups=np.arange(len(y)))
    return found, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-test", type=int, default=1300, help="test images (a large real download's)")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, args.n_test)
    proba = rng.dirichlet(np.ones(4), args.n_test)
    proba[np.arange(args.n_test), y] += rng.uniform(0, 1.5, args.n_test)  # a model that is right ~80%
    proba /= proba.sum(1, keepdims=True)
    reference, reference_s = intervals(sklearn_metrics(4), y, proba, args.n_boot)
    counted, counted_s = intervals(tumornb_metrics(), y, proba, args.n_boot)
    gap = max(
        abs(getattr(reference[k], end) - getattr(counted[k], end))
        for k in reference
        for end in ("value", "low", "high")
    )
    print(f"{args.n_test} test images, {args.n_boot} resamples, six metrics")
    speed_up = reference_s / counted_s
    print(f"scikit-learn {reference_s:.1f} s, tumornb {counted_s:.1f} s: {speed_up:.1f}x faster")
    print(f"largest difference between the two sets of intervals: {gap:.2e}")


if __name__ == "__main__":
    main()
