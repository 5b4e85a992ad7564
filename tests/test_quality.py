"""Distances between image sets and the memorisation check."""

import numpy as np
import pandas as pd
import pytest

from tumornb.quality import (
    frechet_distance,
    kernel_distance,
    memorisation,
    near_copy_threshold,
    nearest_neighbours,
    precision_recall,
    quality_table,
)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    return rng.normal(size=(400, 8)), rng.normal(size=(400, 8))


def test_frechet_distance_is_zero_for_a_set_with_itself_and_grows_with_a_shift(features):
    a, b = features
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    same_distribution = frechet_distance(a, b)
    shifts = [frechet_distance(a, b + s) for s in (0.5, 1.0, 2.0)]
    assert same_distribution < shifts[0] < shifts[1] < shifts[2]
    # A shift of every coordinate by s adds d * s^2 to the distance.
    assert shifts[2] - same_distribution == pytest.approx(8 * 4, rel=0.1)


def test_frechet_distance_sees_a_change_of_spread(features):
    a, b = features
    assert frechet_distance(a, 3 * b) > 10 * frechet_distance(a, b)


def test_kernel_distance_is_about_zero_for_one_distribution_and_positive_for_two(features):
    a, b = features
    same, spread = kernel_distance(a, b, seed=0)
    shifted, _ = kernel_distance(a, b + 1.0, seed=0)
    assert abs(same) < 3 * spread + 1e-3
    assert shifted > 20 * abs(same)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)


def test_nearest_neighbours_finds_a_planted_copy_and_can_skip_itself(features):
    real, fake = features
    fake = fake.copy()
    fake[7] = real[123]
    distances, indices = nearest_neighbours(fake, real)
    assert indices[7] == 123 and distances[7] == pytest.approx(0, abs=1e-6)
    assert distances.argmin() == 7
    self_distances, self_indices = nearest_neighbours(real, real, exclude_self=True)
    assert (self_indices != np.arange(len(real))).all() and (self_distances > 0).all()


def test_a_planted_copy_falls_under_the_near_copy_threshold_and_fresh_samples_do_not(features):
    """Check the threshold from fresh-to-training distances: copies flagged, new real images about 1%."""
    reference, fresh = features
    new = np.random.default_rng(1).normal(size=(2000, 8))  # more real images, never seen
    threshold = near_copy_threshold(reference, fresh, quantile=0.01)
    distances, _ = nearest_neighbours(new, reference)
    assert (distances < threshold).mean() <= 0.02
    copies = reference[[5, 50, 250]] + 1e-3  # near-copies, as a memorising generator would make
    assert (nearest_neighbours(copies, reference)[0] < threshold).all()


def test_near_duplicates_among_the_training_images_do_not_shrink_the_threshold(features):
    """Check that 5% near-duplicates inside the training set leave the threshold, and its flags, alone."""
    reference, fresh = features
    rng = np.random.default_rng(2)
    duplicated = np.vstack([reference, reference[:20] + 1e-3 * rng.normal(size=(20, 8))])
    clean, with_duplicates = near_copy_threshold(reference, fresh), near_copy_threshold(duplicated, fresh)
    assert with_duplicates == pytest.approx(clean, rel=0.1)
    noisy_copies = reference[100:120] + 0.05 * rng.normal(size=(20, 8))
    assert (nearest_neighbours(noisy_copies, duplicated)[0] < with_duplicates).all()
    # The null it replaces, training-to-training distances, collapses with the duplicates:
    inside, _ = nearest_neighbours(duplicated, duplicated, exclude_self=True)
    assert np.quantile(inside, 0.01) < 0.1 * with_duplicates


def test_precision_recall_of_a_matching_a_collapsed_and_a_disjoint_generator(features):
    real, fake = features
    precision, recall = precision_recall(real[:200], fake[:200])
    assert precision > 0.8 and recall > 0.8
    collapsed = real[:200].mean(0) + 0.01 * fake[:200]  # realistic but no variety
    precision, recall = precision_recall(real[:200], collapsed)
    assert precision > 0.9 and recall < 0.1
    precision, recall = precision_recall(real[:200], fake[:200] + 100)
    assert precision == 0 and recall == 0


def test_quality_table_puts_a_good_generator_near_the_floor_and_a_bad_one_far_above(features):
    """Check scores against unseen reference images: a fresh sample at the floor, a shifted one far above."""
    train, fake = features
    reference = np.random.default_rng(5).normal(size=(200, 8))
    labels, reference_labels = np.repeat(["a", "b"], 200), np.repeat(["a", "b"], 100)
    good = quality_table(train, labels, fake, labels, reference, reference_labels, seed=0)
    bad = quality_table(train, labels, fake + 2.0, labels, reference, reference_labels, seed=0)
    assert list(good.index) == ["a", "b"] and good["n_reference"].tolist() == [100, 100]
    assert (good["FID"] < 2 * good["FID floor"]).all()
    assert (bad["FID"] > 10 * bad["FID floor"]).all()
    assert (bad["precision"] < good["precision"]).all()


def test_quality_floor_uses_as_many_training_images_as_synthetic_ones(features):
    """Check that 30 synthetic images are scored against a floor of 30 training images, not 200."""
    train, fake = features
    reference = np.random.default_rng(6).normal(size=(100, 8))
    table = quality_table(
        train, np.repeat("a", 400), fake[:30], np.repeat("a", 30), reference, np.repeat("a", 100)
    )
    assert table.loc["a", "n"] == 30


def test_memorisation_flags_a_planted_copy_of_a_training_image(features):
    """Check a planted copy is flagged, the false-flag rate is stated, and no copying is claimed."""
    reference, fresh = features
    fake = np.random.default_rng(3).normal(size=(400, 8))
    fake[42] = reference[7]
    found = memorisation(fake, reference, fresh)
    table = found.table
    assert table.loc[42, "near_copy"] and table.loc[42, "nearest_real"] == 7
    assert table["near_copy"].sum() <= 1 + 0.03 * len(fake)
    assert found.false_flag_rate == pytest.approx(0.01, abs=0.005)
    assert len(found.fresh_distances) == len(fresh) and found.copying_p > 0.05
    assert found.summary().startswith(f"{int(table['near_copy'].sum())} of 400 synthetic images")


def test_memorisation_sees_a_generator_that_copies_with_noise(features):
    """Check that synthetic images which are all noisy training copies give a tiny copying p-value."""
    reference, fresh = features
    fake = reference[:300] + 0.3 * np.random.default_rng(4).normal(size=(300, 8))
    found = memorisation(fake, reference, fresh)
    assert found.copying_p < 1e-6


def test_precision_recall_matches_the_definition_computed_in_full():
    """Check the blockwise distances against all pairwise distances at once (the textbook form)."""
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(300, 16)), rng.normal(size=(250, 16)) + 0.3

    def radii(x):
        return np.sort(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), axis=1)[:, 3]

    def inside(points, centres):
        d = np.sqrt(((points[:, None] - centres[None]) ** 2).sum(-1))
        return (d <= radii(centres)[None, :]).any(1).mean()

    assert precision_recall(real, fake) == pytest.approx((inside(fake, real), inside(real, fake)))


def test_quality_by_variant_is_quality_table_for_each_variant():
    """Check that the per-variant table stacks quality_table's rows for each variant's own images."""
    from tumornb.quality import embed, feature_encoder, quality_by_variant, quality_table

    rng = np.random.default_rng(0)
    encoder = feature_encoder(32, seed=0)
    images = {name: rng.integers(0, 255, (24, 32, 32), dtype=np.uint8) for name in ("a", "b")}
    labels = np.repeat(["x", "y"], 12)
    train = embed(encoder, rng.integers(0, 255, (24, 32, 32), dtype=np.uint8))
    reference = embed(encoder, rng.integers(0, 255, (24, 32, 32), dtype=np.uint8))
    table = quality_by_variant(encoder, images, labels, train, labels, reference, labels, seed=1)
    assert list(table.index.get_level_values("variant").unique()) == ["a", "b"]
    for name, imgs in images.items():
        expected = quality_table(train, labels, embed(encoder, imgs), labels, reference, labels, seed=1)
        pd.testing.assert_frame_equal(table.loc[name], expected)
