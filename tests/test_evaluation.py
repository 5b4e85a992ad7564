"""Calibration, leakage filtering and the prediction file of chapter 04."""

import gc
import json
import weakref

import numpy as np
import pandas as pd
import pytest

from tumornb.evaluation import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    leakage_composition,
    leaking_test_rows,
    predict_proba,
    reliability_table,
    temperature_effect,
    write_json,
    write_predictions,
)


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _calibrated_sample(n, seed, temperature=1.0):
    """Labels drawn from softmax(logits); probabilities reported at ``temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.5, size=(n, 4))
    truth = _softmax(logits)
    labels = np.array([rng.choice(4, p=p) for p in truth])
    return _softmax(logits / temperature), labels


def test_temperature_one_changes_nothing_and_ranking_is_kept():
    p, _ = _calibrated_sample(50, 0)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-9)
    np.testing.assert_array_equal(apply_temperature(p, 3.0).argmax(1), p.argmax(1))


def test_fit_temperature_recovers_an_overconfident_model():
    # Reported at T = 0.5 (overconfident): fitting should find about 2 to undo it.
    p, labels = _calibrated_sample(4000, 1, temperature=0.5)
    assert fit_temperature(p, labels) == pytest.approx(2.0, rel=0.15)


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    calibrated, labels = _calibrated_sample(4000, 2)
    overconfident, _ = _calibrated_sample(4000, 2, temperature=0.3)
    assert expected_calibration_error(calibrated, labels) < 0.03
    assert expected_calibration_error(overconfident, labels) > 0.1
    table = reliability_table(calibrated, labels)
    assert table["count"].sum() == 4000 and (table["confidence"] <= 1).all()


def test_ece_by_hand():
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # Bin 0.9: confidence 0.9, accuracy 0.5; bin 0.6: confidence 0.6, accuracy 1.0.
    assert expected_calibration_error(p, labels) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)


def test_leaking_test_rows_are_test_images_with_a_duplicate_in_training():
    manifest = pd.DataFrame(
        {
            "split": ["train", "test", "test", "test", "train", "test"],
            "dup_group": [0, 0, 1, -1, 2, 2],
        }
    )
    # group 1 is only in test (a duplicate pair inside the test split): not leakage.
    manifest.loc[len(manifest)] = ["test", 1]
    assert leaking_test_rows(manifest).tolist() == [False, True, False, False, False, True, False]


def test_leakage_composition_counts_what_leaving_the_leaked_images_out_keeps():
    labels = np.array([0, 0, 1, 1, 1, 2])
    leaks = np.array([True, False, True, True, True, False])
    table = leakage_composition(labels, leaks, ["a", "b", "c", "d"])
    assert table["all"].tolist() == [2, 3, 1, 0]
    assert table["with a duplicate in training"].tolist() == [1, 3, 0, 0]
    assert table["kept"].tolist() == [1, 0, 1, 0]  # class b vanishes from the kept images
    assert table.index.tolist() == ["a", "b", "c", "d"]


def test_temperature_effect_is_worded_from_the_numbers():
    assert temperature_effect(0.71, 0.144, 0.219) == (
        "T = 0.71 sharpens the probabilities and raises the test ECE from 0.144 to 0.219"
    )
    assert temperature_effect(1.8, 0.12, 0.03) == (
        "T = 1.80 softens the probabilities and lowers the test ECE from 0.120 to 0.030"
    )
    assert temperature_effect(1.1, 0.0501, 0.0499).endswith("leaves the test ECE at 0.050")


def test_prediction_file_has_one_row_per_image_and_variant(tmp_path):
    rows = pd.DataFrame({"path": ["a.png", "b.png"]})
    probabilities = {"real": np.array([[0.7, 0.3], [0.2, 0.8]]), "mixed": np.array([[0.4, 0.6], [0.1, 0.9]])}
    table = write_predictions(tmp_path / "predictions.csv", rows, np.array([0, 1]), probabilities, ["x", "y"])
    again = pd.read_csv(tmp_path / "predictions.csv")
    assert list(again.columns) == ["variant", "path", "true", "predicted", "p_x", "p_y"]
    assert again["predicted"].tolist() == ["x", "y", "y", "y"] and len(table) == 4
    assert not list(tmp_path.glob("*.tmp*"))


def test_json_turns_nan_into_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": np.float64("nan"), "b": [np.int64(3), 0.5]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": [3, 0.5]}


@pytest.mark.slow
def test_chapter_04_writes_metrics_and_predictions_in_the_smoke_run(smoke_run):
    """Check chapter 04's files after the smoke profile: every test image, both variants, intervals."""
    from tumornb.paths import RunDir
    from tumornb.profiles import profile_parameters

    run = RunDir(smoke_run)
    smoke = profile_parameters("smoke")
    predictions = pd.read_csv(run.predictions)
    n_test = 4 * smoke["phantom_test_per_class"]
    assert predictions.groupby("variant").size().to_dict() == {"real": n_test, "real+synthetic": n_test}
    probabilities = predictions.filter(like="p_").to_numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)
    assert (predictions["predicted"] == predictions.filter(like="p_").idxmax(axis=1).str[2:]).all()
    saved = json.loads(run.metrics.read_text())
    assert saved["n_test"] == n_test and saved["n_boot"] == smoke["n_boot"]
    assert list(saved["headline"]) == [saved["first_subset"], "all test images"]
    assert saved["first_subset"] == "test images with no duplicate in training"
    assert saved["subsets"]["all test images"]["images"] == n_test
    for by_variant in saved["headline"].values():
        assert set(by_variant) == {"real", "real+synthetic"}
        for summary in by_variant.values():
            accuracy = summary["accuracy"]
            assert accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert [(c["test images"], c["metric"]) for c in saved["comparisons"]] == [
        (subset, metric) for subset in saved["headline"] for metric in ("accuracy", "macro-F1")
    ]


def _test_set(leaks, dup_group):
    from tumornb.evaluation import TestSet

    rows = pd.DataFrame({"leaks": leaks, "dup_group": dup_group})
    return TestSet(np.zeros((len(rows), 2, 2)), np.zeros(len(rows), int), rows, ["a"])


def test_leak_free_subset_comes_first_and_leaves_out_the_leaked_images():
    """Check the subsets of a hand-made test split: leak-free first, every image second."""
    from tumornb.evaluation import ALL_IMAGES, LEAK_FREE, test_subsets

    subsets = test_subsets(_test_set([False, True, False, True], [-1, 4, 7, 4]))
    assert list(subsets) == [LEAK_FREE, ALL_IMAGES]
    assert subsets[LEAK_FREE].tolist() == [True, False, True, False] and subsets[ALL_IMAGES].all()
    with pytest.raises(ValueError, match="all 2 test images have a duplicate in training"):
        test_subsets(_test_set([True, True], [1, 1]))


def test_bootstrap_groups_join_duplicates_and_keep_singletons_apart():
    """Check that images of one duplicate group share a label and every ungrouped image has its own."""
    from tumornb.evaluation import bootstrap_groups

    groups = bootstrap_groups(_test_set([False] * 5, [-1, 4, -1, 4, 9]).rows)
    assert groups[1] == groups[3] and len(set(groups)) == 4


def test_headline_by_threshold_keeps_only_images_farther_than_each_threshold():
    """Check counts and accuracy when only the images far from training are kept."""
    from tumornb.evaluation import headline_by_threshold

    y = np.zeros(6, int)
    pred = np.array([0, 0, 0, 1, 1, 0])  # the three closest to training are right
    bits = np.array([0, 2, 4, 6, 8, 10])
    table = headline_by_threshold(y, pred, bits, thresholds=(0, 4, 8), n_boot=50)
    assert table["test images kept"].tolist() == [6, 5, 3, 1]
    assert [row.split()[0] for row in table["accuracy"]] == ["0.667", "0.600", "0.333", "1.000"]


def test_leakage_effect_subtracts_the_leak_free_value_from_all_images():
    """Check the difference in points, per model and metric, and the note when a class empties."""
    from tumornb.evaluation import ALL_IMAGES, LEAK_FREE, leakage_effect, missing_classes_note
    from tumornb.metrics import Estimate

    headline = {
        LEAK_FREE: {"real": {"accuracy": Estimate(0.80, 0.7, 0.9)}},
        ALL_IMAGES: {"real": {"accuracy": Estimate(0.95, 0.9, 0.99)}},
    }
    table = leakage_effect(headline, metrics=("accuracy",))
    assert table.loc[("real", "accuracy"), "all minus leak-free (points)"] == 15.0
    assert table.loc[("real", "accuracy"), LEAK_FREE] == str(Estimate(0.80, 0.7, 0.9))
    composition = leakage_composition(np.array([0, 0, 1, 2]), np.array([0, 0, 1, 0], bool), ["a", "b", "c"])
    assert missing_classes_note(composition).startswith("No b test images")
    assert missing_classes_note(leakage_composition(np.array([0, 1]), np.zeros(2, bool), ["a", "b"])) == ""


def test_predict_proba_is_the_model_follows_its_weights_and_lets_it_go():
    """Check the traced forward pass: equal to calling the model, up to date, not keeping it alive."""
    from tumornb.models import build_model

    model = build_model("tumornb_cnn", 32, 4)
    images = np.random.default_rng(0).integers(0, 255, (5, 32, 32)).astype(np.uint8)
    x = images[..., None].astype(np.float32)
    np.testing.assert_allclose(
        predict_proba(model, images, batch_size=2), model(x, training=False), atol=1e-6
    )
    model.get_layer("probabilities").bias.assign([4.0, 0.0, 0.0, -4.0])  # after the trace
    np.testing.assert_allclose(
        predict_proba(model, images, batch_size=2), model(x, training=False), atol=1e-6
    )
    model_alive = weakref.ref(model)
    del model
    gc.collect()
    assert model_alive() is None
