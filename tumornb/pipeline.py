"""The ``tf.data`` input pipeline: batches of cached images, augmented on the fly.

Augmentation is one random affine warp per image (rotation, zoom, shift and a
left-right flip composed into a single matrix) applied to a whole batch at once
with ``ImageProjectiveTransformV3``, on TensorFlow's input threads while the
model trains on the previous batch.

Every random number is *stateless*: it is a function of ``(seed, epoch,
batch)``. The same seed therefore gives the same batches in the same order,
whatever the number of threads, and a run resumed at epoch ``k`` sees exactly
the batches an uninterrupted run would have seen from epoch ``k`` on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tumornb.backend import tf

__all__ = ["Augmentation", "augment_batch", "evaluation_dataset", "one_hot", "training_dataset"]


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random geometric augmentation.

    Parameters
    ----------
    rotation : float, default=15.0
        Largest rotation, in degrees, either way.
    zoom : float, default=0.1
        Largest relative zoom in or out.
    shift : float, default=0.1
        Largest shift, as a fraction of the image side, along each axis.
    flip : bool, default=True
        Flip left-right with probability 1/2. Brains are roughly symmetric, so
        a flipped scan is still a plausible scan; an upside-down one is not,
        which is why there is no vertical flip.
    """

    rotation: float = 15.0
    zoom: float = 0.1
    shift: float = 0.1
    flip: bool = True

    def to_dict(self) -> dict:
        """The settings, for ``train.json``."""
        return asdict(self)


NO_AUGMENTATION = Augmentation(rotation=0.0, zoom=0.0, shift=0.0, flip=False)


def _affine_matrices(seed: tf.Tensor, n: tf.Tensor, side: int, aug: Augmentation) -> tf.Tensor:
    """Rows ``[a0, a1, a2, b0, b1, b2, 0, 0]`` mapping output to input pixel coordinates."""
    u = tf.random.stateless_uniform((n, 5), seed=seed, minval=-1.0, maxval=1.0)
    angle = u[:, 0] * (aug.rotation * math.pi / 180)
    scale = 1.0 / (1.0 + u[:, 1] * aug.zoom)  # output-to-input, hence the inverse zoom
    dx, dy = u[:, 2] * aug.shift * side, u[:, 3] * aug.shift * side
    mirror = tf.where((u[:, 4] > 0) & aug.flip, -1.0, 1.0)
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
    centre = (side - 1) / 2
    a2 = centre - a0 * centre - a1 * centre + dx
    b2 = centre - b0 * centre - b1 * centre + dy
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, aug: Augmentation = Augmentation()) -> tf.Tensor:
    """Warp each image of a batch by its own random affine transform.

    Parameters
    ----------
    images : Tensor of shape (batch, side, side, 1), float32
    seed : Tensor of shape (2,), int
        Stateless seed; equal seeds give equal outputs.
    aug : Augmentation

    Returns
    -------
    Tensor like ``images``; pixels brought in from outside are 0 (black background).
    """
    side = images.shape[1]
    matrices = _affine_matrices(seed, tf.shape(images)[0], side, aug)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrices,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer class indices to float32 one-hot rows.

    Parameters
    ----------
    labels : ndarray of shape (n,), int
    n_classes : int

    Returns
    -------
    ndarray of shape (n, n_classes), float32
    """
    return np.eye(n_classes, dtype=np.float32)[np.asarray(labels)]


def _as_batch_input(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, side, side), got {images.shape}")
    return images[..., None]


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    batch_size: int = 32,
    seed: int = 0,
    augmentation: Augmentation | None = Augmentation(),
    start_epoch: int = 0,
    epochs: int | None = None,
) -> tf.data.Dataset:
    """Shuffled, augmented training batches, epoch after epoch.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    labels : ndarray of shape (n,), int
        Class indices.
    n_classes : int
    batch_size : int, default=32
    seed : int, default=0
        Fixes the order of the images in each epoch and every augmentation.
    augmentation : Augmentation or None
        ``None`` feeds the images unchanged (still shuffled).
    start_epoch : int, default=0
        First epoch to produce, for resuming an interrupted run.
    epochs : int, optional
        Last epoch (exclusive); unbounded when omitted.

    Returns
    -------
    tf.data.Dataset
        Of ``(images, one_hot_labels)``; images float32 in [0, 255] of shape
        ``(batch, side, side, 1)``. One epoch is ``ceil(n / batch_size)`` batches.
    """
    x = tf.constant(_as_batch_input(images))
    y = tf.constant(one_hot(labels, n_classes))
    n = len(images)
    n_batches = math.ceil(n / batch_size)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.argsort(tf.random.stateless_uniform((n,), seed=tf.stack([seed, epoch])))
        starts = tf.range(n_batches, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(starts).map(
            lambda b: (epoch, b, order[b * batch_size : (b + 1) * batch_size])
        )

    def load(epoch: tf.Tensor, batch: tf.Tensor, index: tf.Tensor):
        xb = tf.cast(tf.gather(x, index), tf.float32)
        if augmentation is not None:
            # One stream per (seed, epoch, batch): a stateless seed is a pair of int64s.
            xb = augment_batch(xb, tf.stack([seed, epoch * 100_003 + batch]), augmentation)
        return xb, tf.gather(y, index)

    epoch_range = tf.data.Dataset.range(start_epoch, epochs if epochs is not None else np.iinfo(np.int64).max)
    return (
        epoch_range.flat_map(epoch_batches)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def evaluation_dataset(
    images: np.ndarray, labels: np.ndarray | None = None, *, n_classes: int = 4, batch_size: int = 64
) -> tf.data.Dataset:
    """Batches in order, unaugmented, for validation, testing and prediction.

    Yields float32 images like :func:`training_dataset`, with one-hot labels
    when ``labels`` is given.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    labels : ndarray of shape (n,), optional
    n_classes : int, default=4
    batch_size : int, default=64

    Returns
    -------
    tf.data.Dataset
    """
    x = _as_batch_input(images)
    if labels is None:
        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)
        ds = ds.map(lambda xb: tf.cast(xb, tf.float32))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, one_hot(labels, n_classes))).batch(batch_size)
        ds = ds.map(lambda xb, yb: (tf.cast(xb, tf.float32), yb))
    return ds.prefetch(tf.data.AUTOTUNE)
