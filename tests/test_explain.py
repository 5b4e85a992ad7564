"""Grad-CAM and the pointing game: known answers on a hand-built model, and on a trained one."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from tumornb import explain  # noqa: E402
from tumornb.models import build_model  # noqa: E402
from tumornb.phantom import make_slice  # noqa: E402
from tumornb.training import TrainConfig, train_classifier  # noqa: E402


def _identity_model(side: int = 16) -> keras.Model:
    """Feature map = the image; class 0's logit rises with brightness, class 1's falls."""
    inputs = keras.Input((side, side, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("features").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("probabilities").set_weights(
        [np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)]
    )
    return model


def test_grad_cam_of_a_hand_built_model_is_the_image_or_nothing():
    """Check shape, range and values where Grad-CAM is known: the image itself, or zero."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 100, (3, 16, 16)).astype(np.uint8)
    images[0, 3, 11] = images[1, 12, 2] = images[2, 7, 7] = 255
    model = _identity_model()
    maps = explain.grad_cam(model, images, class_index=0, layer="features")
    assert maps.shape == (3, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    np.testing.assert_allclose(maps, images / images.max(axis=(1, 2), keepdims=True), atol=1e-5)
    peaks = [np.unravel_index(m.argmax(), m.shape) for m in maps]
    assert peaks == [(3, 11), (12, 2), (7, 7)]
    # Class 1's score falls wherever the image is bright: no region supports it.
    assert not explain.grad_cam(model, images, class_index=1, layer="features").any()
    # Without a class, each image's predicted class (here 0) is explained.
    np.testing.assert_allclose(explain.grad_cam(model, images, layer="features"), maps, atol=1e-6)


def test_grad_cam_is_the_same_in_batches_of_any_size():
    """Check that the padding of a last, partial batch changes no map (7 images in batches of 3)."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (7, 32, 32)).astype(np.uint8)
    model = build_model("tumornb_cnn", 32, 4)
    targets = np.array([0, 1, 2, 3, 0, 1, 2])
    whole = explain.grad_cam(model, images, targets)
    np.testing.assert_allclose(explain.grad_cam(model, images, targets, batch_size=3), whole, atol=1e-5)
    for i in (0, 6):  # alone, padded to nothing
        np.testing.assert_allclose(
            explain.grad_cam(model, images[i : i + 1], targets[i])[0], whole[i], atol=1e-5
        )


@pytest.mark.parametrize(("name", "expected_side"), [("tumornb_cnn", 8), ("seed_cnn", 14)])
def test_default_feature_layer_is_the_last_map_of_at_least_8_cells(name, expected_side):
    """Check the default layer of both project models at 128 px."""
    model = build_model(name, 128, 4)
    layer = model.get_layer(explain.last_feature_layer(model))
    assert layer.output.shape[1:3] == (expected_side, expected_side)
    maps = explain.grad_cam(model, np.zeros((2, 128, 128), np.uint8), class_index=[0, 3])
    assert maps.shape == (2, 128, 128) and np.isfinite(maps).all() and maps.min() >= 0


def test_pointing_game_by_hand():
    """Check hits and chance on masks small enough to count by hand."""
    maps = np.zeros((2, 4, 4))
    maps[0, 1, 1] = 1  # inside the lesion
    maps[1, 3, 3] = 1  # outside
    lesions = np.zeros((2, 4, 4), bool)
    lesions[:, 1, 1:3] = True
    brains = np.zeros((2, 4, 4), bool)
    brains[:, :, :] = True
    brains[1, 0, :] = False
    game = explain.pointing_game(maps, lesions, brains)
    assert game.table["hit"].tolist() == [True, False]
    np.testing.assert_allclose(game.table["chance"], [2 / 16, 2 / 12])
    assert game.score == 0.5 and game.chance == pytest.approx((2 / 16 + 2 / 12) / 2)
    with pytest.raises(ValueError, match="empty"):
        explain.pointing_game(maps, np.zeros_like(lesions), brains)


def _planted_lesions(n: int, seed: int, side: int = 64):
    """Phantom brains (notumor slices), every other one with a bright round lesion planted in it."""
    rng = np.random.default_rng(seed)
    images, labels, lesions, brains = [], [], [], []
    for i in range(n):
        sl = make_slice("notumor", rng=rng, height=side, width=side)
        image, lesion = sl.image.copy(), np.zeros((side, side), np.uint8)
        if i % 2:
            rows, cols = np.nonzero(sl.brain)
            k = rng.integers(len(rows))
            cv2.circle(lesion, (int(cols[k]), int(rows[k])), int(rng.integers(4, 7)), 1, -1)
            image[(lesion > 0) & sl.brain] = 255
        images.append(image)
        labels.append(i % 2)
        lesions.append((lesion > 0) & sl.brain)
        brains.append(sl.brain)
    return np.stack(images), np.array(labels), np.stack(lesions), np.stack(brains)


@pytest.mark.slow
def test_grad_cam_of_a_trained_model_points_at_the_lesion(tmp_path):
    """Check that a tumornb_cnn trained on phantom brains looks at the planted lesions (~20 s)."""
    x_train, y_train, _, _ = _planted_lesions(300, seed=1)
    x_test, y_test, lesions, brains = _planted_lesions(100, seed=2)
    config = TrainConfig(image_size=64, epochs=12, seed=0, augmentation=None)
    trained = train_classifier(
        x_train, y_train, x_test, y_test, tmp_path, config, class_names=["none", "lesion"]
    )
    has_lesion = y_test == 1
    maps = explain.grad_cam(trained.model, x_test[has_lesion], class_index=1)
    game = explain.pointing_game(maps, lesions[has_lesion], brains[has_lesion])
    assert game.chance < 0.1
    assert game.score > 5 * game.chance  # measured: 0.64 against 0.053


def test_overlays_are_written_without_touching_other_files(tmp_path):
    """Check write_overlays: one RGB picture per image, repeated names kept apart, scans untouched."""
    model = _identity_model(32)
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32)).astype(np.uint8)
    scan = tmp_path / "a.png"
    scan.write_bytes(b"not to be touched")
    written = explain.write_overlays(model, images, ["x/a.jpg", "y/a.jpg", "b.png"], tmp_path)
    assert [p.name for p in written] == ["a.cam.png", "a-2.cam.png", "b.cam.png"]
    assert cv2.imread(str(written[0])).shape == (32, 32, 3)
    assert scan.read_bytes() == b"not to be touched"


@pytest.mark.slow
def test_chapter_05_measures_the_pointing_game_in_the_smoke_run(smoke_run):
    """Check chapter 05's explanations.json: scores in [0, 1] inside their intervals, predict agrees."""
    import json

    from tumornb.paths import RunDir

    saved = json.loads(RunDir(smoke_run).explanations.read_text())
    rows = {row["class"]: row for row in saved["pointing_game"]}
    assert set(rows) == {"glioma", "meningioma", "pituitary", "all"}
    for row in rows.values():
        assert 0 <= row["low"] <= row["score"] <= row["high"] <= 1
        assert 0 < row["chance"] < 0.5
    assert rows["all"]["n"] == sum(rows[c]["n"] for c in ("glioma", "meningioma", "pituitary"))
    assert saved["predict_vs_chapter_04_max_difference"] < 1e-4
    assert saved["latency_ms"]["median"] > 0


def test_pointing_verdict_quotes_the_scores_of_right_and_wrong_predictions():
    """Check the sentence's numbers: overall score, chance and the hit rates of right and wrong ones."""
    game = explain.PointingGame(
        pd.DataFrame({"hit": [True, True, False, False], "chance": [0.1] * 4, "peak_row": 0, "peak_col": 0})
    )
    summary = explain.pointing_summary(game, ["glioma"] * 4, n_boot=50, seed=0)
    sentence = explain.pointing_verdict(summary, game, np.array([True, True, True, False]))
    assert "in 50% [95% CI" in sentence
    assert "of 4 tumour images, against 10.0% by chance (5.0 times" in sentence
    assert "67% of the correctly classified ones and 0% of the misclassified ones" in sentence
    assert "none (no mistakes)" in explain.pointing_verdict(summary, game, np.ones(4, bool))
