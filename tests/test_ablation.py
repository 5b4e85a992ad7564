"""The ablation: each variant's training set, the seed-averaged paired comparison, the smoke run."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from tumornb import ablation
from tumornb.audit import audit_dataset
from tumornb.paths import RunDir

SIDE = 32


@pytest.fixture(scope="module")
def run_with_synthetic(phantom_dir, tmp_path_factory):
    """A run after chapter 01 (32 px) with a fake chapter-02 output of 20 flat images per class."""
    run_dir = tmp_path_factory.mktemp("ablation") / "run"
    audit_dataset(phantom_dir, run_dir, image_size=SIDE)
    run = RunDir(run_dir)
    rows = []
    for label in ("glioma", "meningioma", "notumor", "pituitary"):
        (run.synthetic_dir / label).mkdir(parents=True)
        for i in range(20):
            cv2.imwrite(str(run.synthetic_dir / label / f"{i}.png"), np.full((40, 40), 7, np.uint8))
            rows.append((f"{label}/{i}.png", label))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(run.synthetic_manifest, index=False)
    return run_dir


def test_extreme_variant_keeps_a_tenth_of_real_images_and_nine_synthetic_per_real(run_with_synthetic):
    """Check 10real+90synthetic's counts per class, and that validation is the real variant's."""
    real = ablation.variant_training_set(
        run_with_synthetic, "real", image_size=SIDE, seed=0, val_fraction=0.25
    )
    extreme = ablation.variant_training_set(
        run_with_synthetic, "10real+90synthetic", image_size=SIDE, seed=0, val_fraction=0.25
    )
    n_real = real.counts()["train"]
    is_synthetic = extreme.train_rows["synthetic"].to_numpy()
    kept = pd.Series(extreme.y_train[~is_synthetic]).value_counts().sort_index().to_numpy()
    added = pd.Series(extreme.y_train[is_synthetic]).value_counts().sort_index().to_numpy()
    assert kept.tolist() == [max(1, int(0.1 * n)) for n in n_real]
    assert added.tolist() == [9 * k for k in kept]
    assert added.tolist() == [ablation.extreme_synthetic_count(n) for n in n_real]
    assert is_synthetic.mean() == pytest.approx(0.9)
    np.testing.assert_array_equal(extreme.x_val, real.x_val)
    # The kept real images are real training images, and other seeds keep others.
    assert set(extreme.train_rows["path"][~is_synthetic]) <= set(real.train_rows["path"])
    other = ablation.variant_training_set(
        run_with_synthetic, "10real+90synthetic", image_size=SIDE, seed=1, val_fraction=0.25
    )
    assert set(other.train_rows["path"]) != set(extreme.train_rows["path"])


def test_unknown_variant_is_a_clear_error(run_with_synthetic):
    """Check the error for a misspelt variant."""
    with pytest.raises(ValueError, match=r"unknown variant 'real\+gan'"):
        ablation.variant_training_set(run_with_synthetic, "real+gan", image_size=SIDE, seed=0)


def test_seed_averaged_comparison_of_identical_variants_is_zero():
    """Check identical predictions: difference 0 [0, 0], p = 1."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    preds = [np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200)) for _ in range(3)]
    result = ablation.seed_averaged_comparison(accuracy_score, y, preds, preds)
    assert (result.difference.value, result.difference.low, result.difference.high) == (0, 0, 0)
    assert result.p_value == 1.0


def test_seed_averaged_comparison_detects_a_planted_gain_and_averages_seeds():
    """Check that B, right on 15 points more images with every seed, is found better; value = mean."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    preds_a, preds_b = [], []
    for _ in range(5):
        right_a = rng.random(400) < 0.6
        right_b = right_a | (rng.random(400) < 0.375)  # 0.6 + 0.4 * 0.375 = 0.75
        wrong = (y + 1) % 4
        preds_a.append(np.where(right_a, y, wrong))
        preds_b.append(np.where(right_b, y, wrong))
    result = ablation.seed_averaged_comparison(accuracy_score, y, preds_a, preds_b)
    per_seed = [accuracy_score(y, b) - accuracy_score(y, a) for a, b in zip(preds_a, preds_b, strict=True)]
    assert result.difference.value == pytest.approx(np.mean(per_seed))
    np.testing.assert_allclose(ablation.per_seed_differences(accuracy_score, y, preds_a, preds_b), per_seed)
    assert 0.10 < result.difference.low < result.difference.value < result.difference.high < 0.20
    assert result.p_value < 0.001


def test_seed_averaged_interval_is_students_t_on_the_per_seed_differences():
    """Check the interval against scipy's t-interval for hand-made per-seed accuracies."""
    from scipy import stats

    y = np.zeros(100, int)
    gains = [0.05, -0.02, 0.08, 0.01, 0.03]  # per-seed accuracy of B minus A
    preds_a = [np.r_[np.zeros(50, int), np.ones(50, int)] for _ in gains]  # accuracy 0.5
    preds_b = [np.r_[np.zeros(50 + round(100 * g), int), np.ones(50 - round(100 * g), int)] for g in gains]
    result = ablation.seed_averaged_comparison(accuracy_score, y, preds_a, preds_b)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(gains), scale=stats.sem(gains))
    assert (result.difference.low, result.difference.high) == pytest.approx((low, high))
    assert result.p_value == pytest.approx(stats.ttest_1samp(gains, 0).pvalue)


def test_seed_averaged_comparison_keeps_its_level_under_the_null():
    """Check the null simulation: with 5 seeds and equally good variants, about 5% false rejections."""
    rates = {
        (n_seeds, n_images): ablation.null_rejection_rate(n_seeds=n_seeds, n_images=n_images, seed=7)
        for n_seeds in (3, 5)
        for n_images in (300, 1300)
    }
    print("type-I rate at nominal 5% (seeds, test images):", rates)
    assert all(0.025 <= rate <= 0.085 for rate in rates.values()), rates


def test_seed_averaged_comparison_needs_matching_shapes():
    """Check that predictions of unequal seeds or images are refused."""
    y = np.zeros(5, int)
    with pytest.raises(ValueError, match="equal shape"):
        ablation.seed_averaged_comparison(accuracy_score, y, [y, y], [y])


@pytest.mark.slow
def test_smoke_run_trains_the_ablation_and_chapter_04_compares_it(smoke_run):
    """Check the ablation's folders after the smoke run and chapter 04's ablation results."""
    from tumornb.profiles import profile_parameters

    smoke = profile_parameters("smoke")
    seeds, variants = smoke["ablation_seeds"], smoke["ablation_variants"]
    repetitions = ablation.trained_repetitions(smoke_run)
    assert sorted(zip(repetitions["variant"], repetitions["seed"], strict=True)) == sorted(
        (v, s) for v in variants for s in seeds
    )
    for row in repetitions.itertuples():
        info = json.loads((row.dir / "train.json").read_text())
        assert info["config"]["seed"] == row.seed and info.get("variant", row.variant) == row.variant
    saved = json.loads(RunDir(smoke_run).metrics.read_text())["ablation"]
    subsets = ("test images with no duplicate in training", "all test images")
    assert len(saved["per_run"]) == 2 * len(subsets) * len(variants) * len(seeds)
    compared = {(c["test images"], c["comparison"], c["metric"], c["seeds"]) for c in saved["comparisons"]}
    assert compared == {
        (subset, f"{v} vs real", m, len(seeds))
        for subset in subsets
        for v in variants[1:]
        for m in ("accuracy", "macro-F1")
    }
    assert len(saved["per_seed_differences"]) == len(compared) * len(seeds)
    for c in saved["comparisons"]:
        assert c["low"] <= c["difference"] <= c["high"] and c[ablation.P_SEEDS] <= c["p (Holm)"] <= 1


def test_ablate_command_names_a_wrong_variant(tmp_path, capsys):
    """Check `tumornb ablate` with a misspelt variant: exit status 1 and the valid names."""
    from tumornb.cli import main

    status = main(["ablate", "--run-dir", str(tmp_path), "--seeds", "0", "--variants", "real,gan"])
    assert status == 1
    assert "unknown variant gan" in capsys.readouterr().err


def _fake_training(folder, seed, **config):
    folder.mkdir(parents=True)
    base = {"model": "tumornb_cnn", "image_size": 32, "epochs": 2, "learning_rate": 5e-4, "seed": seed}
    info = {"config": base | config, "variant": folder.parent.name}
    (folder / "train.json").write_text(json.dumps(info))


def test_repetitions_with_another_configuration_are_left_out_with_the_reason(tmp_path):
    """Check that a repetition trained with other epochs is not pooled, and the reason names them."""
    for seed in (1, 2, 3):
        _fake_training(ablation.ablation_dir(tmp_path, "real", seed), seed)
    _fake_training(ablation.ablation_dir(tmp_path, "real+synthetic", 1), 1)
    _fake_training(ablation.ablation_dir(tmp_path, "real+synthetic", 2), 2, epochs=1)
    kept, excluded = ablation.comparable_repetitions(ablation.trained_repetitions(tmp_path))
    assert sorted(zip(kept["variant"], kept["seed"], strict=True)) == [
        ("real", 1),
        ("real", 2),
        ("real", 3),
        ("real+synthetic", 1),
    ]
    assert excluded[["variant", "seed"]].values.tolist() == [["real+synthetic", 2]]
    assert excluded["reason"].iloc[0] == "trained with epochs = 1 (the others: 2)"


def test_analyse_ablation_pairs_seeds_per_subset_and_words_the_verdict():
    """Check per-seed differences, seed counts and the verdict on a hand-made three-seed ablation."""
    y = np.zeros(10, int)
    right = lambda k: np.r_[np.zeros(k, int), np.ones(10 - k, int)]  # noqa: E731 (k of 10 right)
    predictions = {("real", 0): right(5), ("real", 1): right(6), ("real", 2): right(4)}
    predictions |= {
        ("real+synthetic", 0): right(7),
        ("real+synthetic", 1): right(7),
        ("real+synthetic", 2): right(7),
    }
    subsets = {"clean": np.arange(10) < 10, "half": np.arange(10) < 5}
    found = ablation.analyse_ablation(y, predictions, subsets, metrics={"accuracy": accuracy_score})
    clean = found.differences[found.differences["test images"] == "clean"]
    assert clean["difference"].round(6).tolist() == [20.0, 10.0, 30.0]
    assert found.table["seeds"].tolist() == [3, 3] and found.table["test images"].tolist() == [
        "clean",
        "half",
    ]
    # On the first five images only seed 2's real model misses one: differences 0, 0 and 20 points.
    assert found.table["difference"].round(4).tolist() == [20.0, 6.6667]
    text = found.verdict("clean")
    assert text.startswith("**Verdict over 3 training seeds, on the clean**")
    assert "adding the synthetic images" in text and ablation.CONFOUNDS in text


def test_filtered_variant_draws_only_images_the_judge_assigns_to_their_class(run_with_synthetic):
    """Check real+filtered-synthetic: an error without judge scores, then faithful images only, <= 30%."""
    from tumornb.fidelity import record_judgement

    run = RunDir(run_with_synthetic)
    with pytest.raises(ValueError, match="has no judge scores: run chapter 02 again"):
        ablation.variant_training_set(run_with_synthetic, "real+filtered-synthetic", image_size=SIDE, seed=0)
    names = ["glioma", "meningioma", "notumor", "pituitary"]
    synthetic = pd.read_csv(run.synthetic_manifest)
    # The judge agrees with every glioma and the first 3 meningioma images, and with nothing else.
    agrees = (synthetic["label"] == "glioma") | (
        (synthetic["label"] == "meningioma") & (synthetic.groupby("label").cumcount() < 3)
    )
    probabilities = np.full((len(synthetic), 4), 0.1)
    intended = synthetic["label"].map({n: i for i, n in enumerate(names)}).to_numpy()
    probabilities[np.arange(len(synthetic)), np.where(agrees, intended, (intended + 1) % 4)] = 0.7
    saved = record_judgement(run.synthetic_manifest, probabilities, names)
    assert (saved["judge_class"] == saved["label"]).tolist() == agrees.tolist()
    filtered = ablation.variant_training_set(
        run_with_synthetic, "real+filtered-synthetic", image_size=SIDE, seed=0, val_fraction=0.25
    )
    real = ablation.variant_training_set(
        run_with_synthetic, "real", image_size=SIDE, seed=0, val_fraction=0.25
    )
    added = filtered.train_rows[filtered.train_rows["synthetic"]]
    n_real = real.train_rows["label"].value_counts()
    assert set(added["path"]) <= set(synthetic.loc[agrees, "path"])
    assert added["label"].value_counts().to_dict() == {
        "glioma": round(0.3 * n_real["glioma"]),
        "meningioma": min(3, round(0.3 * n_real["meningioma"])),
    }
    # Classes the judge never agrees with get no synthetic image, and that is not an error.
    none = np.zeros_like(probabilities)
    none[np.arange(len(synthetic)), (intended + 1) % 4] = 1.0
    record_judgement(run.synthetic_manifest, none, names)
    only_real = ablation.variant_training_set(
        run_with_synthetic, "real+filtered-synthetic", image_size=SIDE, seed=0, val_fraction=0.25
    )
    assert not only_real.train_rows["synthetic"].any() and len(only_real.x_train) == len(real.x_train)
    assert only_real.y_train.dtype == real.y_train.dtype  # labels stay integers with nothing added


def test_seed_ensemble_is_the_mean_of_the_variants_seeds():
    """Check that the ensemble averages exactly the named variant's seeds and refuses an absent one."""
    rng = np.random.default_rng(0)
    probabilities = {
        (v, s): rng.dirichlet(np.ones(4), 10) for v in ("real", "real+synthetic") for s in (0, 1, 2)
    }
    expected = np.mean([probabilities[("real", s)] for s in (0, 1, 2)], axis=0)
    np.testing.assert_allclose(ablation.seed_ensemble(probabilities, "real"), expected)
    with pytest.raises(ValueError, match="no trained repetition of '10real"):
        ablation.seed_ensemble(probabilities, "10real+90synthetic")
