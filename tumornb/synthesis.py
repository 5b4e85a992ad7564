"""Training the D-GAN, resumably, and writing its images where chapter 03 finds them.

Layout of one trained GAN (``RunDir.gan_dir(variant)``)::

    gan/VARIANT/[CLASS/]          CLASS only for the per-class variant
      backup/                     BackupAndRestore state of an unfinished run
      history.csv                 losses per epoch
      grids/epoch_0010.png        the fixed noise grid every few epochs
      generator.weights.h5        the averaged generator, written when training ends
      done.json                   its training time: present once the weights are complete
      gan.json                    config, classes, time, versions, weights hash: written last

Synthetic images (``RunDir.synthetic_dir``)::

    synthetic/CLASS/syn-CL_0000.png
    synthetic/manifest.csv        path, label, seed, variant, generator_sha256
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from tumornb.backend import keras, tf
from tumornb.gan import DGAN
from tumornb.paths import atomic_path
from tumornb.pipeline import training_dataset
from tumornb.training import EpochReport, closing_history, resume_point

__all__ = [
    "GANConfig",
    "TrainedGAN",
    "class_counts",
    "gan_table",
    "saved_grids",
    "train_gan",
    "write_synthetic",
]

VARIANTS = ("conditional", "per_class")


@dataclass(frozen=True)
class GANConfig:
    """What to train.

    Parameters
    ----------
    variant : {"conditional", "per_class"}, default="conditional"
        One class-conditional GAN, or one unconditional GAN per class (the original method).
    image_size : int, default=64
        Side of the generated images (a power of two).
    epochs : int, default=100
        Passes over the training images (per class for ``per_class``).
    batch_size : int, default=32
    learning_rate : float, default=2e-4
        Adam's step size for both networks.
    latent_dim, width : int
        Size of the noise vector and width of both networks.
    augment : bool or str, default=True
        Differentiable augmentation for the discriminator: True for every transform, or a
        policy such as ``"shift,brightness"`` (see :func:`tumornb.gan.diff_augment`).
    class_weight : float, default=0.0
        Weight of the auxiliary classification loss (see :class:`tumornb.gan.DGAN`);
        0, the default, trains without it.
    class_confidence : float, optional
        Cap on the auxiliary loss of the generator (see :class:`tumornb.gan.DGAN`).
    conditional_norm : bool, default=False
        Class-conditional batch normalisation in the generator (see
        :func:`tumornb.gan.build_generator`); no effect on the per-class variant.
    twin_classifier : bool, default=False
        The twin class head of TAC-GAN beside the auxiliary one (see :class:`tumornb.gan.DGAN`).
    diversity_weight : float, default=0.0
        Weight of the mode-seeking term (see :class:`tumornb.gan.DGAN`); 0 leaves it out.
    seed : int, default=0
    grid_every : int, default=10
        Save the fixed noise grid every this many epochs (and after the last).
    """

    variant: str = "conditional"
    image_size: int = 64
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 2e-4
    latent_dim: int = 128
    width: int = 32
    augment: bool | str = True
    class_weight: float = 0.0
    class_confidence: float | None = None
    conditional_norm: bool = False
    twin_classifier: bool = False
    diversity_weight: float = 0.0
    seed: int = 0
    grid_every: int = 10

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"GAN variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs and batch_size must be positive, got {self.epochs} and {self.batch_size}"
            )


@dataclass
class TrainedGAN:
    """A trained GAN (or one per class) and what is known about its training.

    Parameters
    ----------
    models : dict of str to DGAN
        ``"all"`` for the conditional variant, else one per class name.
    class_names : list of str
    config : GANConfig
    history : DataFrame
        One row per epoch (and class, for ``per_class``).
    info : dict
    """

    models: dict[str, DGAN]  # "all" for the conditional variant, else one per class name
    class_names: list[str]
    config: GANConfig
    history: pd.DataFrame  # one row per epoch (and class, for per_class)
    info: dict

    def generate(self, label: str, n: int, *, seed: int = 0) -> np.ndarray:
        """``n`` uint8 images of class ``label``."""
        if self.config.variant == "conditional":
            return self.models["all"].generate(np.full(n, self.class_names.index(label)), seed=seed)
        return self.models[label].generate(np.zeros(n, int), seed=seed)


def gan_table(gans: Mapping[str, TrainedGAN]) -> pd.DataFrame:
    """One row per GAN variant: how many networks, epochs, generator size and wall time.

    Parameters
    ----------
    gans : mapping of str to TrainedGAN
        Variant name to what :func:`train_gan` returned.
    """
    rows = {
        variant: {
            "GANs": len(gan.models),
            "epochs": gan.config.epochs,
            "generator parameters (each)": next(iter(gan.models.values())).generator.count_params(),
            "wall time (s)": round(gan.info["wall_seconds"]),
        }
        for variant, gan in gans.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_history(path: Path) -> pd.DataFrame:
    # Keras' CSVLogger adds empty val_* columns when there is no validation data.
    history = pd.read_csv(path)
    return history.drop(columns=[c for c in history if c.startswith("val_")])


def _grid(images: np.ndarray, columns: int) -> np.ndarray:
    n, side = len(images), images.shape[1]
    rows = math.ceil(n / columns)
    canvas = np.zeros((rows * side, columns * side), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * side : (r + 1) * side, c * side : (c + 1) * side] = image
    return canvas


class _NoiseGrid(keras.callbacks.Callback):
    """Save the averaged generator's images of one fixed noise batch every few epochs."""

    def __init__(self, folder: Path, labels: np.ndarray, every: int, last: int):
        super().__init__()
        self.folder, self.labels, self.every, self.last = folder, labels, every, last

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.last:
            return
        images = self.model.generate(self.labels, seed=12345)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"epoch_{done:04d}.png", suffix=".png") as tmp:
            cv2.imwrite(str(tmp), _grid(images, columns=4))


class _EpochBar(keras.callbacks.Callback):
    def __init__(self, progress: Callable, total: int, initial: int, desc: str):
        super().__init__()
        self.bar = progress(total=total, initial=initial, desc=desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.set_postfix({k: f"{logs[k]:.3f}" for k in ("d_loss", "g_loss") if k in logs}, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        self.bar.close()


def _fit_one(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    out_dir: Path,
    config: GANConfig,
    progress,
    desc: str,
) -> tuple[DGAN, pd.DataFrame, float]:
    """Train (or resume, or reload) one DGAN in ``out_dir``."""
    weights_path = out_dir / "generator.weights.h5"
    done_path = out_dir / "done.json"
    keras.utils.set_random_seed(config.seed)  # the initial weights
    gan = DGAN(
        config.image_size,
        n_classes,
        latent_dim=config.latent_dim,
        width=config.width,
        augment=config.augment,
        class_weight=config.class_weight,
        class_confidence=config.class_confidence,
        conditional_norm=config.conditional_norm,
        twin_classifier=config.twin_classifier,
        diversity_weight=config.diversity_weight,
        seed=config.seed,
    )
    gan.compile(learning_rate=config.learning_rate)
    history_path = out_dir / "history.csv"
    if done_path.exists():  # finished earlier: reuse, do not retrain
        gan.ema_generator.load_weights(weights_path)
        return gan, _read_history(history_path), json.loads(done_path.read_text())["seconds"]

    out_dir.mkdir(parents=True, exist_ok=True)
    backup = out_dir / "backup"
    start_epoch, _ = resume_point(backup, history_path)
    # The classifier's stateless pipeline, unaugmented: batch order is a function of
    # (seed, epoch), so a resumed run sees the batches an uninterrupted one would.
    dataset = training_dataset(
        images,
        labels,
        n_classes=n_classes,
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=None,
        start_epoch=start_epoch,
        epochs=config.epochs,
    ).map(lambda x, y: (x / 127.5 - 1.0, tf.argmax(y, axis=-1, output_type=tf.int32)))
    grid_labels = np.repeat(np.arange(n_classes), math.ceil(16 / n_classes))[:16]
    callbacks = [
        csv_logger := keras.callbacks.CSVLogger(str(history_path), append=bool(start_epoch)),
        _NoiseGrid(out_dir / "grids", grid_labels, config.grid_every, config.epochs),
        keras.callbacks.BackupAndRestore(str(backup)),
        EpochReport(f"GAN {desc}", config.epochs, keys=("d_loss", "g_loss")),
    ]
    if progress is not None:
        callbacks.append(_EpochBar(progress, config.epochs, start_epoch, desc))
    started = time.perf_counter()
    steps = math.ceil(len(images) / config.batch_size)
    with closing_history(csv_logger):
        gan.fit(
            dataset,
            epochs=config.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles, reproducibly
            verbose=0,
        )
    seconds = time.perf_counter() - started
    with atomic_path(weights_path, suffix=".weights.h5") as tmp:
        gan.ema_generator.save_weights(tmp)
    with atomic_path(done_path) as tmp:
        tmp.write_text(json.dumps({"seconds": seconds}))
    return gan, _read_history(history_path), seconds


def train_gan(
    images: np.ndarray,
    labels: np.ndarray,
    out_dir: str | Path,
    config: GANConfig,
    *,
    class_names: list[str],
    progress: Callable | None = None,
) -> TrainedGAN:
    """Train the D-GAN on uint8 images of one side, or resume or reuse an earlier run.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
        Training images only; ``side`` must equal ``config.image_size``.
    labels : ndarray of shape (n,), int
        Class indices into ``class_names``.
    out_dir : path-like
        ``RunDir.gan_dir(config.variant)``. A finished run there is reloaded, an
        interrupted one resumes from its last finished epoch.
    config : GANConfig
    class_names : list of str
    progress : callable, optional
        ``tqdm.auto.tqdm`` for a progress bar per GAN.

    Returns
    -------
    TrainedGAN
    """
    out_dir = Path(out_dir)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (config.image_size, config.image_size):
        raise ValueError(
            f"expected images of shape (n, {config.image_size}, {config.image_size}), got {images.shape}"
        )
    info_path = out_dir / "gan.json"
    if info_path.exists() and json.loads(info_path.read_text())["config"] != asdict(config):
        raise FileExistsError(
            f"{out_dir} holds a GAN trained with other settings; delete it or choose another run directory"
        )
    models, histories, seconds = {}, [], 0.0
    if config.variant == "conditional":
        gan, history, s = _fit_one(
            images, labels, len(class_names), out_dir, config, progress, "GAN, all classes"
        )
        models["all"], seconds = gan, s
        histories.append(history.assign(model="all"))
    else:
        for i, name in enumerate(class_names):
            mine = labels == i
            gan, history, s = _fit_one(
                images[mine], np.zeros(mine.sum(), int), 1, out_dir / name, config, progress, f"GAN, {name}"
            )
            models[name], seconds = gan, seconds + s
            histories.append(history.assign(model=name))
    weights = {
        key: _sha256((out_dir if key == "all" else out_dir / key) / "generator.weights.h5") for key in models
    }
    info = {
        "config": asdict(config),
        "class_names": list(class_names),
        "n_train": {name: int((labels == i).sum()) for i, name in enumerate(class_names)},
        "wall_seconds": seconds,
        "generator_sha256": weights,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
    }
    with atomic_path(info_path) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return TrainedGAN(models, list(class_names), config, pd.concat(histories, ignore_index=True), info)


def saved_grids(out_dir: str | Path) -> list[tuple[int, np.ndarray]]:
    """The noise grids a training run saved, as ``(epoch, image)`` in epoch order.

    Parameters
    ----------
    out_dir : path-like
        A GAN's folder.

    Returns
    -------
    list of (int, ndarray)
        (epoch, grid image), by epoch.
    """
    paths = sorted(Path(out_dir).glob("grids/epoch_*.png"))
    return [(int(p.stem.split("_")[1]), cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)) for p in paths]


def class_counts(real_counts: dict[str, int], fraction: float) -> dict[str, int]:
    """Synthetic images to draw per class: ``round(fraction * real count)``.

    Parameters
    ----------
    real_counts : dict of str to int
    fraction : float

    Returns
    -------
    dict of str to int
    """
    if not 0 <= fraction:
        raise ValueError(f"synthetic_fraction must be at least 0, got {fraction}")
    return {name: round(fraction * n) for name, n in real_counts.items()}


def write_synthetic(
    gan: TrainedGAN, counts: dict[str, int], out_dir: str | Path, *, seed: int = 0
) -> pd.DataFrame:
    """Draw ``counts[class]`` images per class and write them as PNGs with a manifest.

    The new folder replaces ``out_dir`` only once every image and the manifest
    are written, so an interrupted run leaves the previous set intact.

    Parameters
    ----------
    gan : TrainedGAN
    counts : dict of str to int
        Images to draw per class.
    out_dir : path-like
        The run's ``synthetic/`` folder; replaced only once the new one is complete.
    seed : int, default=0
        The noise.

    Returns
    -------
    DataFrame
        The manifest: ``path`` (relative to ``out_dir``), ``label``, ``seed``,
        ``variant``, ``generator_sha256``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    rows = []
    for i, (label, n) in enumerate(counts.items()):
        images = gan.generate(label, n, seed=seed * 1000 + i)
        folder = staging / label
        folder.mkdir(parents=True, exist_ok=True)
        key = "all" if gan.config.variant == "conditional" else label
        for j, image in enumerate(images):
            name = f"{label}/syn-{label[:2]}_{j:04d}.png"
            cv2.imwrite(str(staging / name), image)
            rows.append((name, label, seed, gan.config.variant, gan.info["generator_sha256"][key]))
    manifest = pd.DataFrame(rows, columns=["path", "label", "seed", "variant", "generator_sha256"])
    manifest.to_csv(staging / "manifest.csv", index=False)
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return manifest
