"""The ``tf.data`` input pipeline: batches of cached images, augmented on the fly.

Augmentation is one random affine warp per image (rotation, zoom, shift and a
left-right flip composed into a single matrix) applied to a whole batch at once
with ``ImageProjectiveTransformV3``, on TensorFlow's input threads while the
model trains on the previous batch.

Every random number is *stateless*: it is a function of ``(seed, epoch,
batch)``. The same seed therefore gives the same batches in the same order,
whatever the number of threads, and a run resumed at epoch ``k`` sees exactly
the batches an uninterrupted run would have seen from epoch ``k`` on.

Optionally each batch is also *mixed* (:func:`mix_batch`): MixUp (Zhang et al., 2018)
blends every image with a partner from the same batch, CutMix (Yun et al., 2019) pastes
a rectangle of the partner into it, and the one-hot labels are mixed in the same
proportion. Keras 3 ships both as layers, but they draw from a seed generator with state;
the version here is stateless like the rest of the pipeline, so a resumed run still sees
the batches an uninterrupted one would have.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tumornb.backend import tf

__all__ = [
    "MIXING_ALPHA",
    "Augmentation",
    "augment_batch",
    "check_mixing",
    "evaluation_dataset",
    "mix_batch",
    "one_hot",
    "training_dataset",
]

#: Default ``alpha`` of the Beta distribution the mixing proportion is drawn from, per method
#: (the values of the two papers for ImageNet-sized problems).
MIXING_ALPHA = {"mixup": 0.2, "cutmix": 1.0}


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


def _beta(seed: tf.Tensor, n: tf.Tensor, alpha: float) -> tf.Tensor:
    """``n`` stateless draws from Beta(alpha, alpha), as a ratio of two gamma draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    g1 = tf.random.stateless_gamma((n,), seed=seeds[0], alpha=alpha)
    g2 = tf.random.stateless_gamma((n,), seed=seeds[1], alpha=alpha)
    return g1 / tf.maximum(g1 + g2, 1e-12)


def _cut_masks(seed: tf.Tensor, keep: tf.Tensor, side: tf.Tensor) -> tf.Tensor:
    """One rectangle per image covering about ``1 - keep`` of it (clipped at the border): 1 inside."""
    n, side = tf.shape(keep)[0], tf.cast(side, tf.float32)
    centre = tf.random.stateless_uniform((n, 2), seed=seed) * side
    half = tf.sqrt(1.0 - keep)[:, None] * side / 2
    low, high = centre - half, centre + half
    pixel = tf.range(side) + 0.5
    inside = (pixel[None, None, :] >= low[:, :, None]) & (pixel[None, None, :] < high[:, :, None])
    rows, cols = tf.cast(inside[:, 0], tf.float32), tf.cast(inside[:, 1], tf.float32)
    return rows[:, :, None] * cols[:, None, :]


def check_mixing(method: str | None, alpha: float | None = None) -> None:
    """Raise ``ValueError`` unless ``method`` is a mixing method (or None) and ``alpha`` positive (or None).

    Parameters
    ----------
    method : {"mixup", "cutmix"} or None
    alpha : float, optional
    """
    if method is not None and method not in MIXING_ALPHA:
        raise ValueError(f"mixing must be one of {', '.join(MIXING_ALPHA)}, got {method!r}")
    if alpha is not None and alpha <= 0:
        raise ValueError(f"mixing_alpha must be positive, got {alpha}")


def mix_batch(
    images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, method: str = "mixup", alpha: float | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp or CutMix a batch with a random permutation of itself.

    Parameters
    ----------
    images : Tensor of shape (batch, side, side, 1), float32
    labels : Tensor of shape (batch, n_classes), float32
        One-hot (or already soft) labels.
    seed : Tensor of shape (2,), int
        Stateless seed; equal seeds give equal outputs.
    method : {"mixup", "cutmix"}, default="mixup"
        ``mixup`` blends image ``i`` with its partner as ``lam * x_i + (1 - lam) * x_j``;
        ``cutmix`` replaces a rectangle of about ``1 - lam`` of image ``i`` by the same
        rectangle of its partner.
    alpha : float, optional
        ``lam ~ Beta(alpha, alpha)``, one per image; default :data:`MIXING_ALPHA`.

    Returns
    -------
    (Tensor, Tensor)
        The mixed images and labels; each label row is ``lam * y_i + (1 - lam) * y_j``
        with ``lam`` the share of image ``i`` actually kept (for CutMix, the pixel share).
    """
    check_mixing(method, alpha)
    alpha = MIXING_ALPHA[method] if alpha is None else alpha
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    partner = tf.argsort(tf.random.stateless_uniform((n,), seed=seeds[0]))
    keep = _beta(seeds[1], n, alpha)
    other_images, other_labels = tf.gather(images, partner), tf.gather(labels, partner)
    if method == "mixup":
        weight = keep[:, None, None, None]
        mixed = weight * images + (1.0 - weight) * other_images
    else:
        cut = _cut_masks(seeds[2], keep, tf.shape(images)[1])[..., None]
        mixed = (1.0 - cut) * images + cut * other_images
        keep = 1.0 - tf.reduce_mean(cut, axis=[1, 2, 3])
    return mixed, keep[:, None] * labels + (1.0 - keep[:, None]) * other_labels


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
    mixing: str | None = None,
    mixing_alpha: float | None = None,
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
    mixing : {"mixup", "cutmix"}, optional
        Mix every batch after augmentation (:func:`mix_batch`); the labels become soft.
    mixing_alpha : float, optional
        The mixing's Beta parameter; default :data:`MIXING_ALPHA`.

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
        xb, yb = tf.cast(tf.gather(x, index), tf.float32), tf.gather(y, index)
        # One stream per (seed, epoch, batch): a stateless seed is a pair of int64s.
        batch_seed = tf.stack([seed, epoch * 100_003 + batch])
        if augmentation is not None:
            xb = augment_batch(xb, batch_seed, augmentation)
        if mixing is not None:
            xb, yb = mix_batch(
                xb, yb, tf.random.experimental.stateless_fold_in(batch_seed, 1), mixing, mixing_alpha
            )
        return xb, yb

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
