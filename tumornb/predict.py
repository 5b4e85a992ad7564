"""Using a trained classifier on new image files: the engine of ``tumornb predict``.

:func:`load_predictor` reads a model written by chapter 03 together with the
``train.json`` beside it, refuses a model whose stored preprocessing differs
from what :func:`tumornb.data.preprocess` does now, and never runs code from the
file (Keras's ``safe_mode``). :meth:`Predictor.predict_files` reads, preprocesses
and classifies files in batches; a file that cannot be read is reported and
skipped, the others go on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tumornb.backend import keras
from tumornb.data import UnreadableImage, load_image_file, preprocessing_spec
from tumornb.evaluation import predict_in_batches, traced_forward

__all__ = [
    "IMAGE_SUFFIXES",
    "EnsemblePredictor",
    "Prediction",
    "Predictor",
    "find_images",
    "load_ensemble",
    "load_predictor",
]

#: File name endings taken from a folder (files named one by one are always tried).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Prediction:
    """Predictions for a list of files.

    Attributes
    ----------
    table : DataFrame
        One row per readable file: ``path``, ``predicted``, ``confidence`` and
        ``p_<class>`` per class, in the order the files were given.
    errors : DataFrame
        One row per file that could not be read: ``path``, ``error``.
    images : ndarray of shape (n, side, side), uint8
        The preprocessed images of ``table``'s rows, as the model saw them.
    """

    table: pd.DataFrame
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["path", "error"]))
    images: np.ndarray | None = None


@dataclass
class Predictor:
    """A trained classifier with what is needed to feed it.

    Attributes
    ----------
    model : keras.Model
    class_names : list of str
    image_size : int
    info : dict
        The model's ``train.json``.
    """

    model: keras.Model
    class_names: list[str]
    image_size: int
    info: dict

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 64, flip: bool = False) -> np.ndarray:
        """Class probabilities of preprocessed images (``(n, side, side)`` uint8).

        ``flip`` averages each image's probabilities with its left-right mirror's
        (test-time augmentation; see :func:`tumornb.evaluation.predict_in_batches`).
        """
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (self.image_size, self.image_size):
            raise ValueError(
                f"expected images of shape (n, {self.image_size}, {self.image_size}), got {images.shape}"
            )
        if not len(images):
            return np.empty((0, len(self.class_names)))
        return predict_in_batches(traced_forward(self.model), images, batch_size=batch_size, flip=flip)

    def read(self, paths: Iterable[str | os.PathLike[str]], *, n_jobs: int | None = None) -> Iterator:
        """Yield ``(path, image or None, error)`` per file, preprocessed as in training, in order."""

        def read_one(path):
            try:
                return str(path), load_image_file(path, self.image_size), ""
            except UnreadableImage as exc:
                return str(path), None, str(exc)

        with ThreadPoolExecutor(n_jobs or os.cpu_count() or 1) as pool:
            yield from pool.map(read_one, paths)

    def predict_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        batch_size: int = 64,
        n_jobs: int | None = None,
        flip: bool = False,
    ) -> Prediction:
        """Read, preprocess and classify image files; unreadable files go to ``errors``.

        Parameters
        ----------
        paths : iterable of path-like
        batch_size : int, default=64
        n_jobs : int, optional
            Threads that read files (default: one per CPU).
        flip : bool, default=False
            Average each image's probabilities with its left-right mirror's.
        """
        good, images, errors = [], [], []
        for path, image, error in self.read(paths, n_jobs=n_jobs):
            if image is None:
                errors.append({"path": path, "error": error})
            else:
                good.append(path)
                images.append(image)
        side = self.image_size
        stacked = np.stack(images) if images else np.empty((0, side, side), np.uint8)
        probabilities = self.predict_proba(stacked, batch_size=batch_size, flip=flip)
        table = pd.DataFrame(
            {
                "path": good,
                "predicted": np.asarray(self.class_names, dtype=object)[probabilities.argmax(1)]
                if len(good)
                else [],
                "confidence": probabilities.max(1) if len(good) else [],
            }
        )
        for i, name in enumerate(self.class_names):
            table[f"p_{name}"] = probabilities[:, i]
        return Prediction(table, pd.DataFrame(errors, columns=["path", "error"]), stacked)


def load_predictor(model_path: str | os.PathLike[str]) -> Predictor:
    """Load a classifier trained by :func:`tumornb.training.train_classifier`.

    Parameters
    ----------
    model_path : path-like
        ``model.keras`` (or its folder, e.g. ``runs/default/models/real``);
        ``train.json`` must be beside it.

    Raises
    ------
    FileNotFoundError
        If the model or its ``train.json`` is missing.
    ValueError
        If the model was trained with a different preprocessing than this
        version of tumornb applies, or its input does not match it.
    """
    path = Path(model_path).expanduser()
    if path.is_dir():
        path = path / "model.keras"
    info_path = path.with_name("train.json")
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; pass a model.keras written by chapter 03")
    if not info_path.is_file():
        raise FileNotFoundError(
            f"no train.json beside {path}: without it the model's preprocessing and class names are unknown"
        )
    info = json.loads(info_path.read_text())
    stored = info.get("preprocessing", {})
    expected = preprocessing_spec(stored.get("image_size", 0))
    if stored != expected:
        raise ValueError(
            f"{path} was trained with preprocessing {stored}, but this tumornb applies {expected}; "
            "retrain it (chapter 03) or use the tumornb version it was trained with"
        )
    # safe_mode refuses to deserialise Python code (lambdas) stored in the file.
    model = keras.models.load_model(path, safe_mode=True, compile=False)
    side = expected["image_size"]
    if tuple(model.input_shape[1:]) != (side, side, 1):
        raise ValueError(f"{path} takes inputs of shape {model.input_shape[1:]}, not ({side}, {side}, 1)")
    return Predictor(model, list(info["class_names"]), side, info)


@dataclass
class EnsemblePredictor(Predictor):
    """Several classifiers of the same classes and preprocessing, their probabilities averaged.

    The ablation of chapter 04 trains one model per seed; averaging them is a
    deep ensemble. ``model`` is the first member (kept for code that needs one
    network, e.g. to report its input); Grad-CAM explains single models only.

    Parameters
    ----------
    model : keras.Model
        The first member.
    class_names : list of str
    image_size : int
    info : dict
    members : list of Predictor
    """

    members: list[Predictor] = field(default_factory=list)

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 64, flip: bool = False) -> np.ndarray:
        """The mean of the members' class probabilities."""
        members = [m.predict_proba(images, batch_size=batch_size, flip=flip) for m in self.members]
        return np.mean(members, axis=0)


def load_ensemble(model_paths: Iterable[str | os.PathLike[str]]) -> Predictor:
    """Load one model (a :class:`Predictor`) or several (an :class:`EnsemblePredictor`).

    Parameters
    ----------
    model_paths : iterable of path-like
        As :func:`load_predictor` takes.

    Returns
    -------
    Predictor or EnsemblePredictor

    Raises
    ------
    ValueError
        When the models disagree on class names or image size (they could not be averaged).
    """
    model_paths = list(model_paths)
    predictors = [load_predictor(path) for path in model_paths]
    if not predictors:
        raise ValueError("no model given")
    if len(predictors) == 1:
        return predictors[0]
    first = predictors[0]
    for path, other in zip(model_paths, predictors, strict=True):
        if (other.class_names, other.image_size) != (first.class_names, first.image_size):
            raise ValueError(
                f"{path} classifies {other.class_names} at {other.image_size} px, the first model "
                f"{first.class_names} at {first.image_size} px: an ensemble needs the same classes and size"
            )
    info = {"ensemble": [str(path) for path in model_paths]}
    return EnsemblePredictor(first.model, first.class_names, first.image_size, info, members=predictors)


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files to predict: each file as given, and each folder's image files (recursively, sorted).

    Parameters
    ----------
    inputs : iterable of path-like
        Files and folders (searched recursively).

    Returns
    -------
    list of Path

    Raises
    ------
    FileNotFoundError
        If an input does not exist.
    """
    found = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found
