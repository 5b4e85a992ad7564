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
features: the floor that two samples of real images reach.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = [
    "embed",
    "feature_encoder",
    "frechet_distance",
    "kernel_distance",
    "near_copy_threshold",
    "nearest_neighbours",
    "precision_recall",
]


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
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():
        # Singular product (fewer images than features): regularise, as the reference FID code does.
        eps = 1e-6 * np.eye(len(cov_a))
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
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
    q, r = np.asarray(queries, np.float64), np.asarray(reference, np.float64)
    r_sq = (r**2).sum(1)
    distances, indices = np.empty(len(q)), np.empty(len(q), int)
    for start in range(0, len(q), 512):  # bounded memory: 512 x m at a time
        block = q[start : start + 512]
        d2 = (block**2).sum(1)[:, None] + r_sq[None, :] - 2 * block @ r.T
        if exclude_self:
            rows = np.arange(len(block))
            d2[rows, start + rows] = np.inf
        best = d2.argmin(1)
        indices[start : start + len(block)] = best
        distances[start : start + len(block)] = np.sqrt(np.maximum(d2[np.arange(len(block)), best], 0))
    return distances, indices


def near_copy_threshold(real: np.ndarray, *, quantile: float = 0.01) -> float:
    """A distance below which a synthetic image counts as a copy of a real one.

    The ``quantile`` of the distances from each real image to its nearest
    *other* real image, leaving out exact duplicates (distance 0): a synthetic
    image closer to a training image than 99% of real images are to their own
    nearest neighbour is flagged.
    """
    distances, _ = nearest_neighbours(real, real, exclude_self=True)
    # Exact duplicates come out at rounding-error distances, not exactly 0.
    distances = distances[distances > 1e-6 * distances.max(initial=0.0)]
    if not len(distances):
        raise ValueError("near_copy_threshold needs at least two distinct real images")
    return float(np.quantile(distances, quantile))


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3) -> tuple[float, float]:
    """Precision and recall of a generated distribution (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points reaching their
    ``k``-th nearest neighbour. Precision: the share of fake images inside the
    real manifold (are they realistic?). Recall: the share of real images inside
    the fake manifold (is the variety of the real data covered?).
    """

    def radii(x):
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        return np.sqrt(np.sort(d2, axis=1)[:, k])  # column 0 is the point itself

    def inside(points, centres, centre_radii):
        d = np.sqrt(((points[:, None, :] - centres[None, :, :]) ** 2).sum(-1))
        return (d <= centre_radii[None, :]).any(1).mean()

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
    """Features of uint8 grey images of shape ``(n, side, side)`` under ``encoder``."""
    x = np.asarray(images, np.float32)[..., None]
    return np.asarray(encoder.predict(x, batch_size=batch_size, verbose=0), np.float64)
