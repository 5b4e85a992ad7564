"""Training the classifiers of chapter 03: data assembly, fitting, artifacts.

The pieces, in the order chapter 03 uses them:

* :func:`real_training_set` reads the chapter-01 manifest and image cache and
  carves a validation split out of the training split: stratified, seeded and
  duplicate-aware (near copies never straddle train and validation). The test
  split is not touched.
* :func:`select_synthetic` picks, per class, exactly ``round(fraction * n_real)``
  images from chapter 02's synthetic manifest; :func:`load_synthetic` reads them.
* :func:`train_classifier` fits a model from :mod:`tumornb.models` on the
  :mod:`tumornb.pipeline` batches, keeps the best epoch on validation loss,
  stops early, and resumes an interrupted run where it stopped. It writes, in
  the variant's folder: ``model.keras`` (best epoch), ``history.csv`` (one row
  per epoch), ``backup/`` (while running) and, last, ``train.json``: a folder
  without ``train.json`` holds an unfinished run that nothing should trust.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import tumornb
from tumornb.data import grouped_holdout, load_image_file, load_images, preprocessing_spec, read_manifest
from tumornb.labels import ordered_classes
from tumornb.models import build_model, compile_model
from tumornb.paths import RunDir, atomic_path
from tumornb.pipeline import Augmentation, evaluation_dataset, training_dataset

__all__ = [
    "TrainConfig",
    "TimeBudget",
    "TrainResult",
    "TrainingSet",
    "add_synthetic",
    "closing_history",
    "load_synthetic",
    "load_trained",
    "real_training_set",
    "resume_point",
    "run_images",
    "select_synthetic",
    "train_classifier",
    "validation_set",
    "write_validation_split",
]


@dataclass
class TrainingSet:
    """Images and integer labels for training and validation, with their manifest rows."""

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
    """
    run = RunDir(run_dir)
    manifest = read_manifest(run.manifest)
    usable = manifest[manifest["error"] == ""].reset_index(drop=True)
    images = load_images(manifest, image_size, cache_dir=run.cache_dir)
    return usable, images, ordered_classes(usable["label"])


@contextmanager
def closing_history(csv_logger: keras.callbacks.CSVLogger) -> Iterator[None]:
    """Close a ``CSVLogger``'s file however training ends (Keras closes it only on a normal end)."""
    try:
        yield
    finally:
        if getattr(csv_logger, "csv_file", None) is not None and not csv_logger.csv_file.closed:
            csv_logger.csv_file.close()


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
    """
    path = RunDir(run_dir).validation_split
    with atomic_path(path) as tmp:
        data.val_rows[["path", "label"]].to_csv(tmp, index=False)
    return path


def validation_set(run_dir: str | Path, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The validation images chapter 03 recorded (:func:`write_validation_split`) and their labels.

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


@dataclass
class TrainConfig:
    """Everything that decides a training run; stored in ``train.json``.

    Parameters
    ----------
    model : str, default="tumornb_cnn"
        A name in :data:`tumornb.models.MODELS`.
    image_size : int, default=128
    epochs : int, default=30
        Most epochs to train (the learning-rate schedule spans them).
    batch_size : int, default=32
    learning_rate : float, optional
        Peak learning rate; default per model (see :func:`tumornb.models.compile_model`).
    patience : int, default=8
        Epochs without a lower validation loss before stopping early.
    seed : int, default=0
        Seeds the weights, the order of the images and the augmentation.
    augmentation : Augmentation or None
        ``None`` trains on the images unchanged.
    time_budget_s : float, optional
        Stop after the batch that crosses this many seconds of training.
    mixed_precision : bool, optional
        Compute in float16 with float32 weights. Default: on when TensorFlow
        sees a GPU (where it is about twice as fast), off on CPUs (where
        float16 arithmetic is emulated and slow).
    """

    model: str = "tumornb_cnn"
    image_size: int = 128
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float | None = None
    patience: int = 8
    seed: int = 0
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    time_budget_s: float | None = None
    mixed_precision: bool | None = None

    def to_dict(self) -> dict:
        config = asdict(self)
        config["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return config


@dataclass
class TrainResult:
    """A trained model with its history and the facts of its run."""

    model: keras.Model
    history: pd.DataFrame
    info: dict


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tumornb": tumornb.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def _save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


class _BestModel(keras.callbacks.Callback):
    """Save the model whenever validation loss reaches a new low; resumable."""

    def __init__(self, path: Path, best: float = math.inf):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss", math.inf)
        if value < self.best:
            self.best = value
            _save_model(self.model, self.path)


class _EpochFacts(keras.callbacks.Callback):
    """Add wall time, images/s and learning rate to each epoch's logs (and so to history.csv)."""

    def __init__(self, n_images: int):
        super().__init__()
        self.n_images = n_images

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.train_seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        logs["seconds"] = time.perf_counter() - self.start
        logs["images_per_s"] = self.n_images / self.train_seconds
        lr = self.model.optimizer.learning_rate
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the first batch end past ``seconds`` (counting earlier, resumed time)."""

    def __init__(self, seconds: float, already: float = 0.0):
        super().__init__()
        self.seconds, self.already = seconds, already

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.already + time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


class _ProgressBar(keras.callbacks.Callback):
    """One progress bar over epochs, showing the latest losses and accuracies."""

    def __init__(self, progress: Callable, total: int, initial: int, desc: str):
        super().__init__()
        self.bar = progress(total=total, initial=initial, desc=desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        keys = ("loss", "accuracy", "val_loss", "val_accuracy")
        self.bar.set_postfix({k: f"{logs[k]:.3f}" for k in keys if k in logs}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping that starts from the validation losses of the epochs already run."""

    def __init__(self, past_losses: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.past_losses = np.asarray(past_losses, dtype=float)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if len(self.past_losses):
            best_index = int(np.argmin(self.past_losses))
            self.best = float(self.past_losses[best_index])
            self.wait = len(self.past_losses) - 1 - best_index


class _RestoreRandomState(keras.callbacks.Callback):
    """Put each dropout layer's random stream back where an uninterrupted run would be.

    Keras saves weights and optimiser state in a backup, but not the counters
    of the layers' seed generators. Each training step draws once from each,
    so after ``k`` optimiser steps the counter of an uninterrupted run is ``k``.
    Runs after ``BackupAndRestore`` has restored the optimiser.
    """

    def on_train_begin(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        for layer in self.model._flatten_layers():
            generator = getattr(layer, "seed_generator", None)
            if generator is not None:
                state = keras.ops.convert_to_numpy(generator.state)
                generator.state.assign(np.array([state[0], steps], dtype=state.dtype))


def resume_point(backup_dir: Path, history_path: Path) -> tuple[int, pd.DataFrame]:
    """Where an interrupted run whose ``BackupAndRestore`` state is in ``backup_dir`` resumes.

    Returns
    -------
    start_epoch : int
        Epochs the backup holds (0 when there is none).
    previous : DataFrame
        The history rows of those epochs. Rows written after the backup belong to
        an epoch that will run again: they are dropped from ``history_path`` too.
    """
    metadata = backup_dir / "training_metadata.json"
    start_epoch = int(json.loads(metadata.read_text())["epoch"]) if metadata.exists() else 0
    previous = pd.DataFrame()
    if start_epoch and history_path.exists():
        previous = pd.read_csv(history_path)
        previous = previous[previous["epoch"] < start_epoch]
        with atomic_path(history_path) as tmp:
            previous.to_csv(tmp, index=False)
    return start_epoch, previous


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    out_dir: str | Path,
    config: TrainConfig,
    *,
    class_names: list[str],
    extra_info: dict | None = None,
    progress: Callable | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Train one classifier and write its artifacts to ``out_dir``.

    An interrupted call, called again with the same arguments, resumes after
    the last finished epoch (weights, optimiser state, the epoch's data order
    and augmentation, history, best model and early-stopping state).

    Parameters
    ----------
    x_train, x_val : ndarray of shape (n, side, side), uint8
    y_train, y_val : ndarray of shape (n,), int
        Class indices into ``class_names``.
    out_dir : path-like
        The variant's folder, e.g. ``RunDir(...).model_dir("real")``.
    config : TrainConfig
    class_names : list of str
        Stored with the model, so predictions can be named.
    extra_info : dict, optional
        More facts for ``train.json`` (e.g. how many synthetic images were mixed in).
    progress : callable, optional
        A ``tqdm``-like class for an epoch progress bar.
    callbacks : list, optional
        Extra Keras callbacks (tests use one to interrupt training).

    Returns
    -------
    TrainResult
        The best model (lowest validation loss), the history of every epoch, and
        what was written to ``train.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info_path, model_path, history_path = out / "train.json", out / "model.keras", out / "history.csv"
    backup_dir = out / "backup"
    # A finished run's folder is being reused: drop what described it before writing anew.
    info_path.unlink(missing_ok=True)
    start_epoch, previous = resume_point(backup_dir, history_path)
    if start_epoch == 0:
        shutil.rmtree(backup_dir, ignore_errors=True)
        history_path.unlink(missing_ok=True)
        model_path.unlink(missing_ok=True)

    n_classes = len(class_names)
    steps = math.ceil(len(x_train) / config.batch_size)
    keras.utils.set_random_seed(config.seed)
    mixed = config.mixed_precision
    if mixed is None:
        mixed = bool(tf.config.list_physical_devices("GPU"))
    previous_policy = keras.mixed_precision.global_policy()
    # A layer takes its dtype policy when it is built; restore the global one straight after.
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        model = build_model(config.model, config.image_size, n_classes)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    compile_model(model, steps_per_epoch=steps, epochs=config.epochs, learning_rate=config.learning_rate)

    train_data = training_dataset(
        x_train,
        y_train,
        n_classes=n_classes,
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=config.augmentation,
        start_epoch=start_epoch,
        epochs=config.epochs,
    )
    val_data = evaluation_dataset(x_val, y_val, n_classes=n_classes)

    val_losses = previous["val_loss"].to_numpy() if len(previous) else np.empty(0)
    # Order matters at each epoch end: facts join the logs before the CSV row is
    # written, and the backup comes last, so a kill in between redoes the epoch.
    all_callbacks = [
        _EpochFacts(len(x_train)),
        _BestModel(model_path, best=float(val_losses.min(initial=math.inf))),
        _ResumableEarlyStopping(val_losses, monitor="val_loss", patience=config.patience),
        csv_logger := keras.callbacks.CSVLogger(str(history_path), append=bool(start_epoch)),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        _RestoreRandomState(),
    ]
    if config.time_budget_s is not None:
        already = float(previous["seconds"].sum()) if len(previous) else 0.0
        all_callbacks.append(TimeBudget(config.time_budget_s, already))
    if progress is not None:
        all_callbacks.append(_ProgressBar(progress, config.epochs, start_epoch, config.model))
    all_callbacks += callbacks or []

    started = time.perf_counter()
    with closing_history(csv_logger):
        model.fit(
            train_data,
            epochs=config.epochs,
            steps_per_epoch=steps,
            validation_data=val_data,
            callbacks=all_callbacks,
            shuffle=False,  # the dataset shuffles, reproducibly
            verbose=0,
        )
    wall = time.perf_counter() - started

    history = pd.read_csv(history_path)
    best_epoch = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    info = {
        "config": config.to_dict(),
        "class_names": list(class_names),
        "preprocessing": preprocessing_spec(config.image_size),
        "n_train": len(x_train),
        "n_val": len(x_val),
        "n_params": model.count_params(),
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_loss": float(history["val_loss"].min()),
        "best_val_accuracy": float(history.loc[history["val_loss"].idxmin(), "val_accuracy"]),
        "resumed_from_epoch": start_epoch,
        "mixed_precision": mixed,
        "xla": bool(model.jit_compile),
        "wall_seconds": float(history["seconds"].sum()),
        "wall_seconds_this_call": wall,
        "train_images_per_s": float(history["images_per_s"].median()),
        "versions": _library_versions(),
        **(extra_info or {}),
    }
    # The returned model is for inference; without the optimizer it also loads under any
    # precision policy (a mixed-precision optimizer carries loss-scale variables).
    best = keras.models.load_model(model_path, safe_mode=True, compile=False)
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return TrainResult(model=best, history=history, info=info)


def load_trained(out_dir: str | Path) -> TrainResult:
    """Load a finished training run (one whose folder has ``train.json``).

    Raises
    ------
    FileNotFoundError
        If the run did not finish: there is no ``train.json``.
    """
    out = Path(out_dir)
    info_path = out / "train.json"
    if not info_path.exists():
        raise FileNotFoundError(
            f"no finished training run in {out}: run chapter 03 (tumornb run --only 03_cnn)"
        )
    model = keras.models.load_model(out / "model.keras", safe_mode=True, compile=False)
    return TrainResult(
        model=model, history=pd.read_csv(out / "history.csv"), info=json.loads(info_path.read_text())
    )
