"""Where a classifier looked: Grad-CAM heat maps and the pointing game.

Grad-CAM (Selvaraju et al., 2017) weights each channel of a convolutional
feature map by the average gradient of a class's score with respect to it,
sums the weighted channels and keeps the positive part: the regions whose
activation raises that class's score. Upsampled to the image, it is a coarse
heat map of "where the model looked".

A heat map is only worth showing if it can be checked. The phantom data of
:mod:`tumornb.phantom` knows where every lesion is, so :func:`pointing_game`
measures how often the map's peak falls inside the lesion, beside the chance
level of a peak dropped uniformly on the brain (lesion area over brain area).

The score is the class's logit (the input of the final softmax), as in the
paper: the softmax probability saturates, and its gradient vanishes exactly
where the model is most confident.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tumornb.backend import keras, tf
from tumornb.paths import atomic_path

__all__ = [
    "cam_captions",
    "pointing_verdict",
    "PointingGame",
    "grad_cam",
    "last_feature_layer",
    "overlay",
    "pointing_game",
    "pointing_summary",
    "write_overlays",
]

#: The final dense layer of every model in :mod:`tumornb.models`.
OUTPUT_LAYER = "probabilities"


def last_feature_layer(model: keras.Model, *, min_side: int = 8) -> str:
    """Name of the feature map Grad-CAM uses by default.

    The last layer with a spatial output of at least ``min_side`` cells a side.
    Deeper maps are more class-specific but coarser; ``tumornb_cnn``'s last
    stage is 4x4 at 128 px, one cell per 32 pixels, larger than most lesions,
    so the default takes the end of the stage before it (8x8). For ``seed_cnn``
    it is the last max-pooling layer (14x14 at 128 px).

    Parameters
    ----------
    model : keras.Model
    min_side : int, default=8
        Smallest acceptable height and width of the feature map.
    """
    for layer in reversed(model.layers):
        shape = layer.output.shape
        if (
            len(shape) == 4
            and min(shape[1], shape[2]) >= min_side
            and not isinstance(layer, keras.layers.InputLayer)
        ):
            return layer.name
    raise ValueError(f"model {model.name!r} has no feature map of at least {min_side}x{min_side} cells")


def _cam_model(model: keras.Model, layer: str) -> keras.Model:
    head = model.get_layer(OUTPUT_LAYER)
    return keras.Model(model.inputs, [model.get_layer(layer).output, head.input])


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_index: int | np.ndarray | None = None,
    *,
    layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM heat maps of ``images`` for one class each.

    Parameters
    ----------
    model : keras.Model
        A classifier from :mod:`tumornb.models` (its last layer is the dense
        layer named ``"probabilities"``).
    images : ndarray of shape (n, side, side) or (n, side, side, 1)
        Model inputs as :func:`tumornb.data.preprocess` makes them (0-255).
    class_index : int or array of n ints, optional
        The class to explain per image; the predicted class when omitted.
    layer : str, optional
        The feature layer; :func:`last_feature_layer` when omitted.
    batch_size : int, default=32

    Returns
    -------
    ndarray of shape (n, side, side), float32
        Non-negative maps, each scaled so its maximum is 1 (all zeros where no
        region raises the class's score).
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, side, side[, 1]), got {images.shape}")
    n, side = len(images), images.shape[1]
    # -1: the predicted class, chosen inside the graph
    targets = np.full(n, -1) if class_index is None else np.broadcast_to(np.asarray(class_index), (n,))
    cam_model = _cam_model(model, layer or last_feature_layer(model))
    head = model.get_layer(OUTPUT_LAYER)

    # One traced graph for every batch: run eagerly, the per-operation overhead cost more
    # than the arithmetic on small images (4,650 images of 32 px: 36 s against 6 s on 2 cores).
    @tf.function
    def batch_cams(x: tf.Tensor, wanted: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            features, hidden = cam_model(x, training=False)
            tape.watch(features)
            logits = tf.matmul(tf.cast(hidden, tf.float32), head.kernel) + head.bias
            chosen = tf.where(wanted < 0, tf.argmax(logits, axis=1), wanted)
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        grads = tape.gradient(score, features)
        weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(weights * tf.cast(features, tf.float32), axis=-1))

    size = max(1, min(batch_size, n))
    maps = np.zeros((n, side, side), np.float32)
    for start in range(0, n, size):
        x, wanted = images[start : start + size], targets[start : start + size]
        missing = size - len(x)  # the last batch is padded, so one graph serves every batch
        x = np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])
        wanted = np.concatenate([wanted, np.zeros(missing, wanted.dtype)])
        cams = batch_cams(tf.constant(x, tf.float32), tf.constant(wanted, tf.int64)).numpy()
        for i, cam in enumerate(cams[: size - missing], start=start):
            maps[i] = cv2.resize(cam, (side, side), interpolation=cv2.INTER_LINEAR)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


@dataclass(frozen=True)
class PointingGame:
    """How often heat-map peaks fall inside the lesion.

    Attributes
    ----------
    table : DataFrame
        One row per image: ``hit`` (peak inside the lesion), ``chance`` (lesion
        area over brain area), ``peak_row``, ``peak_col``.
    """

    table: pd.DataFrame

    @property
    def score(self) -> float:
        """Share of images whose peak is in the lesion."""
        return float(self.table["hit"].mean())

    @property
    def chance(self) -> float:
        """Expected score of a peak placed uniformly at random on the brain."""
        return float(self.table["chance"].mean())


def pointing_game(maps: np.ndarray, lesions: np.ndarray, brains: np.ndarray) -> PointingGame:
    """Score heat maps against lesion masks.

    Parameters
    ----------
    maps : ndarray of shape (n, side, side)
        Heat maps, e.g. from :func:`grad_cam`.
    lesions, brains : ndarray of shape (n, side, side), bool
        Lesion and brain masks at the maps' resolution; every lesion must be
        non-empty.

    Returns
    -------
    PointingGame
    """
    maps, lesions, brains = np.asarray(maps), np.asarray(lesions, bool), np.asarray(brains, bool)
    if not (maps.shape == lesions.shape == brains.shape):
        raise ValueError(f"shapes differ: maps {maps.shape}, lesions {lesions.shape}, brains {brains.shape}")
    lesion_area = lesions.sum(axis=(1, 2))
    if (lesion_area == 0).any():
        raise ValueError(f"{int((lesion_area == 0).sum())} lesion masks are empty; score tumour images only")
    flat_peak = maps.reshape(len(maps), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat_peak, maps.shape[1:])
    hits = lesions[np.arange(len(maps)), rows, cols]
    chance = lesion_area / np.maximum((brains | lesions).sum(axis=(1, 2)), 1)
    return PointingGame(pd.DataFrame({"hit": hits, "chance": chance, "peak_row": rows, "peak_col": cols}))


def pointing_summary(game: PointingGame, labels, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Pointing-game score per class and over all images, with bootstrap 95% intervals.

    Parameters
    ----------
    game : PointingGame
    labels : sequence of str
        The class of each image in ``game.table``.
    n_boot, seed
        As in :func:`tumornb.metrics.bootstrap_ci`.

    Returns
    -------
    DataFrame
        Columns ``class``, ``n``, ``score``, ``low``, ``high``, ``chance``; the
        last row (``class`` = ``"all"``) pools every image.
    """
    from tumornb.labels import ordered_classes
    from tumornb.metrics import bootstrap_ci

    labels = np.asarray(labels)
    hits = game.table["hit"].to_numpy(float)
    chance = game.table["chance"].to_numpy()
    rows = []
    for name in [*ordered_classes(labels), "all"]:
        chosen = labels == name if name != "all" else np.ones(len(labels), bool)
        estimate = bootstrap_ci(
            lambda h, _: float(np.mean(h)), hits[chosen], hits[chosen], n_boot=n_boot, seed=seed
        )
        rows.append(
            {
                "class": name,
                "n": int(chosen.sum()),
                "score": estimate.value,
                "low": estimate.low,
                "high": estimate.high,
                "chance": float(chance[chosen].mean()),
            }
        )
    return pd.DataFrame(rows)


def overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """An RGB uint8 picture of ``image`` with ``heat`` (0-1) blended over it in the jet colour map.

    Parameters
    ----------
    image : ndarray of shape (side, side), uint8
    heat : ndarray of shape (side, side)
        In [0, 1].
    alpha : float, default=0.45

    Returns
    -------
    ndarray of shape (side, side, 3), uint8
    """
    grey = cv2.cvtColor(np.asarray(image, np.uint8).squeeze(), cv2.COLOR_GRAY2RGB)
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(grey, 1 - alpha, colour, alpha, 0)


def write_overlays(
    model: keras.Model, images: np.ndarray, paths, out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write ``<stem>.cam.png`` per image into ``out_dir``: its Grad-CAM for the predicted class.

    Only files ending in ``.cam.png`` are ever replaced, so pointing ``out_dir``
    at a folder of scans cannot overwrite them. Repeated stems get ``-2``, ``-3``...

    Parameters
    ----------
    model : keras.Model
    images : ndarray of shape (n, side, side), uint8
    paths : sequence of path-like
        The files the images came from; names the overlays.
    out_dir : path-like

    Returns
    -------
    list of Path
        The files written, in the order of ``paths``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    maps = grad_cam(model, images)
    written, seen = [], Counter()
    for image, heat, path in zip(images, maps, paths, strict=True):
        stem = Path(path).stem
        seen[stem] += 1
        name = f"{stem}.cam.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.cam.png"
        target = out / name
        with atomic_path(target, suffix=".png") as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(overlay(image, heat), cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {target}")
        written.append(target)
    return written


def cam_captions(true: Sequence[str], predicted: Sequence[str], confidence: Sequence[float]) -> list[str]:
    """Two-line captions for heat-map panels: ``"true -> predicted"`` and the confidence.

    Parameters
    ----------
    true, predicted : sequence of str
    confidence : sequence of float

    Returns
    -------
    list of str
    """
    return [f"{t} -> {p}\n{c:.0%}" for t, p, c in zip(true, predicted, confidence, strict=True)]


def pointing_verdict(pointing: pd.DataFrame, game: PointingGame, right: np.ndarray) -> str:
    """What the pointing game measured, in one sentence with its interval and chance level.

    Parameters
    ----------
    pointing : DataFrame
        :func:`pointing_summary`'s table; its last row pools every image.
    game : PointingGame
        The game it summarises.
    right : ndarray of bool, shape (n,)
        Whether the classifier got each of the game's images right.
    """
    overall, right = pointing.iloc[-1], np.asarray(right, bool)
    hits = game.table["hit"].to_numpy()
    right_share = f"{hits[right].mean():.0%}" if right.any() else "none (no right answers)"
    wrong_share = f"{hits[~right].mean():.0%}" if (~right).any() else "none (no mistakes)"
    return (
        f"**Measured.** The peak of the heat map falls inside the lesion in {overall['score']:.0%} "
        f"[95% CI {overall['low']:.0%} to {overall['high']:.0%}] of {int(overall['n'])} tumour images, "
        f"against {overall['chance']:.1%} by chance ({overall['score'] / overall['chance']:.1f} times "
        f"chance); {right_share} of the correctly classified ones and {wrong_share} of the "
        "misclassified ones."
    )
