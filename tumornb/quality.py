"""How good and how new are synthetic images: distances between image sets, and memorisation.

Every measure here compares two sets of feature vectors (one row per image).
The features come from :func:`feature_encoder`, a small convolutional network
with fixed random weights. ImageNet's Inception network, the usual encoder of
FID and KID, cannot be downloaded here and was trained on photographs, not MRI;
randomly initialised networks give features that rank generative models much
as trained ones do (Naeem et al., 2020, "Reliable fidelity and diversity
metrics for generative models"), need no download, and mean the same on every
machine for one seed. Their values are not comparable with published FIDs, so
every number is reported beside the real-versus-real value on the same
features: the floor that the GAN's training images reach against the same
real images the GAN never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

__all__ = [
    "Memorisation",
    "embed",
    "feature_encoder",
    "frechet_distance",
    "kernel_distance",
    "memorisation",
    "near_copy_threshold",
    "nearest_neighbours",
    "precision_recall",
    "quality_by_variant",
    "quality_table",
]


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """``tr((C_a C_b)^(1/2))`` for symmetric positive semi-definite ``C_a``, ``C_b``.

    Equals ``tr((C_a^(1/2) C_b C_a^(1/2))^(1/2))``, a symmetric matrix, so two
    symmetric eigendecompositions replace a general matrix square root: faster
    and stable when the covariances are singular (fewer images than features).
    """
    values, vectors = linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on these features).

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))``.

    Parameters
    ----------
    a, b : ndarray of shape (n, d) and (m, d)

    Returns
    -------
    float
        Zero for identical sets; grows as their means and spreads part.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    value = (
        np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * _trace_sqrt_product(cov_a, cov_b)
    )
    return float(max(value, 0.0))


def kernel_distance(
    a: np.ndarray, b: np.ndarray, *, n_subsets: int = 10, subset_size: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Kernel distance (KID on these features): unbiased squared MMD with a cubic polynomial kernel.

    Unlike the Fréchet distance it has no bias for small sets, so values from
    sets of different sizes can be compared. Averaged over random subsets.

    Parameters
    ----------
    a, b : ndarray of shape (n, d) and (m, d)
    n_subsets : int, default=10
    subset_size : int, default=200
        Capped at the smaller set's size.
    seed : int, default=0

    Returns
    -------
    (mean, std) : (float, float)
        Over the subsets; the mean is about zero for two samples of one distribution.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"kernel_distance needs at least 2 images per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        k_xx, k_yy, k_xy = ((u @ v.T / d + 1) ** 3 for u, v in ((x, x), (y, y), (x, y)))
        off_diagonal = size * (size - 1)
        mmd = (
            (k_xx.sum() - np.trace(k_xx)) / off_diagonal
            + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
            - 2 * k_xy.mean()
        )
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def nearest_neighbours(queries: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False):
    """Each query's nearest reference row (Euclidean).

    Parameters
    ----------
    queries : ndarray of shape (n, d)
    reference : ndarray of shape (m, d)
    exclude_self : bool, default=False
        When ``queries`` is ``reference``: skip each row's match with itself.

    Returns
    -------
    distances : ndarray of shape (n,)
    indices : ndarray of shape (n,), int
    """
    distances, indices = np.empty(len(queries)), np.empty(len(queries), int)
    for start, d2 in _squared_distance_blocks(queries, reference):
        rows = np.arange(len(d2))
        if exclude_self:
            d2[rows, start + rows] = np.inf
        best = d2.argmin(1)
        indices[start : start + len(d2)] = best
        distances[start : start + len(d2)] = np.sqrt(d2[rows, best])
    return distances, indices


def _squared_distance_blocks(queries: np.ndarray, reference: np.ndarray, *, block: int = 512):
    """Yield ``(start, d2)``: squared Euclidean distances from ``block`` query rows to every reference row.

    ``block x m`` at a time, so memory does not grow with ``n x m x d``.
    """
    q, r = np.asarray(queries, np.float64), np.asarray(reference, np.float64)
    r_sq = (r**2).sum(1)
    for start in range(0, len(q), block):
        rows = q[start : start + block]
        yield start, np.maximum((rows**2).sum(1)[:, None] + r_sq[None, :] - 2 * rows @ r.T, 0.0)


def near_copy_threshold(reference: np.ndarray, fresh: np.ndarray, *, quantile: float = 0.01) -> float:
    """A distance below which a synthetic image counts as a copy of a training image.

    The null is the distance from each *fresh* real image (one the GAN never saw,
    e.g. the validation split) to its nearest training image: that is how close a
    new, honestly drawn scan comes to the training set. The threshold is its
    ``quantile``, so a fresh real image is flagged with probability ``quantile``
    (the expected false-flag rate), and near-duplicates *inside* the training set
    cannot shrink it, as they did when the null was training-to-training distances.
    This is the data-copying test of Meehan, Chaudhuri and Dasgupta (2020).

    Parameters
    ----------
    reference : ndarray of shape (n, d)
        Features of the GAN's training images.
    fresh : ndarray of shape (m, d)
        Features of real images the GAN did not train on, with no duplicate among
        the training images (chapter 03's duplicate-aware validation split).
    quantile : float, default=0.01

    Returns
    -------
    float
    """
    distances, _ = nearest_neighbours(fresh, reference)
    # An exact copy of a training image among the fresh ones (distance ~0) is leakage, not a null.
    distances = distances[distances > 1e-6 * distances.max(initial=0.0)]
    if not len(distances):
        raise ValueError("near_copy_threshold needs fresh images that are not copies of training images")
    return float(np.quantile(distances, quantile))


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Precision and recall of a generated distribution (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points reaching their
    ``k``-th nearest neighbour. Precision: the share of fake images inside the
    real manifold (are they realistic?). Recall: the share of real images inside
    the fake manifold (is the variety of the real data covered?).

    Parameters
    ----------
    real, fake : ndarray of shape (n, n_features)
    k : int, default=3
        Neighbours that set each point's radius.

    Returns
    -------
    (float, float)
        Precision and recall.
    """

    def radii(x):
        out = np.empty(len(x))
        for start, d2 in _squared_distance_blocks(x, x):
            rows = np.arange(len(d2))
            d2[rows, start + rows] = 0.0  # the point itself, exactly
            out[start : start + len(d2)] = np.partition(d2, k, axis=1)[:, k]  # index 0 is the point
        return out  # squared

    def inside(points, centres, centre_radii_sq):
        hits = [
            (d2 <= centre_radii_sq[None, :]).any(1) for _, d2 in _squared_distance_blocks(points, centres)
        ]
        return np.concatenate(hits).mean()

    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision_recall needs more than k={k} images per set")
    return float(inside(fake, real, radii(real))), float(inside(real, fake, radii(fake)))


def feature_encoder(image_size: int, *, seed: int = 0, width: int = 32):
    """A fixed, randomly initialised CNN that maps grey images to feature vectors.

    Four strided 3x3 convolutions (``width`` to ``8 * width`` filters) with
    ReLU; the features are the global average of every stage, concatenated
    (``15 * width`` values), so both fine texture and coarse layout count.
    Input: float images in [0, 255] of shape ``(n, side, side, 1)``.

    Parameters
    ----------
    image_size : int
    seed : int, default=0
        Fixes the random weights.
    width : int, default=32

    Returns
    -------
    keras.Model
    """
    import keras
    from keras import layers

    init = keras.initializers.HeUniform(seed=seed)
    inputs = keras.Input((image_size, image_size, 1))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    pooled = []
    for i, filters in enumerate((width, 2 * width, 4 * width, 8 * width)):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", kernel_initializer=init, name=f"conv{i}")(x)
        x = layers.ReLU()(x)
        pooled.append(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, layers.Concatenate()(pooled), name="feature_encoder")


def embed(encoder, images: np.ndarray, *, batch_size: int = 128) -> np.ndarray:
    """Features of uint8 grey images of shape ``(n, side, side)`` under ``encoder``.

    Parameters
    ----------
    encoder : keras.Model
        From :func:`feature_encoder` or :func:`tumornb.fidelity.judge_encoder`.
    images : ndarray of shape (n, side, side), uint8
    batch_size : int, default=128

    Returns
    -------
    ndarray of shape (n, n_features)
    """
    x = np.asarray(images, np.float32)[..., None]
    return np.asarray(encoder.predict(x, batch_size=batch_size, verbose=0), np.float64)


def quality_table(
    train: np.ndarray,
    train_labels,
    fake: np.ndarray,
    fake_labels,
    reference: np.ndarray,
    reference_labels,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-class quality of synthetic images against real images the GAN never saw, with the floor.

    Each class's synthetic images and, for the floor, as many of the GAN's real
    training images are compared with the same *reference*: real images the GAN
    did not train on (the validation split, duplicate groups on one side). The
    floor is then what a generator drawing new scans from the training
    distribution would score, with as many images (FID is biased by set size).

    Parameters
    ----------
    train, fake, reference : ndarray of shape (n, d), (m, d) and (k, d)
        Features (:func:`embed`) of the GAN's training images, of synthetic images,
        and of real images the GAN never saw.
    train_labels, fake_labels, reference_labels : array-like of str
    seed : int, default=0
        Picks the training images of the floor.

    Returns
    -------
    DataFrame
        One row per class: ``FID``, ``KID``, ``precision`` and ``recall`` of the
        synthetic images against the reference, ``FID floor`` and ``KID floor``
        of the training images against it, and the counts ``n_reference`` and ``n``
        (synthetic images, and training images, per comparison).
    """
    train_labels, fake_labels = np.asarray(train_labels), np.asarray(fake_labels)
    reference_labels = np.asarray(reference_labels)
    rng = np.random.default_rng(seed)
    rows = {}
    for name in sorted(set(reference_labels)):
        ref, f = reference[reference_labels == name], fake[fake_labels == name]
        r = train[train_labels == name]
        n = min(len(f), len(r))
        if n < 2 or len(ref) < 2:
            continue
        f, r = f[:n], r[rng.choice(len(r), n, replace=False)]
        precision, recall = precision_recall(ref, f) if min(len(ref), n) > 3 else (np.nan, np.nan)
        rows[name] = {
            "FID": frechet_distance(ref, f),
            "FID floor": frechet_distance(ref, r),
            "KID": kernel_distance(ref, f, seed=seed)[0],
            "KID floor": kernel_distance(ref, r, seed=seed)[0],
            "precision": precision,
            "recall": recall,
            "n_reference": len(ref),
            "n": n,
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")


@dataclass
class Memorisation:
    """What :func:`memorisation` found.

    Attributes
    ----------
    table : DataFrame
        One row per synthetic image: ``nearest_real`` (row index into the training
        features), ``distance``, ``near_copy`` (distance under ``threshold``).
    threshold : float
        The near-copy distance (see :func:`near_copy_threshold`).
    fresh_distances : ndarray
        Each fresh real image's distance to its nearest training image: the null to
        read ``table["distance"]`` against.
    false_flag_rate : float
        The share of fresh real images the threshold flags: what to expect among
        synthetic images that copy nothing.
    copying_p : float
        One-sided Mann-Whitney p-value that synthetic images lie *closer* to the
        training images than fresh real images do (small: the GAN copies).
    """

    table: pd.DataFrame
    threshold: float
    fresh_distances: np.ndarray
    false_flag_rate: float
    copying_p: float

    def to_dict(self) -> dict:
        """The counts, threshold and test result, as plain numbers for a JSON file."""
        return {
            "near_copies": int(self.table["near_copy"].sum()),
            "of": len(self.table),
            "threshold": float(self.threshold),
            "expected_false_flag_rate": float(self.false_flag_rate),
            "copying_p": float(self.copying_p),
        }

    def summary(self) -> str:
        """One sentence: how many near-copies, against how many a copy-free generator would show."""
        flagged = int(self.table["near_copy"].sum())
        n = len(self.table)
        return (
            f"{flagged} of {n} synthetic images ({flagged / max(n, 1):.1%}) lie closer to a training image "
            f"than {1 - self.false_flag_rate:.0%} of fresh real images do (threshold {self.threshold:.3f}); "
            f"a generator that copies nothing would flag about {self.false_flag_rate:.1%}. "
            f"Synthetic images closer to training than fresh real images overall: "
            f"Mann-Whitney p = {self.copying_p:.3g}."
        )


def memorisation(
    fake: np.ndarray, reference: np.ndarray, fresh: np.ndarray, *, quantile: float = 0.01
) -> Memorisation:
    """Each synthetic image's nearest training image, and whether it is a near-copy.

    Parameters
    ----------
    fake : ndarray of shape (k, d)
        Features of synthetic images.
    reference : ndarray of shape (n, d)
        Features of the GAN's training images.
    fresh : ndarray of shape (m, d)
        Features of real images the GAN never saw (see :func:`near_copy_threshold`).
    quantile : float, default=0.01
        The expected false-flag rate (see :func:`near_copy_threshold`).

    Returns
    -------
    Memorisation
    """
    from scipy.stats import mannwhitneyu

    distances, indices = nearest_neighbours(fake, reference)
    fresh_distances, _ = nearest_neighbours(fresh, reference)
    threshold = near_copy_threshold(reference, fresh, quantile=quantile)
    table = pd.DataFrame({"nearest_real": indices, "distance": distances, "near_copy": distances < threshold})
    p = mannwhitneyu(distances, fresh_distances, alternative="less").pvalue
    return Memorisation(
        table,
        threshold,
        fresh_distances,
        false_flag_rate=float((fresh_distances < threshold).mean()),
        copying_p=float(p),
    )


def quality_by_variant(
    encoder,
    samples: dict[str, np.ndarray],
    sample_labels,
    train: np.ndarray,
    train_labels,
    reference: np.ndarray,
    reference_labels,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`quality_table` for each GAN variant's images, embedded by ``encoder``.

    Parameters
    ----------
    encoder : keras.Model
        Images to features: :func:`feature_encoder`, or the judge's (chapter 02).
    samples : dict
        Variant -> synthetic images of shape (m, side, side), labelled by ``sample_labels``.
    train, reference : ndarray of shape (n, d) and (k, d)
        Features of the GAN's training images and of real images it never saw,
        already embedded by ``encoder`` (chapter 02 reuses them).
    train_labels, reference_labels, sample_labels : array-like of str
    seed : int, default=0

    Returns
    -------
    DataFrame
        :func:`quality_table`'s rows, indexed by (variant, class).
    """
    tables = {
        variant: quality_table(
            train, train_labels, embed(encoder, images), sample_labels, reference, reference_labels, seed=seed
        )
        for variant, images in samples.items()
    }
    return pd.concat(tables, names=["variant"])
