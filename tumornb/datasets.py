"""The images each chapter trains and validates on, assembled from a run's files.

* :func:`run_images` reads chapter 01's manifest and image cache: every usable image of both splits.
* :func:`real_training_set` carves a validation split out of the training split: stratified, seeded
  and group-aware (duplicate groups, or patient-proxy groups after a grouped re-split, never
  straddle training and validation). The test split is not touched.
  :func:`write_validation_split` records it, :func:`validation_set` reads it back (chapter 04).
* :func:`select_synthetic` picks, per class, ``round(fraction * n_real)`` of chapter 02's synthetic
  images; :func:`load_synthetic` reads them, and :func:`add_synthetic` returns a
  :class:`TrainingSet` with them added to the training images (never to validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tumornb.data import grouped_holdout, load_image_file, load_images, read_manifest
from tumornb.labels import ordered_classes
from tumornb.paths import RunDir, atomic_path

__all__ = [
    "TrainingSet",
    "add_synthetic",
    "load_synthetic",
    "real_training_set",
    "run_images",
    "select_synthetic",
    "validation_set",
    "write_validation_split",
]


@dataclass
class TrainingSet:
    """Images and integer labels for training and validation, with their manifest rows.

    Parameters
    ----------
    x_train, x_val : ndarray of shape (n, side, side), uint8
    y_train, y_val : ndarray of shape (n,), int
        Class indices into ``class_names``.
    class_names : list of str
    train_rows, val_rows : DataFrame
        The manifest rows of the images, in the same order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list[str]
    train_rows: pd.DataFrame
    val_rows: pd.DataFrame

    def counts(self) -> pd.DataFrame:
        """Images per class in training and validation."""
        return pd.DataFrame(
            {
                "train": np.bincount(self.y_train, minlength=len(self.class_names)),
                "validation": np.bincount(self.y_val, minlength=len(self.class_names)),
            },
            index=pd.Index(self.class_names, name="label"),
        )


def run_images(run_dir: str | Path, image_size: int) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """A run's usable manifest rows, their cached images at ``image_size``, and the class names.

    Both splits, in manifest order; callers select the split they may use.

    Parameters
    ----------
    run_dir : path-like
    image_size : int

    Returns
    -------
    (DataFrame, ndarray of shape (n, image_size, image_size), list of str)
    """
    run = RunDir(run_dir)
    manifest = read_manifest(run.manifest)
    usable = manifest[manifest["error"] == ""].reset_index(drop=True)
    images = load_images(manifest, image_size, cache_dir=run.cache_dir)
    return usable, images, ordered_classes(usable["label"])


def real_training_set(
    run_dir: str | Path, image_size: int, *, val_fraction: float = 0.15, seed: int = 0
) -> TrainingSet:
    """The real training split of a run, with a validation split carved out of it.

    Parameters
    ----------
    run_dir : path-like
        A run directory where chapter 01 has written the manifest and cache.
    image_size : int
        Side of the images, as cached by chapter 01.
    val_fraction : float, default=0.15
        Share of the training split held out for validation (early stopping and
        choosing the best epoch).
    seed : int, default=0

    Returns
    -------
    TrainingSet
    """
    usable, images, class_names = run_images(run_dir, image_size)
    is_train = (usable["split"] == "train").to_numpy()
    train = usable[is_train]
    # After a grouped re-split, validation keeps the same patient-proxy groups together as the test split.
    groups = train["split_group"] if "split_group" in train else train["dup_group"]
    held_out = grouped_holdout(train["label"], groups, fraction=val_fraction, seed=seed)
    index = {name: i for i, name in enumerate(class_names)}
    labels = usable["label"].map(index).to_numpy()
    rows = np.flatnonzero(is_train)
    fit_rows, val_rows = rows[~held_out], rows[held_out]
    return TrainingSet(
        x_train=images[fit_rows],
        y_train=labels[fit_rows],
        x_val=images[val_rows],
        y_val=labels[val_rows],
        class_names=class_names,
        train_rows=usable.iloc[fit_rows].reset_index(drop=True),
        val_rows=usable.iloc[val_rows].reset_index(drop=True),
    )


def write_validation_split(run_dir: str | Path, data: TrainingSet) -> Path:
    """Record which images ``data`` holds out for validation: ``RUN_DIR/validation.csv`` (path, label).

    Chapter 03 writes it; chapter 04 reads it back with :func:`validation_set`
    instead of re-deriving the split from parameters that might have changed.

    Parameters
    ----------
    run_dir : path-like
    data : TrainingSet
        Its validation rows are written.

    Returns
    -------
    Path
        ``validation.csv``.
    """
    path = RunDir(run_dir).validation_split
    with atomic_path(path) as tmp:
        data.val_rows[["path", "label"]].to_csv(tmp, index=False)
    return path


def validation_set(run_dir: str | Path, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation images chapter 03 recorded (:func:`write_validation_split`) and their labels.

    Parameters
    ----------
    run_dir : path-like
    image_size : int

    Returns
    -------
    (ndarray of shape (n, image_size, image_size), ndarray of shape (n,))
        The images and their class indices.

    Raises
    ------
    FileNotFoundError
        When chapter 03 has not written ``validation.csv``, or an image in it is
        no longer in the manifest.
    """
    run = RunDir(run_dir)
    if not run.validation_split.exists():
        raise FileNotFoundError(
            f"{run.validation_split} is missing: run chapter 03 first, it writes the split"
        )
    wanted = pd.read_csv(run.validation_split)["path"]
    usable, images, class_names = run_images(run.root, image_size)
    position = pd.Series(np.arange(len(usable)), index=usable["path"])
    missing = wanted[~wanted.isin(position.index)]
    if len(missing):
        raise FileNotFoundError(
            f"{len(missing)} validation images of {run.validation_split} are not in the manifest "
            f"(e.g. {missing.iloc[0]}): run chapter 03 again after chapter 01"
        )
    rows = position[wanted].to_numpy()
    index = {name: i for i, name in enumerate(class_names)}
    return images[rows], usable["label"].iloc[rows].map(index).to_numpy()


def select_synthetic(
    synthetic: pd.DataFrame,
    real_labels: pd.Series,
    *,
    fraction: float = 0.30,
    seed: int = 0,
    at_most: bool = False,
) -> pd.DataFrame:
    """Choose ``round(fraction * n_real)`` synthetic images of each class.

    Parameters
    ----------
    synthetic : DataFrame
        Chapter 02's synthetic manifest, with at least ``path`` and ``label``.
    real_labels : Series of str
        Labels of the real training images the synthetic ones are added to.
    fraction : float, default=0.30
        Synthetic images per real training image, class by class (0.30: the
        "+30%" of the D-GAN method).
    seed : int, default=0
        Which synthetic images are chosen when there are more than needed.
    at_most : bool, default=False
        Take every image of a class that has fewer than it needs (a filtered
        pool), instead of refusing.

    Returns
    -------
    DataFrame
        The chosen rows of ``synthetic``, in class order.

    Raises
    ------
    ValueError
        If a class has fewer synthetic images than it needs (unless ``at_most``).
    """
    if fraction < 0:
        raise ValueError(f"synthetic_fraction must be at least 0, got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label, n_real in real_labels.value_counts().reindex(ordered_classes(real_labels)).items():
        wanted = round(fraction * n_real)
        pool = synthetic[synthetic["label"] == label]
        if at_most:
            wanted = min(wanted, len(pool))
        if len(pool) < wanted:
            raise ValueError(
                f"chapter 02 made {len(pool)} synthetic {label} images but synthetic_fraction={fraction} "
                f"needs {wanted}; lower synthetic_fraction or generate more images in chapter 02"
            )
        if wanted:
            chosen.append(pool.iloc[np.sort(rng.choice(len(pool), size=wanted, replace=False))])
    return pd.concat(chosen, ignore_index=True) if chosen else synthetic.iloc[:0]


def load_synthetic(selection: pd.DataFrame, image_size: int, base_dir: str | Path) -> np.ndarray:
    """Read the chosen synthetic images exactly as real ones are read.

    ``path`` values relative to ``base_dir`` (the synthetic manifest's folder)
    are resolved against it.

    Parameters
    ----------
    selection : DataFrame
        Rows of the synthetic manifest (column ``file``).
    image_size : int
    base_dir : path-like
        The run's ``synthetic/`` folder.

    Returns
    -------
    ndarray of shape (len(selection), image_size, image_size), uint8
    """
    base_dir = Path(base_dir)
    paths = [p if Path(p).is_absolute() else base_dir / p for p in selection["path"]]
    if not paths:
        return np.empty((0, image_size, image_size), np.uint8)
    return np.stack([load_image_file(p, image_size) for p in paths])


def add_synthetic(
    training: TrainingSet,
    run_dir: str | Path,
    *,
    fraction: float = 0.30,
    seed: int = 0,
    min_confidence: float | None = None,
) -> TrainingSet | None:
    """The training set with chapter 02's synthetic images mixed into its training part.

    Validation stays real: the best epoch is chosen on real images only.

    Parameters
    ----------
    training : TrainingSet
        From :func:`real_training_set`.
    run_dir : path-like
        The run directory, where chapter 02 wrote ``synthetic/manifest.csv``.
    fraction, seed
        See :func:`select_synthetic`.
    min_confidence : float, optional
        Draw only from the images chapter 02's judge assigns to their own class
        with at least this probability (``judge_class``, ``judge_confidence`` in
        the synthetic manifest); a class with too few faithful images gets all
        it has.

    Returns
    -------
    TrainingSet or None
        None when the run has no synthetic images (chapter 02 skipped).
    """
    run = RunDir(run_dir)
    if not run.synthetic_manifest.exists():
        return None
    synthetic = pd.read_csv(run.synthetic_manifest, keep_default_na=False)
    if min_confidence is not None:
        if "judge_confidence" not in synthetic:
            raise ValueError(
                f"{run.synthetic_manifest} has no judge scores: run chapter 02 again to filter its images"
            )
        faithful = (synthetic["judge_class"] == synthetic["label"]) & (
            synthetic["judge_confidence"] >= min_confidence
        )
        synthetic = synthetic[faithful]
    chosen = select_synthetic(
        synthetic,
        training.train_rows["label"],
        fraction=fraction,
        seed=seed,
        at_most=min_confidence is not None,
    )
    image_size = training.x_train.shape[1]
    images = load_synthetic(chosen, image_size, run.synthetic_dir)
    index = {name: i for i, name in enumerate(training.class_names)}
    chosen = chosen.assign(split="train", synthetic=True)
    return TrainingSet(
        x_train=np.concatenate([training.x_train, images]),
        y_train=np.concatenate(
            [training.y_train, chosen["label"].map(index).to_numpy(training.y_train.dtype)]
        ),
        x_val=training.x_val,
        y_val=training.y_val,
        class_names=training.class_names,
        train_rows=pd.concat([training.train_rows.assign(synthetic=False), chosen], ignore_index=True),
        val_rows=training.val_rows,
    )
