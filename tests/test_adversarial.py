"""Adversarial images and adversarial fine-tuning on a tiny classifier and a toy two-class task."""

from __future__ import annotations

import numpy as np
import pytest

from tumornb.adversarial import adversarial_finetune, l2_attack
from tumornb.backend import keras, layers


def _toy(n: int = 64, side: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 is brighter in the top half, class 1 in the bottom half (mirroring keeps the class)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.normal(110, 30, (n, side, side, 1))
    for i, label in enumerate(labels):
        half = slice(0, side // 2) if label == 0 else slice(side // 2, side)
        images[i, half] += 40
    return np.clip(images, 0, 255).astype(np.float32), labels


def _classifier(side: int = 16, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((side, side, 1)),
            layers.Rescaling(1 / 255),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def trained():
    images, labels = _toy()
    model = _classifier()
    model.fit(images, labels, epochs=30, batch_size=16, verbose=0)
    return model, images, labels


def _loss(model, images, labels) -> np.ndarray:
    p = model.predict(np.asarray(images), verbose=0)
    return -np.log(p[np.arange(len(labels)), labels] + 1e-12)


def test_an_attack_stays_within_its_radius_and_the_pixel_range(trained):
    """Check every moved image lies within the L2 radius (in [0, 1] units) of its own, in [0, 255]."""
    model, images, labels = trained
    moved = np.asarray(l2_attack(model, images, labels, radius=0.5, steps=3))
    distance = np.sqrt(((moved - images) ** 2).reshape(len(images), -1).sum(1)) / 255
    assert distance.max() <= 0.5 + 1e-4 and distance.max() > 0.4
    assert moved.min() >= 0 and moved.max() <= 255
    assert np.array_equal(np.asarray(l2_attack(model, images, labels, radius=0.0)), images)


def test_an_attack_raises_the_loss_and_a_targeted_one_lowers_it(trained):
    """Check the untargeted attack raises the true class's loss; towards the other class lowers its loss."""
    model, images, labels = trained
    away = np.asarray(l2_attack(model, images, labels, radius=1.0))
    assert np.all(_loss(model, away, labels) > _loss(model, images, labels))
    other = 1 - labels
    towards = np.asarray(l2_attack(model, images, other, radius=1.0, towards=True))
    assert np.all(_loss(model, towards, other) < _loss(model, images, other))


def test_adversarial_finetune_resists_the_attack_better_and_leaves_the_model_alone(trained):
    """Check a copy fine-tuned on attacked images loses less to the attack than one tuned on clean ones.

    Both start from the same model and train alike (radius 0 attacks nothing), so the
    difference is the adversarial images alone. The original model is left as it was.
    """
    model, images, labels = trained
    before = [w.copy() for w in model.get_weights()]
    options = {"epochs": 10, "learning_rate": 1e-2, "batch_size": 16}
    plain = adversarial_finetune(model, images, labels, radius=0.0, **options)
    robust = adversarial_finetune(model, images, labels, radius=1.0, **options)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))

    def attacked_loss(m):
        return _loss(m, np.asarray(l2_attack(m, images, labels, radius=1.0, steps=5)), labels).mean()

    assert attacked_loss(robust) < 0.9 * attacked_loss(plain)  # 0.46 against 0.57 when written
    assert (robust.predict(images, verbose=0).argmax(1) == labels).mean() == 1.0


def test_bad_arguments_are_refused(trained):
    model, images, labels = trained
    with pytest.raises(ValueError, match="radius must be at least 0"):
        l2_attack(model, images, labels, radius=-1.0)
    with pytest.raises(ValueError, match="needs at least 32 images, got 4"):
        adversarial_finetune(model, images[:4], labels[:4])
