"""The tf.data pipeline: shapes, epochs, determinism, resumption, augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tumornb.pipeline import (  # noqa: E402
    NO_AUGMENTATION,
    Augmentation,
    augment_batch,
    evaluation_dataset,
    mix_batch,
    training_dataset,
)

SIDE = 32


def _indexed_images(n: int) -> np.ndarray:
    """Image i is a bright square on black whose brightness is i + 1: an image's identity survives a batch."""
    images = np.zeros((n, SIDE, SIDE), np.uint8)
    images[:, 8:24, 8:24] = (np.arange(n) + 1)[:, None, None]
    return images


def _epochs(ds, n_batches_per_epoch: int, n_epochs: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    batches = [(x.numpy(), y.numpy()) for x, y in ds.take(n_batches_per_epoch * n_epochs)]
    return [batches[e * n_batches_per_epoch : (e + 1) * n_batches_per_epoch] for e in range(n_epochs)]


def test_batches_have_the_model_input_shape_and_one_hot_labels():
    images, labels = _indexed_images(10), np.arange(10) % 4
    ds = training_dataset(images, labels, n_classes=4, batch_size=4, epochs=1)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, SIDE, SIDE, 1) and x.dtype == np.float32
    assert y.shape == (4, 4) and np.array_equal(y.sum(axis=1), np.ones(4))


def test_each_epoch_shows_every_image_once_in_a_new_order():
    n, batch = 12, 5
    images, labels = _indexed_images(n), np.arange(n) % 4
    ds = training_dataset(images, labels, n_classes=4, batch_size=batch, augmentation=None)
    epochs = _epochs(ds, math.ceil(n / batch), 3)
    orders = []
    for epoch in epochs:
        ids = np.concatenate([x.max(axis=(1, 2, 3)) for x, _ in epoch]).astype(int) - 1
        onehots = np.concatenate([y for _, y in epoch])
        assert sorted(ids) == list(range(n))
        assert np.array_equal(onehots.argmax(1), labels[ids])  # labels travel with their images
        orders.append(ids.tolist())
    assert orders[0] != orders[1] != orders[2]


def test_same_seed_same_batches_other_seed_other_batches():
    images, labels = _indexed_images(8), np.arange(8) % 4

    def first_epoch(seed):
        return np.concatenate(
            [
                x
                for x, _ in _epochs(
                    training_dataset(images, labels, n_classes=4, batch_size=4, seed=seed), 2, 1
                )[0]
            ]
        )

    assert np.array_equal(first_epoch(1), first_epoch(1))
    assert not np.array_equal(first_epoch(1), first_epoch(2))


def test_resuming_at_an_epoch_replays_exactly_that_epoch():
    images, labels = _indexed_images(8), np.arange(8) % 4
    full = _epochs(training_dataset(images, labels, n_classes=4, batch_size=4, seed=5), 2, 3)
    resumed = _epochs(
        training_dataset(images, labels, n_classes=4, batch_size=4, seed=5, start_epoch=2), 2, 1
    )
    for (x_full, y_full), (x_res, y_res) in zip(full[2], resumed[0], strict=True):
        assert np.array_equal(x_full, x_res) and np.array_equal(y_full, y_res)


def test_augmentation_changes_images_differently_each_time():
    image = _indexed_images(1).repeat(8, axis=0)
    out = augment_batch(tf.constant(image[..., None], tf.float32), tf.constant([0, 1])).numpy()
    assert out.shape == image[..., None].shape
    differs_from_input = [not np.allclose(o[..., 0], image[0]) for o in out]
    assert all(differs_from_input)
    assert len({o.tobytes() for o in out}) == 8  # eight copies, eight different warps
    # Pixels come from the image or from the black background, nothing brighter.
    assert out.min() >= 0 and out.max() <= image.max() + 1e-3


def test_zero_ranges_are_the_identity():
    images = np.random.default_rng(0).integers(0, 255, (3, SIDE, SIDE, 1)).astype(np.float32)
    out = augment_batch(tf.constant(images), tf.constant([3, 4]), NO_AUGMENTATION).numpy()
    np.testing.assert_allclose(out, images, atol=1e-3)


def test_flip_only_mirrors_left_right():
    images = np.random.default_rng(0).integers(0, 255, (16, SIDE, SIDE, 1)).astype(np.float32)
    flip_only = Augmentation(rotation=0.0, zoom=0.0, shift=0.0, flip=True)
    out = augment_batch(tf.constant(images), tf.constant([0, 7]), flip_only).numpy()
    mirrored = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, images, strict=True)]
    unchanged = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, images, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 0 < sum(mirrored) < len(images)


def test_evaluation_batches_are_in_order_and_unchanged():
    images, labels = _indexed_images(5), np.arange(5) % 4
    xs = np.concatenate([x.numpy() for x, _ in evaluation_dataset(images, labels, batch_size=2)])
    np.testing.assert_array_equal(xs[..., 0], images.astype(np.float32))
    only_images = np.concatenate([x.numpy() for x in evaluation_dataset(images, batch_size=2)])
    np.testing.assert_array_equal(only_images, xs)


def _two_class_batch(n: int = 16) -> tuple[tf.Tensor, tf.Tensor]:
    """Class 0 images are all 0, class 1 images all 100: a pixel says whose it is."""
    labels = np.arange(n) % 2
    images = np.repeat(100.0 * labels, SIDE * SIDE).reshape(n, SIDE, SIDE, 1).astype(np.float32)
    return tf.constant(images), tf.constant(np.eye(2, dtype=np.float32)[labels])


@pytest.mark.parametrize("method", ["mixup", "cutmix"])
def test_mixed_labels_are_the_share_of_each_image_that_was_kept(method):
    images, labels = _two_class_batch()
    mixed, soft = mix_batch(images, labels, tf.constant([3, 4]), method)
    mixed, soft = mixed.numpy(), soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    # An image's mean brightness / 100 is the share of class 1 in it, for both methods.
    np.testing.assert_allclose(mixed.mean(axis=(1, 2, 3)) / 100, soft[:, 1], atol=1e-4)
    assert (soft.max(axis=1) < 0.99).any(), "nothing was mixed"
    if method == "cutmix":
        # CutMix pastes pixels, it does not blend them.
        assert set(np.unique(mixed)) <= {0.0, 100.0}


def test_mixing_is_a_function_of_its_seed():
    images, labels = _two_class_batch()
    first = mix_batch(images, labels, tf.constant([3, 4]), "cutmix")[0].numpy()
    again = mix_batch(images, labels, tf.constant([3, 4]), "cutmix")[0].numpy()
    other = mix_batch(images, labels, tf.constant([3, 5]), "cutmix")[0].numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_training_batches_are_mixed_only_when_asked():
    images, labels = _indexed_images(8), np.arange(8) % 4
    options = {"n_classes": 4, "batch_size": 8, "augmentation": None, "epochs": 1}
    plain = next(iter(training_dataset(images, labels, **options)))[1].numpy()
    mixed = next(iter(training_dataset(images, labels, mixing="mixup", **options)))[1].numpy()
    assert set(np.unique(plain)) == {0.0, 1.0}
    assert len(np.unique(mixed)) > 2
    with pytest.raises(ValueError, match="mixing must be one of mixup, cutmix"):
        mix_batch(*_two_class_batch(), tf.constant([0, 0]), "blend")
