"""Metrics against hand-computed cases, the bootstrap, paired tests and the verdict wording."""

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.metrics import accuracy_score

from tumornb.metrics import (
    Comparison,
    Estimate,
    balanced_accuracy,
    bootstrap_ci,
    classification_summary,
    cohen_kappa,
    comparison_table,
    format_p,
    holm,
    macro_f1,
    mcnemar,
    paired_bootstrap,
    per_class_table,
    pr_auc_ovr,
    roc_auc_ovr,
    specificity,
    verdict,
)

LABELS = ["a", "b", "c"]


def test_per_class_table_matches_a_hand_computed_case():
    y_true = np.array(["a", "a", "a", "b", "b", "c"])
    y_pred = np.array(["a", "a", "b", "b", "c", "c"])
    table = per_class_table(y_true, y_pred, LABELS)
    # a: TP 2, FP 0, FN 1, TN 3.  b: TP 1, FP 1, FN 1, TN 3.  c: TP 1, FP 1, FN 0, TN 4.
    np.testing.assert_allclose(table["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(table["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(table["specificity"], [1.0, 0.75, 0.8])
    np.testing.assert_allclose(table["F1"], [0.8, 0.5, 2 / 3])
    assert table["support"].tolist() == [3, 2, 1]
    np.testing.assert_allclose(specificity(y_true, y_pred, np.array(LABELS)), [1.0, 0.75, 0.8])


def test_classification_summary_point_values():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    summary = classification_summary(y_true, y_pred, n_boot=50)
    assert summary["accuracy"].value == pytest.approx(0.75)
    assert summary["balanced accuracy"].value == pytest.approx(0.75)  # (1/2 + 1) / 2
    # kappa: p_o = 0.75, p_e = 0.5 * 0.25 + 0.5 * 0.75 = 0.5
    assert summary["Cohen's kappa"].value == pytest.approx(0.5)


def _predictions(n, accuracy, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n)
    wrong = rng.random(n) > accuracy
    return y_true, np.where(wrong, (y_true + 1) % 4, y_true)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_images():
    widths = []
    for n in (100, 1600):
        y_true, y_pred = _predictions(n, 0.8, seed=1)
        est = bootstrap_ci(accuracy_score, y_true, y_pred, n_boot=500)
        assert est.low <= est.value <= est.high
        widths.append(est.high - est.low)
    # The width shrinks like 1 / sqrt(n): 16x the images, about 1/4 the width.
    assert widths[1] < 0.4 * widths[0]


def test_paired_comparison_of_identical_predictions_shows_no_difference():
    y_true, y_pred = _predictions(300, 0.7, seed=2)
    comparison = paired_bootstrap(accuracy_score, y_true, y_pred, y_pred, name="accuracy")
    assert comparison.difference == Estimate(0.0, 0.0, 0.0) and comparison.p_value == 1.0
    assert mcnemar(y_true, y_pred, y_pred) == 1.0


def test_a_planted_improvement_is_detected():
    y_true, pred_a = _predictions(400, 0.6, seed=3)
    pred_b = pred_a.copy()
    fixed = np.flatnonzero(pred_a != y_true)[:60]  # B gets 60 more images right (+15 points)
    pred_b[fixed] = y_true[fixed]
    comparison = paired_bootstrap(accuracy_score, y_true, pred_a, pred_b, name="accuracy")
    assert comparison.difference.value == pytest.approx(60 / 400)
    assert comparison.difference.low > 0 and comparison.p_value < 0.01
    assert mcnemar(y_true, pred_a, pred_b) < 1e-10  # 60 discordant images, all favouring B


def test_mcnemar_matches_the_binomial_by_hand():
    y_true = np.zeros(10, int)
    pred_a = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])  # right on 3
    pred_b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])  # right on 5: 2 discordant, both for B
    # Two-sided exact binomial, 2 of 2: 2 * 0.5^2
    assert mcnemar(y_true, pred_a, pred_b) == pytest.approx(0.5)


def test_holm_adjusts_step_down_and_keeps_order():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.001]), [0.5, 0.002])
    assert holm([0.9, 0.8]).max() <= 1.0


def test_verdict_wording_follows_the_numbers():
    gain = Comparison("macro-F1", Estimate(0.042, 0.011, 0.070), 0.004)
    assert verdict(gain, what="adding synthetic images") == (
        "Adding synthetic images improves macro-F1 by +4.2 points [95% CI +1.1 to +7.0] (p = 0.004)."
    )
    none = Comparison("accuracy", Estimate(0.005, -0.02, 0.03), 0.61)
    assert verdict(none, what="adding synthetic images").startswith("No significant difference:")
    # The same gain is not significant once corrected for three comparisons.
    corrected = verdict(gain, what="x", p_adjusted=0.2)
    assert corrected.startswith("No significant difference") and corrected.endswith(
        "(Holm-adjusted p = 0.200)."
    )
    assert "[95% CI +1.1 to +7.0, unadjusted]" in corrected
    loss = Comparison("accuracy", Estimate(-0.08, -0.12, -0.04), 0.0)
    assert verdict(loss, what="training on 90% synthetic images").endswith(
        "worsens accuracy by -8.0 points [95% CI -12.0 to -4.0] (p < 0.001)."
    )


def test_p_values_below_the_resolution_are_not_printed_as_zero():
    assert format_p(0.0) == "p < 0.001" and format_p(0.0423) == "p = 0.042"


def test_roc_and_pr_auc_match_hand_computed_rankings():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    # Class 0 ranks its two images above the rest; class 1 ranks one negative above one positive.
    p = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.7, 0.2, 0.1],
            [0.1, 0.8, 0.1],
            [0.3, 0.3, 0.4],
            [0.2, 0.4, 0.4],
            [0.1, 0.1, 0.8],
        ]
    )
    # Class 1: positives score 0.8 and 0.3; negatives 0.1, 0.2, 0.4, 0.1. Pairs won: 4 + 3 = 7 of 8.
    # Class 2: positives 0.4 and 0.8; negatives 0.1, 0.1, 0.1, 0.4 (a tie counts half): 4 + 3.5 of 8.
    assert roc_auc_ovr(y_true, p) == pytest.approx((1 + 7 / 8 + 7.5 / 8) / 3)
    # Average precision of class 1: ranks 0.8 (hit), 0.4, 0.3 (hit): (1 + 2/3) / 2.
    # Class 2: 0.8 (hit) then the tie at 0.4 of one hit and one miss, taken together: (1 + 2/3) / 2.
    assert pr_auc_ovr(y_true, p) == pytest.approx((1 + 5 / 6 + 5 / 6) / 3)


def test_comparison_table_is_in_points_with_holm_across_every_row():
    found = [
        ("b vs a", Comparison("accuracy", Estimate(0.05, 0.01, 0.09), 0.01)),
        ("b vs a", Comparison("macro-F1", Estimate(0.04, -0.01, 0.08), 0.04)),
        ("c vs a", Comparison("accuracy", Estimate(-0.5, -0.55, -0.45), 0.03)),
    ]
    table = comparison_table(found)
    assert table["comparison"].tolist() == ["b vs a", "b vs a", "c vs a"]
    np.testing.assert_allclose(table[["difference", "low", "high"]].iloc[2], [-50.0, -55.0, -45.0])
    np.testing.assert_allclose(table["p (Holm)"], [0.03, 0.06, 0.06])
    assert comparison_table([]).empty


def test_macro_f1_averages_over_the_classes_that_are_present():
    """Check that a vanished but still predicted class does not count as F1 = 0 (0.98 is not 0.74)."""
    y_true = np.repeat([0, 1, 2], 100)
    y_pred = y_true.copy()
    y_pred[:3] = 3  # three glioma images called pituitary, a class with no true image here
    f1_glioma = 2 * 97 / (2 * 97 + 3)
    assert macro_f1(y_true, y_pred) == pytest.approx((f1_glioma + 1 + 1) / 3)
    assert macro_f1(y_true, y_pred) > 0.98


def test_pr_auc_is_nan_when_a_class_has_no_image():
    """Check that a resample without a class gives NaN (skipped by the interval), not a deflated value."""
    y_true = np.array([0, 0, 1, 1])
    p = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    assert np.isnan(pr_auc_ovr(y_true, p))
    p[3] = [0.1, 0.1, 0.8]  # the last image now the only, top-ranked, class-2 image
    assert pr_auc_ovr(np.array([0, 0, 1, 2]), p) == pytest.approx(1.0)


def test_bootstrap_p_values_never_fall_below_what_the_resamples_can_resolve():
    """Check that B resamples all on one side give p = 2 / (B + 1), not 0."""
    y_true, pred_a = _predictions(400, 0.6, seed=4)
    pred_b = y_true.copy()  # B is right everywhere: every resampled difference is positive
    comparison = paired_bootstrap(accuracy_score, y_true, pred_a, pred_b, n_boot=200)
    assert comparison.p_value == pytest.approx(2 / 201)
    assert format_p(comparison.p_value) == "p = 0.010"


def test_group_bootstrap_keeps_groups_whole():
    """Check that a grouped resample holds every image of a drawn group, as often as it was drawn."""
    from tumornb.metrics import bootstrap_draws

    groups = np.array([5, 5, 9, 7, 7, 7])
    for draw in bootstrap_draws(6, 50, np.random.default_rng(0), groups):
        counts = np.bincount(draw, minlength=6)
        assert counts[0] == counts[1] and counts[3] == counts[4] == counts[5]
        assert counts[0] + counts[2] + counts[3] == 3  # three groups drawn


def test_group_bootstrap_is_wider_on_clustered_data_only():
    """Check 50 groups of 8 identical outcomes: about sqrt(8) times wider; independent outcomes: alike."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(50), 8)
    y = np.zeros(400, int)
    clustered = np.repeat(rng.random(50) < 0.7, 8).astype(int)
    independent = (rng.random(400) < 0.3).astype(int)

    def width(pred, groups=None):
        e = bootstrap_ci(accuracy_score, y, pred, n_boot=1000, groups=groups)
        return e.high - e.low

    assert width(clustered, groups) > 2 * width(clustered)
    assert 0.8 < width(independent, groups) / width(independent) < 1.25
    a, b = clustered, np.repeat(rng.random(50) < 0.7, 8).astype(int)
    paired_image = paired_bootstrap(accuracy_score, y, a, b, n_boot=1000).difference
    paired_group = paired_bootstrap(accuracy_score, y, a, b, n_boot=1000, groups=groups).difference
    assert paired_group.high - paired_group.low > 2 * (paired_image.high - paired_image.low)


def test_single_run_comparison_is_described_never_judged():
    """Check the single-run wording: the measured difference, and no verdict words even when p is tiny."""
    from tumornb.metrics import describe

    gain = Comparison("accuracy", Estimate(0.08, 0.04, 0.12), 0.0005)
    text = describe(gain, model="the model trained with synthetic images", reference="the real-only model")
    assert text.startswith("On these test images, the model trained with synthetic images scored +8.0 points")
    assert "(p < 0.001)" in text and text.endswith("cannot tell this from training noise.")
    for claim in ("improves", "worsens", "significant", "helps"):
        assert claim not in text
    adjusted = describe(gain, model="B", reference="A", p_adjusted=0.002)
    assert "[95% CI +4.0 to +12.0, unadjusted]" in adjusted and "Holm-adjusted p = 0.002" in adjusted


@pytest.mark.filterwarnings("ignore")  # scikit-learn's, about the missing classes the case means
@pytest.mark.parametrize("seed", range(6))
def test_the_fast_metrics_equal_scikit_learns_with_ties_and_missing_classes(seed):
    """The bootstrap's metrics count by hand (for speed); each must equal scikit-learn's own.

    Probabilities rounded to one decimal make many ties, and some cases leave a class out of
    ``y_true`` or out of ``y_pred``, as a bootstrap resample does.
    """
    rng = np.random.default_rng(seed)
    n, k = rng.integers(5, 60), 4
    y_true = rng.integers(0, k - (seed % 2), n)  # odd seeds: class 3 never true
    probabilities = np.round(rng.dirichlet(np.ones(k), n), 1)
    probabilities /= probabilities.sum(1, keepdims=True)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k - (seed % 3 == 0), n))
    present = np.unique(y_true)
    assert balanced_accuracy(y_true, y_pred) == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert cohen_kappa(y_true, y_pred) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    expected_f1 = skm.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(expected_f1)
    if len(present) < k:
        assert np.isnan(roc_auc_ovr(y_true, probabilities)) and np.isnan(pr_auc_ovr(y_true, probabilities))
    else:
        expected_roc = skm.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=np.arange(k))
        assert roc_auc_ovr(y_true, probabilities) == pytest.approx(expected_roc)
        one_hot = y_true[:, None] == np.arange(k)
        expected_ap = skm.average_precision_score(one_hot, probabilities, average="macro")
        assert pr_auc_ovr(y_true, probabilities) == pytest.approx(expected_ap)
    assert np.isnan(cohen_kappa(np.zeros(4, int), np.zeros(4, int)))  # chance agreement 1, as sklearn
