"""Classification metrics with their uncertainty, and paired comparisons of two classifiers.

Every headline number is reported with a bootstrap 95% confidence interval over
test images (:func:`bootstrap_ci`); when images come in correlated groups
(near-duplicates, slices of one patient), pass ``groups`` and whole groups are
resampled instead (the cluster bootstrap), which widens the interval as much as
the correlation warrants. Two classifiers scored on the *same* test
images are compared pairwise (:func:`paired_bootstrap`, :func:`mcnemar`), and a
family of comparisons is corrected with Holm's method (:func:`holm`).
:func:`verdict` turns a comparison into the sentence a chapter prints, so the
wording always follows the numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as skm

__all__ = [
    "Comparison",
    "Estimate",
    "accuracy",
    "balanced_accuracy",
    "bootstrap_ci",
    "bootstrap_draws",
    "classification_summary",
    "cohen_kappa",
    "comparison_table",
    "comparisons_record",
    "describe",
    "format_p",
    "holm",
    "macro_f1",
    "mcnemar",
    "paired_bootstrap",
    "per_class_table",
    "paired_comparisons",
    "pr_auc_ovr",
    "roc_auc_ovr",
    "specificity",
    "subset_comparison_table",
    "t_interval",
    "table_comparisons",
    "verdict",
]

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of right predictions, as scikit-learn's ``accuracy_score`` (without its input checks).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.

    Returns
    -------
    float
    """
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 averaged over the classes present in ``y_true``, each weighing the same.

    A class with no true image has no F1 worth averaging: counting it as 0 because
    the model still predicts it (scikit-learn's default averages over the classes
    in ``y_true`` or ``y_pred``) would make a subset where a class vanished look
    far worse than it is. Those wrong predictions still count: they lower the
    recall of the true classes whose images they took, and those classes stay in
    the average.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.

    Returns
    -------
    float

    Examples
    --------
    >>> macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2]))  # class 2 is never true
    0.8333333333333333
    """
    cm, in_true = _confusion(y_true, y_pred)
    tp = np.diag(cm)[in_true]
    wrong = cm.sum(0)[in_true] + cm.sum(1)[in_true] - 2 * tp  # false positives + false negatives
    return float(np.mean(2 * tp / (2 * tp + wrong)))


def _confusion(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The confusion matrix over the labels of either array, and which of them occur in ``y_true``.

    Counted with one ``bincount``: the bootstrap calls the metrics built on it
    thousands of times, where scikit-learn's input checks would cost more than the counting.
    """
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k, n = len(labels), len(y_true)
    cm = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k)
    return cm, cm.sum(1) > 0


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Recall averaged over the classes present in ``y_true``, as scikit-learn's ``balanced_accuracy_score``.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.

    Returns
    -------
    float
    """
    cm, in_true = _confusion(y_true, y_pred)
    return float(np.mean(np.diag(cm)[in_true] / cm.sum(1)[in_true]))


def cohen_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Agreement beyond chance, as scikit-learn's ``cohen_kappa_score``: NaN when chance agreement is 1.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.

    Returns
    -------
    float
        ``(p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of agreements and ``p_e``
        the share expected from the two label frequencies alone.
    """
    cm, _ = _confusion(y_true, y_pred)
    n = cm.sum()
    observed = np.trace(cm) / n
    expected = float(cm.sum(1) @ cm.sum(0)) / n**2
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def specificity(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per class, the share of images *not* of that class that were not predicted as it.

    ``TN / (TN + FP)`` one-vs-rest; NaN for a class that every image belongs to.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
    labels : ndarray
        The classes, in the order of the result.

    Returns
    -------
    ndarray of shape (n_labels,)
    """
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    tn = cm.sum() - tp - fp - fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return tn / (tn + fp)


def roc_auc_ovr(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest ROC-AUC averaged over classes; class ``k`` is column ``k`` of ``probabilities``.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Class indices.
    probabilities : ndarray of shape (n, n_classes)

    Returns
    -------
    float
    """
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities)
    areas = []
    for k in range(probabilities.shape[1]):
        positive = y_true == k
        n_pos, n_neg = positive.sum(), (~positive).sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        # The Mann-Whitney statistic: the chance a positive outranks a negative, ties counting half.
        ranks = stats.rankdata(probabilities[:, k])
        areas.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(areas))


def pr_auc_ovr(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """One-vs-rest PR-AUC (average precision) averaged over classes, each weighing the same.

    Unlike ROC-AUC it moves with class prevalence: a random ranking scores the
    class's share of the images, not 0.5.

    Parameters
    ----------
    y_true : ndarray of shape (n,)
        Class indices.
    probabilities : ndarray of shape (n, n_classes)

    Returns
    -------
    float
        NaN when a class has no image in ``y_true`` (its average precision is
        undefined; a bootstrap resample that misses a class is then skipped
        rather than scored as if the class had been ranked last).
    """
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities)
    precisions = []
    for k in range(probabilities.shape[1]):
        order = np.argsort(-probabilities[:, k], kind="stable")
        scores, positive = probabilities[order, k], y_true[order] == k
        if not positive.any():
            return float("nan")
        # One point per distinct score, highest first: precision there, times the recall it adds.
        last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
        true_positives = np.cumsum(positive)[last_of_tie]
        precision = true_positives / (last_of_tie + 1)
        recall_gained = np.diff(true_positives, prepend=0) / true_positives[-1]
        precisions.append(float(recall_gained @ precision))
    return float(np.mean(precisions))


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]):
    """Precision, recall (sensitivity), specificity, F1 and support per class.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.
    labels : list
        The class indices (or names) to report, in order.

    Returns
    -------
    DataFrame
        One row per label, in ``labels`` order.
    """
    import pandas as pd

    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "specificity": specificity(y_true, y_pred, np.asarray(labels)),
            "F1": f1,
            "support": support,
        },
        index=pd.Index(labels, name="class"),
    )


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval.

    Parameters
    ----------
    value : float
    low, high : float
        The ends of the 95% interval.
    """

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def t_interval(values: np.ndarray, *, level: float = 0.95) -> Estimate:
    """The mean of a few repetitions (e.g. training seeds) with its Student's t interval.

    Parameters
    ----------
    values : ndarray of shape (k,)
        One value per repetition; at least 2.
    level : float, default=0.95

    Returns
    -------
    Estimate
        The mean, and ``mean +- t(level, k - 1) * sd / sqrt(k)``.

    Examples
    --------
    >>> str(t_interval(np.array([0.80, 0.82, 0.84])))
    '0.820 [0.770, 0.870]'
    """
    values = np.asarray(values, float)
    k = len(values)
    if k < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {k}")
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * values.std(ddof=1) / np.sqrt(k))
    return Estimate(mean, mean - half, mean + half)


def bootstrap_draws(
    n: int, n_boot: int, rng: np.random.Generator, groups: np.ndarray | None = None
) -> list[np.ndarray]:
    """Index arrays of ``n_boot`` bootstrap resamples of ``n`` items.

    Without ``groups``, each resample draws ``n`` items with replacement. With
    ``groups`` (one label per item), it draws as many groups as there are, with
    replacement, and takes every item of each drawn group: items that belong
    together are kept together, so their correlation shows in the spread.

    Parameters
    ----------
    n : int
        Items in the sample.
    n_boot : int
        Resamples to draw.
    rng : numpy.random.Generator
    groups : ndarray of shape (n,), optional
        A group label per item; whole groups are drawn.

    Returns
    -------
    list of ndarray of int
        Item indices of each resample.

    Examples
    --------
    >>> draws = bootstrap_draws(4, 2, np.random.default_rng(0), groups=np.array([0, 0, 1, 1]))
    >>> [sorted(d.tolist()) in ([0, 0, 1, 1], [0, 1, 2, 3], [2, 2, 3, 3]) for d in draws]
    [True, True]
    """
    if groups is None:
        return list(rng.integers(0, n, size=(n_boot, n)))
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"need one group per item: {len(groups)} groups for {n} items")
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")  # the items of group g are order[starts[g]:][:sizes[g]]
    starts = np.cumsum(sizes) - sizes
    draws = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(sizes), len(sizes))
        lengths = sizes[drawn]
        ends = np.cumsum(lengths)
        within = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)
        draws.append(order[np.repeat(starts[drawn], lengths) + within])
    return draws


def _resampled(
    metric: Metric, draws: Sequence[np.ndarray], y_true: np.ndarray, y_pred: np.ndarray
) -> list[float]:
    # A resample may miss a class; metrics then warn and may give NaN, which the
    # percentiles skip. The warnings say nothing about the data, so they are muted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [metric(y_true[i], y_pred[i]) for i in draws]


def bootstrap_ci(
    metric: Metric,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> Estimate:
    """``metric(y_true, y_pred)`` with a percentile bootstrap interval over test images.

    Chapter 04 writes the loop out by hand for accuracy before calling this.

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``, e.g. :func:`sklearn.metrics.accuracy_score`.
    y_true, y_pred : array-like of shape (n,)
    n_boot : int, default=1000
        Resamples of the test images, drawn with replacement.
    level : float, default=0.95
    seed : int, default=0
    groups : array-like of shape (n,), optional
        A group label per image (e.g. the manifest's ``dup_group``): whole groups
        are resampled (see :func:`bootstrap_draws`).

    Returns
    -------
    Estimate
        The metric on all images and the interval's bounds.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"need equally many true and predicted labels, got {len(y_true)} and {len(y_pred)}")
    draws = bootstrap_draws(len(y_true), n_boot, np.random.default_rng(seed), groups)
    values = np.array(_resampled(metric, draws, y_true, y_pred))
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Estimate(float(metric(y_true, y_pred)), float(low), float(high))


def classification_summary(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Accuracy, balanced accuracy, macro-F1 and Cohen's kappa, each with its bootstrap interval.

    ``groups``, when given, makes every interval a cluster bootstrap (:func:`bootstrap_draws`).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        True and predicted class indices.
    n_boot : int, default=1000
    seed : int, default=0
    groups : ndarray of shape (n,), optional
        Duplicate (or patient-proxy) group of each image.

    Returns
    -------
    dict of str to Estimate
        Keyed by metric name.
    """
    headline: dict[str, Metric] = {
        "accuracy": accuracy,
        "balanced accuracy": balanced_accuracy,
        "macro-F1": macro_f1,
        "Cohen's kappa": cohen_kappa,
    }
    return {
        name: bootstrap_ci(metric, y_true, y_pred, n_boot=n_boot, seed=seed, groups=groups)
        for name, metric in headline.items()
    }


@dataclass(frozen=True)
class Comparison:
    """Classifier B minus classifier A on the same test images.

    Parameters
    ----------
    metric : str
    difference : Estimate
        B minus A, with its 95% interval.
    p_value : float
        Two-sided, of no difference.
    """

    metric: str
    difference: Estimate
    p_value: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the p-value is below ``alpha``."""
        return self.p_value < alpha


def paired_bootstrap(
    metric: Metric,
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    *,
    name: str = "metric",
    n_boot: int = 2000,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> Comparison:
    """Difference ``metric(B) - metric(A)`` with a paired bootstrap interval and two-sided p-value.

    Both classifiers are scored on the same resampled images, so image difficulty
    cancels out of the difference. The p-value is twice the smaller share of
    resampled differences on either side of zero, counted as ``(1 + k) / (B + 1)``
    so that ``B`` resamples never claim a p-value below ``2 / (B + 1)``.
    ``groups`` resamples whole groups of images (:func:`bootstrap_draws`).

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred) -> float``.
    y_true, pred_a, pred_b : ndarray of shape (n,)
    name : str, default="metric"
        Recorded in the result.
    n_boot : int, default=2000
    seed : int, default=0
    groups : ndarray of shape (n,), optional

    Returns
    -------
    Comparison
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    draws = bootstrap_draws(len(y_true), n_boot, np.random.default_rng(seed), groups)
    deltas = np.array(_resampled(metric, draws, y_true, pred_b)) - np.array(
        _resampled(metric, draws, y_true, pred_a)
    )
    observed = metric(y_true, pred_b) - metric(y_true, pred_a)
    low, high = np.nanpercentile(deltas, [2.5, 97.5])
    if np.allclose(deltas, 0):
        p_value = 1.0
    else:
        deltas = deltas[~np.isnan(deltas)]
        tail = min((deltas <= 0).sum(), (deltas >= 0).sum())
        p_value = min(1.0, 2 * (1 + tail) / (len(deltas) + 1))
    return Comparison(name, Estimate(float(observed), float(low), float(high)), float(p_value))


def mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Exact McNemar test of equal accuracy: two-sided p-value from the discordant images.

    Only images that exactly one classifier gets right carry information; under
    equal accuracy each is equally likely to favour either.

    Parameters
    ----------
    y_true, pred_a, pred_b : ndarray of shape (n,)
        True classes and the two classifiers' predictions.

    Returns
    -------
    float
        The p-value; 1.0 when no image is discordant.
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    right_a, right_b = pred_a == y_true, pred_b == y_true
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: p-values controlling the family-wise error rate.

    Parameters
    ----------
    p_values : sequence of float
        One family of tests.

    Returns
    -------
    ndarray
        Adjusted p-values, in the input's order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    scaled = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted


def comparison_table(comparisons: Sequence[tuple[str, Comparison]], *, p_label: str = "p (bootstrap)"):
    """A family of comparisons as a table, in points, with Holm-adjusted p-values.

    Parameters
    ----------
    comparisons : sequence of (label, Comparison)
        ``label`` names what is compared, e.g. ``"real+synthetic vs real"``.
        Every comparison counts towards Holm's correction.
    p_label : str, default="p (bootstrap)"
        The name of the column of raw p-values: how they were computed.

    Returns
    -------
    DataFrame
        Columns ``comparison``, ``metric``, ``difference``, ``low``, ``high``
        (100 times the metric's difference and interval, i.e. points for a rate),
        ``p_label`` and ``p (Holm)``. The interval is not adjusted.
    """
    import pandas as pd

    raw = [c.p_value for _, c in comparisons]
    return pd.DataFrame(
        {
            "comparison": [label for label, _ in comparisons],
            "metric": [c.metric for _, c in comparisons],
            "difference": [100 * c.difference.value for _, c in comparisons],
            "low": [100 * c.difference.low for _, c in comparisons],
            "high": [100 * c.difference.high for _, c in comparisons],
            p_label: raw,
            "p (Holm)": holm(raw) if raw else [],
        }
    )


def subset_comparison_table(
    found: dict[str, Sequence[tuple[str, Comparison]]], *, p_label: str = "p (bootstrap)"
):
    """:func:`comparison_table` for each subset of test images, stacked, with a ``test images`` column first.

    Holm's correction runs over the comparisons of one subset: each subset asks
    the same questions of other images, so it is its own family.

    Parameters
    ----------
    found : dict of str to sequence of (str, Comparison)
        As :func:`paired_comparisons` returns.
    p_label : str, default="p (bootstrap)"
        The column holding the unadjusted p-values.

    Returns
    -------
    DataFrame
    """
    import pandas as pd

    tables = [
        comparison_table(comparisons, p_label=p_label).assign(**{"test images": subset})
        for subset, comparisons in found.items()
        if comparisons
    ]
    if not tables:
        return pd.DataFrame()
    table = pd.concat(tables, ignore_index=True)
    return table[["test images", *table.columns.drop("test images")]]


def paired_comparisons(
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    subsets: dict[str, np.ndarray],
    *,
    label: str,
    groups: np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, list[tuple[str, Comparison]]]:
    """B minus A in accuracy and macro-F1 on each subset of the images (:func:`paired_bootstrap`).

    Parameters
    ----------
    y_true, pred_a, pred_b : ndarray of shape (n,)
    subsets : dict of str to ndarray of bool, shape (n,)
        Which images each comparison uses.
    label : str
        The comparison's name, e.g. ``"real+synthetic vs real"``.
    groups : ndarray of shape (n,), optional
    n_boot : int, default=2000
    seed : int, default=0

    Returns
    -------
    dict
        Subset -> ``[(label, accuracy comparison), (label, macro-F1 comparison)]``,
        ready for :func:`subset_comparison_table`.
    """
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    return {
        subset: [
            (
                label,
                paired_bootstrap(
                    score,
                    y_true[mask],
                    pred_a[mask],
                    pred_b[mask],
                    name=name,
                    n_boot=n_boot,
                    seed=seed,
                    groups=None if groups is None else np.asarray(groups)[mask],
                ),
            )
            for score, name in ((accuracy, "accuracy"), (macro_f1, "macro-F1"))
        ]
        for subset, mask in subsets.items()
    }


def table_comparisons(
    table, subset: str, *, p_label: str = "p (bootstrap)"
) -> list[tuple[Comparison, float]]:
    """The rows of :func:`subset_comparison_table` for ``subset``, as ``(Comparison, Holm-adjusted p)``.

    Parameters
    ----------
    table : DataFrame
        From :func:`subset_comparison_table`.
    subset : str
    p_label : str, default="p (bootstrap)"

    Returns
    -------
    list of (Comparison, float)
    """
    rows = table[table["test images"] == subset].to_dict(orient="records")
    return [
        (
            Comparison(
                r["metric"], Estimate(r["difference"] / 100, r["low"] / 100, r["high"] / 100), r[p_label]
            ),
            r["p (Holm)"],
        )
        for r in rows
    ]


def comparisons_record(comparisons: dict[str, list[tuple[str, Comparison]]]) -> list[dict]:
    """:func:`paired_comparisons`' result as plain values, one record per subset and metric.

    Parameters
    ----------
    comparisons : dict of str to list of (str, Comparison)
        Subset to its labelled comparisons.

    Returns
    -------
    list of dict
    """
    return [
        {"test images": s, "metric": c.metric, "difference": vars(c.difference), "p_value": c.p_value}
        for s, pairs in comparisons.items()
        for _, c in pairs
    ]


def format_p(p: float) -> str:
    """``"p = 0.042"``, or ``"p < 0.001"`` below what three decimals (or a bootstrap) can resolve.

    Parameters
    ----------
    p : float

    Returns
    -------
    str
    """
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _points(comparison: Comparison, *, adjusted: bool) -> str:
    d = comparison.difference
    # Holm adjusts p-values, not intervals: an interval next to an adjusted p-value says so.
    unadjusted = ", unadjusted" if adjusted else ""
    return f"{100 * d.value:+.1f} points [95% CI {100 * d.low:+.1f} to {100 * d.high:+.1f}{unadjusted}]"


def verdict(
    comparison: Comparison, *, what: str, alpha: float = 0.05, p_adjusted: float | None = None
) -> str:
    """One sentence that states what a comparison shows, worded from its numbers only.

    Use it where the comparison can answer the question (repeated trainings);
    :func:`describe` words a single training run per variant.

    Parameters
    ----------
    comparison : Comparison
        B minus A.
    what : str
        What B is, e.g. ``"adding synthetic images"``.
    p_adjusted : float, optional
        The p-value after multiple-comparison correction; the raw one when not given.
    """
    p = comparison.p_value if p_adjusted is None else p_adjusted
    p_text = format_p(p) if p_adjusted is None else f"Holm-adjusted {format_p(p)}"
    points = _points(comparison, adjusted=p_adjusted is not None)
    if p >= alpha:
        return f"No significant difference: {what} changes {comparison.metric} by {points} ({p_text})."
    direction = "improves" if comparison.difference.value > 0 else "worsens"
    return f"{what[0].upper()}{what[1:]} {direction} {comparison.metric} by {points} ({p_text})."


def describe(comparison: Comparison, *, model: str, reference: str, p_adjusted: float | None = None) -> str:
    """One sentence that describes a single-run comparison without drawing a conclusion from it.

    One training run per model cannot separate what was changed from the
    randomness of training, so the sentence states what was measured on these
    test images and says so.

    Parameters
    ----------
    comparison : Comparison
    model, reference : str
        How the sentence names B and A.
    p_adjusted : float, optional
        A multiplicity-adjusted p-value to quote instead of the raw one.

    Returns
    -------
    str

    Examples
    --------
    >>> c = Comparison("accuracy", Estimate(0.02, -0.01, 0.05), 0.2)
    >>> describe(c, model="the model trained with synthetic images", reference="the real-only model")
    'On these test images, the model trained with synthetic images scored +2.0 points [95% CI -1.0 to +5.0] \
of accuracy against the real-only model (p = 0.200); one training run each cannot tell this from \
training noise.'
    """
    p = comparison.p_value if p_adjusted is None else p_adjusted
    p_text = format_p(p) if p_adjusted is None else f"Holm-adjusted {format_p(p)}"
    points = _points(comparison, adjusted=p_adjusted is not None)
    return (
        f"On these test images, {model} scored {points} of {comparison.metric} against {reference} "
        f"({p_text}); one training run each cannot tell this from training noise."
    )
