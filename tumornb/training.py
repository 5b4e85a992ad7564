"""Training the classifiers of chapter 03: fitting and its artifacts.

The images come from :mod:`tumornb.datasets`.

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import tumornb
from tumornb.backend import keras, tf
from tumornb.data import preprocessing_spec
from tumornb.models import PEAK_LEARNING_RATE, build_model, compile_model
from tumornb.paths import atomic_path
from tumornb.pipeline import Augmentation, check_mixing, evaluation_dataset, training_dataset
from tumornb.progress import epoch_message, report
from tumornb.schedules import SCHEDULES, PlateauSchedule

__all__ = [
    "EpochReport",
    "TrainConfig",
    "TimeBudget",
    "TrainResult",
    "training_table",
    "budget_text",
    "ended_by",
    "recipe_table",
    "closing_history",
    "load_trained",
    "resume_point",
    "train_classifier",
]


@contextmanager
def closing_history(csv_logger: keras.callbacks.CSVLogger) -> Iterator[None]:
    """Close a ``CSVLogger``'s file however training ends (Keras closes it only on a normal end).

    Parameters
    ----------
    csv_logger : keras.callbacks.CSVLogger
    """
    try:
        yield
    finally:
        if getattr(csv_logger, "csv_file", None) is not None and not csv_logger.csv_file.closed:
            csv_logger.csv_file.close()


@dataclass
class TrainConfig:
    """Everything that decides a training run; stored in ``train.json``.

    Parameters
    ----------
    model : str, default="tumornb_cnn"
        A name in :data:`tumornb.models.MODELS`.
    image_size : int, default=128
    epochs : int, default=30
        Most epochs to train (the cosine schedule spans them; the plateau schedule's ceiling).
    batch_size : int, default=32
    learning_rate : float, optional
        Peak learning rate; default per model (see :func:`tumornb.models.compile_model`).
    patience : int, default=8
        Epochs without a lower validation loss before stopping early (cosine schedule; the plateau
        schedule ends training with its cool-down instead).
    seed : int, default=0
        Seeds the weights, the order of the images and the augmentation.
    augmentation : Augmentation or None
        ``None`` trains on the images unchanged.
    time_budget_s : float, optional
        Seconds of training. The cosine schedule stops after the batch that crosses it; the plateau
        schedule starts its cool-down in time to end near it.
    steps : int, optional
        A training budget in optimiser steps (batches). When given it decides the length of
        training instead of ``epochs``: the learning-rate schedule spans exactly ``steps``, and
        training stops after that many (or earlier, by early stopping).
    ema : float, optional
        Keep an exponential moving average of the weights with this momentum (e.g. 0.99):
        validation, early stopping and the saved model use the averaged weights.
    mixing : {"mixup", "cutmix"}, optional
        Mix every training batch after augmentation (:func:`tumornb.pipeline.mix_batch`).
    mixing_alpha : float, optional
        The mixing proportion's Beta parameter; default per method
        (:data:`tumornb.pipeline.MIXING_ALPHA`).
    width : float, default=1.0
        Multiplies the filters of every layer of ``tumornb_cnn`` (see :func:`tumornb.models.build_model`).
    schedule : {"cosine", "plateau"}, default="cosine"
        ``"cosine"`` decays over ``epochs`` (or ``steps``), fixed in advance. ``"plateau"`` holds the
        peak until the validation loss stops improving for ``plateau_patience`` epochs or the budget
        (``epochs``, ``time_budget_s``) is about to run out, then cools down linearly and ends
        (:mod:`tumornb.schedules`): the data decides how long training lasts.
    plateau_patience : int, default=8
    cooldown_fraction : float, default=0.2
        The plateau schedule's cool-down, as a share of the epochs run before it.
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
    steps: int | None = None
    ema: float | None = None
    mixing: str | None = None
    mixing_alpha: float | None = None
    width: float = 1.0
    schedule: str = "cosine"
    plateau_patience: int = 8
    cooldown_fraction: float = 0.2

    def __post_init__(self):
        check_mixing(self.mixing, self.mixing_alpha)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "plateau" and self.model == "seed_cnn":
            raise ValueError(
                "seed_cnn keeps the seed project's constant learning rate: train it with schedule='cosine' "
                "(tumornb run ... -p schedule=cosine)"
            )
        if self.width <= 0:
            raise ValueError(f"width is a positive multiplier of the filters, got {self.width}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be a positive number of batches, got {self.steps}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema is a momentum between 0 and 1 (e.g. 0.99), got {self.ema}")

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs to run: ``epochs``, or as many as the ``steps`` budget needs (the last one partial)."""
        return math.ceil(self.steps / steps_per_epoch) if self.steps else self.epochs

    def to_dict(self) -> dict:
        """The configuration as plain values, for ``train.json``."""
        config = asdict(self)
        config["augmentation"] = self.augmentation.to_dict() if self.augmentation else None
        return config


@dataclass
class TrainResult:
    """A trained model with its history and the facts of its run.

    Parameters
    ----------
    model : keras.Model
    history : DataFrame
    info : dict
        What ``train.json`` holds.
    """

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

    def __init__(self, path: Path, best: float = math.inf, *, averaged: bool = False):
        super().__init__()
        self.path, self.best, self.averaged = path, best, averaged

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss", math.inf)
        if value < self.best:
            self.best = value
            if self.averaged:
                with averaged_weights(self.model):
                    _save_model(self.model, self.path)
            else:
                _save_model(self.model, self.path)


@contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Put the optimiser's moving average of the weights into ``model`` for the block, then restore them.

    Parameters
    ----------
    model : keras.Model
        Compiled with an optimiser that keeps the average (``TrainConfig.ema``).
    """
    raw = [variable.numpy() for variable in model.trainable_variables]
    model.optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, raw, strict=True):
            variable.assign(value)


class _StepBudget(keras.callbacks.Callback):
    """Stop training after exactly ``steps`` optimiser steps, counted across resumptions."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        """Stop once the optimiser has taken its budget of steps."""
        if int(self.model.optimizer.iterations.numpy()) >= self.steps:
            self.model.stop_training = True


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
    """Stop training at the first batch end past ``seconds`` (counting earlier, resumed time).

    Parameters
    ----------
    seconds : float
    already : float, default=0.0
        Seconds spent before a resumption.
    """

    def __init__(self, seconds: float, already: float = 0.0):
        super().__init__()
        self.seconds, self.already = seconds, already

    def on_train_begin(self, logs=None):
        """Start the clock."""
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        """Stop training once the budget is spent."""
        if self.already + time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


class EpochReport(keras.callbacks.Callback):
    """Report each finished epoch to the terminal running the chapter (:mod:`tumornb.progress`).

    Parameters
    ----------
    what : str
        What is training, e.g. ``"classifier real"``.
    total : int
        Epochs planned.
    keys : tuple of str
        The logged metrics to show.
    """

    def __init__(self, what: str, total: int, keys: tuple[str, ...] = ("val_accuracy",)):
        super().__init__()
        self.what, self.total, self.keys, self.seconds = what, total, keys, []

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Write the epoch's line."""
        self.seconds.append(time.perf_counter() - self.started)
        values = {k: float(logs[k]) for k in self.keys if k in (logs or {})}
        report(epoch_message(self.what, epoch, self.total, self.seconds, **values))


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

    Parameters
    ----------
    backup_dir : Path
        Keras' ``BackupAndRestore`` folder.
    history_path : Path
        The run's ``history.csv``.

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
    epochs = config.epochs_for(steps)
    keras.utils.set_random_seed(config.seed)
    mixed = config.mixed_precision
    if mixed is None:
        mixed = bool(tf.config.list_physical_devices("GPU"))
    previous_policy = keras.mixed_precision.global_policy()
    # A layer takes its dtype policy when it is built; restore the global one straight after.
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        model = build_model(config.model, config.image_size, n_classes, width=config.width)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    compile_model(
        model,
        steps_per_epoch=steps,
        epochs=epochs,
        learning_rate=config.learning_rate,
        total_steps=config.steps,
        ema=config.ema,
        schedule=config.schedule,
    )

    train_data = training_dataset(
        x_train,
        y_train,
        n_classes=n_classes,
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=config.augmentation,
        start_epoch=start_epoch,
        epochs=epochs,
        mixing=config.mixing,
        mixing_alpha=config.mixing_alpha,
    )
    val_data = evaluation_dataset(x_val, y_val, n_classes=n_classes)

    val_losses = previous["val_loss"].to_numpy() if len(previous) else np.empty(0)
    # Order matters at each epoch end: facts join the logs before the CSV row is
    # written, and the backup comes last, so a kill in between redoes the epoch.
    # With ema, validation (so early stopping and the best epoch) sees the averaged weights.
    # The plateau schedule ends training itself, after its cool-down.
    early_stopping = (
        []
        if config.schedule == "plateau"
        else [_ResumableEarlyStopping(val_losses, monitor="val_loss", patience=config.patience)]
    )
    all_callbacks = [
        _EpochFacts(len(x_train)),
        *([keras.callbacks.SwapEMAWeights()] if config.ema else []),
        _BestModel(model_path, best=float(val_losses.min(initial=math.inf)), averaged=bool(config.ema)),
        *early_stopping,
        csv_logger := keras.callbacks.CSVLogger(str(history_path), append=bool(start_epoch)),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        _RestoreRandomState(),
    ]
    if config.steps is not None:
        all_callbacks.append(_StepBudget(config.steps))
    plateau = None
    if config.schedule == "plateau":
        plateau = PlateauSchedule(
            config.learning_rate or PEAK_LEARNING_RATE,
            steps,
            max_epochs=epochs,
            patience=config.plateau_patience,
            fraction=config.cooldown_fraction,
            time_budget_s=config.time_budget_s,
            val_losses=val_losses,
            epoch_seconds=previous["seconds"].to_numpy() if len(previous) else (),
        )
        all_callbacks.append(plateau)
    elif config.time_budget_s is not None:
        already = float(previous["seconds"].sum()) if len(previous) else 0.0
        all_callbacks.append(TimeBudget(config.time_budget_s, already))
    if progress is not None:
        all_callbacks.append(_ProgressBar(progress, epochs, start_epoch, config.model))
    all_callbacks.append(EpochReport(f"classifier {out.name}", epochs))
    all_callbacks += callbacks or []

    started = time.perf_counter()
    with closing_history(csv_logger):
        model.fit(
            train_data,
            epochs=epochs,
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
        "budget": {"epochs": epochs, "steps": config.steps, "seconds": config.time_budget_s},
        "epochs_run": len(history),
        "steps_run": int(model.optimizer.iterations.numpy()),
        "cooldown": asdict(plateau.cooldown) if plateau and plateau.cooldown else None,
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

    Parameters
    ----------
    out_dir : path-like

    Returns
    -------
    TrainResult

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


def budget_text(info: Mapping) -> str:
    """A run's training budget in words, e.g. ``"100 epochs, 12 min"``.

    Parameters
    ----------
    info : mapping
        The run's ``train.json``; runs from before budgets were recorded state their epochs.

    Returns
    -------
    str
    """
    budget = info.get("budget") or {"epochs": info["config"]["epochs"]}
    parts = [f"{budget['epochs']} epochs"]
    if budget.get("steps"):
        parts.append(f"{budget['steps']} steps")
    if budget.get("seconds"):
        parts.append(f"{budget['seconds'] / 60:g} min")
    return ", ".join(parts)


def ended_by(info: Mapping) -> str:
    """What ended a training run: the plateau schedule's cool-down, a budget or early stopping.

    Parameters
    ----------
    info : mapping
        The run's ``train.json``.

    Returns
    -------
    str
        E.g. ``"cool-down after epoch 38 (a plateau)"``, ``"epochs"`` or ``"early stopping"``.
    """
    budget, config = info.get("budget") or {}, info["config"]
    if info.get("cooldown"):
        start, reason = info["cooldown"]["start"], info["cooldown"]["reason"]
        why = {"plateau": "a plateau", "epochs": "the epoch budget", "time": "the time budget"}[reason]
        return f"cool-down after epoch {start} ({why})"
    if budget.get("steps") and info["steps_run"] >= budget["steps"]:
        return "step budget"
    if budget.get("seconds") and info["wall_seconds"] >= budget["seconds"]:
        return "time budget"
    if info["epochs_run"] >= budget.get("epochs", config["epochs"]):
        return "epochs"
    return "early stopping"


def training_table(results: Mapping[str, TrainResult]) -> pd.DataFrame:
    """One row per trained variant: its images, epochs, chosen epoch and speed.

    Parameters
    ----------
    results : mapping of str to TrainResult
        Variant name to its training run, e.g. from :func:`train_classifier` or :func:`load_trained`.

    Returns
    -------
    pandas.DataFrame
        Indexed by variant; the best epoch counts from 1.
    """
    rows = {
        name: {
            "train images": r.info["n_train"],
            "of which synthetic": r.info.get("n_synthetic", 0),
            "budget": budget_text(r.info),
            "epochs run": r.info["epochs_run"],
            "ended by": ended_by(r.info),
            "best epoch": r.info["best_epoch"] + 1,
            "best val. loss": round(r.info["best_val_loss"], 3),
            "val. accuracy at best": round(r.info["best_val_accuracy"], 3),
            "images/s": round(r.info["train_images_per_s"]),
            "wall time (s)": round(r.info["wall_seconds"]),
        }
        for name, r in results.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def recipe_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per recipe of ``benchmarks/bench_recipe.py``, the best on validation marked.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per recipe and seed, as the benchmark records them: ``recipe``,
        ``validation accuracy``, ``test accuracy``, ``test macro-F1``, ``epochs run``,
        ``training wall (s)``, ``training images/s`` and ``prediction ms/image``; one recipe is
        ``baseline``.

    Returns
    -------
    pandas.DataFrame
        Indexed by recipe, in the order first seen: each score as its mean over seeds with a
        Student's t 95% interval (the mean alone for one seed); training time, its ratio to the
        baseline's, epochs run and throughput as medians over seeds, since a run slowed by another process
        is noise in one direction only; and ``chosen on validation`` marking the recipe with the
        best mean validation accuracy. The test columns are for reference only.
    """
    from tumornb.metrics import t_interval

    def mean_interval(values: pd.Series) -> str:
        return str(t_interval(values.to_numpy())) if len(values) > 1 else f"{values.mean():.3f}"

    by = rows.groupby("recipe", sort=False)
    baseline_wall = rows.loc[rows["recipe"] == "baseline", "training wall (s)"].median()
    table = pd.DataFrame(
        {
            "validation accuracy": by["validation accuracy"].apply(mean_interval),
            "test accuracy (reference)": by["test accuracy"].apply(mean_interval),
            "test macro-F1 (reference)": by["test macro-F1"].apply(mean_interval),
            "epochs run": by["epochs run"].median(),
            "training wall (s)": by["training wall (s)"].median().round(0),
            "wall / baseline": (by["training wall (s)"].median() / baseline_wall).round(2),
            "training images/s": by["training images/s"].median().round(0),
            "prediction ms/image": by["prediction ms/image"].median().round(2),
        }
    )
    chosen = by["validation accuracy"].mean().idxmax()
    table["chosen on validation"] = ["<-" if name == chosen else "" for name in table.index]
    return table
