"""Training: the seed project's pipeline against tumornb's, side by side, at one wall-clock budget.

Run by hand, not in CI (about ``2 * seeds * budget`` minutes plus a few)::

    python benchmarks/bench_training.py                          # real data if present, else phantom
    python benchmarks/bench_training.py --budget-min 10 --seeds 0 1 2 --json out.json

(a) The seed pipeline, as the typical public notebook writes it: per-file
    ``cv2.imread`` + grey + resize, ``LabelEncoder`` + one-hot, Keras' legacy
    ``ImageDataGenerator`` (rotation, zoom, shift, flip) feeding ``seed_cnn``
    with Adam and plain cross-entropy; the model of the last epoch is the
    result. (Its images stay in 0-255: ``seed_cnn``'s first layer divides by
    255, which is the notebook's ``/ 255``.)
(b) tumornb: chapter 01's manifest and cache, the stateless ``tf.data``
    pipeline, ``tumornb_cnn`` with its recipe, the epoch with the lowest
    validation loss as the result.

Both train on the same images, validate on the same duplicate-aware validation
images carved from the training split, and are scored on further training-split
images held out from both (duplicate groups kept on one side): the test split is
never read, so choosing a recipe from this benchmark cannot be test-informed.
Each gets the same wall-clock budget per seed. Every training run happens in a
fresh process: Keras leaves the ``ImageDataGenerator`` feed running after
``fit`` returns, which halved the speed of whatever trained next in the same
process (measured: 168 -> 78 images/s). Printed: loading time,
augmentation throughput, training images/s (tumornb also on cached
un-augmented batches, to show whether augmentation starves training), held-out
accuracy and macro-F1 (mean and spread over seeds), and the largest swing of
validation accuracy between consecutive epochs after the third.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# Keras 3.15 no longer exports ImageDataGenerator; the seed notebooks used it, so import it
# from where Keras keeps it to reproduce their pipeline faithfully.
from keras.src.legacy.preprocessing.image import ImageDataGenerator  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

from tumornb.audit import audit_dataset  # noqa: E402
from tumornb.data import grouped_holdout, load_images, read_manifest  # noqa: E402
from tumornb.datasets import TrainingSet, real_training_set  # noqa: E402
from tumornb.models import build_model, compile_model  # noqa: E402
from tumornb.paths import RunDir  # noqa: E402
from tumornb.phantom import write_phantom_dataset  # noqa: E402
from tumornb.pipeline import evaluation_dataset, training_dataset  # noqa: E402
from tumornb.training import TimeBudget, TrainConfig, train_classifier  # noqa: E402

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kaggle-sartaj-brain-mri"
BATCH = 32


def seed_load(paths, labels, image_size: int, encoder: LabelEncoder):
    """The seed notebook's loader: one cv2.imread per file, grey, resize (stretching), one-hot."""
    images = []
    for path in paths:
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
        images.append(cv2.resize(image, (image_size, image_size)))
    x = np.asarray(images, dtype=np.float32)[..., None]
    y = keras.utils.to_categorical(encoder.transform(labels), len(encoder.classes_))
    return x, y


def seed_generator() -> ImageDataGenerator:
    return ImageDataGenerator(
        rotation_range=15, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True
    )


def images_per_s(batches, n_batches: int) -> float:
    """Batches produced per second by an input pipeline alone (no model)."""
    iterator = iter(batches)
    next(iterator)  # warm-up
    start = time.perf_counter()
    count = 0
    for _ in range(n_batches):
        count += len(next(iterator)[0])
    rate = count / (time.perf_counter() - start)
    del iterator  # stop its prefetching threads before anything else is timed
    return rate


class EpochClock(keras.callbacks.Callback):
    """Training images/s of each epoch (training steps only, validation excluded)."""

    def __init__(self, n_images: int):
        super().__init__()
        self.n_images, self.rates = n_images, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self.rates.append(self.n_images / (time.perf_counter() - self.start))


def train_speed(model_name: str, dataset, image_size: int, steps: int, n_classes: int) -> float:
    """Median training images/s over 3 short epochs after one warm-up epoch."""
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(model_name, image_size, n_classes), steps_per_epoch=steps, epochs=4)
    clock = EpochClock(steps * BATCH)
    x_val = np.zeros((BATCH, image_size, image_size, 1), np.float32)
    y_val = np.eye(n_classes, dtype=np.float32)[np.zeros(BATCH, int)]
    model.fit(
        dataset, epochs=4, steps_per_epoch=steps, validation_data=(x_val, y_val), callbacks=[clock], verbose=0
    )
    return float(np.median(clock.rates[1:]))


def swing(val_accuracy) -> float:
    """Largest change of validation accuracy between consecutive epochs after the third."""
    later = np.asarray(val_accuracy)[3:]
    return float(np.abs(np.diff(later)).max()) if len(later) > 1 else float("nan")


def benchmark_split(run_dir: Path, size: int) -> tuple[TrainingSet, pd.DataFrame, np.ndarray]:
    """Fitting, stopping and scoring images, all from the training split.

    30% of the training images are held out (stratified, duplicate groups kept
    together); half of those, again by groups, are the validation images that
    stop training and pick the best epoch, the other half score the recipes.

    Returns
    -------
    (TrainingSet, DataFrame, ndarray)
        The set with the stopping images as its validation part, and the
        scoring images' manifest rows and pixels.
    """
    held_out = real_training_set(run_dir, size, val_fraction=0.30, seed=0)
    score = grouped_holdout(held_out.val_rows["label"], held_out.val_rows["dup_group"], fraction=0.5, seed=1)
    stop = TrainingSet(
        held_out.x_train,
        held_out.y_train,
        held_out.x_val[~score],
        held_out.y_val[~score],
        held_out.class_names,
        held_out.train_rows,
        held_out.val_rows[~score].reset_index(drop=True),
    )
    return stop, held_out.val_rows[score].reset_index(drop=True), held_out.x_val[score]


def _data(tmp: Path, size: int):
    """What every job needs, from the files the main process wrote into ``tmp``."""
    ts, _, _ = benchmark_split(tmp / "run", size)
    arrays = np.load(tmp / "seed_arrays.npz")
    return ts, arrays


def speed_job(tmp: Path, size: int, which: str) -> float:
    ts, arrays = _data(tmp, size)
    n_classes = len(ts.class_names)
    # 4 epochs of `steps` batches must fit in one pass over the data (ImageDataGenerator stops there).
    steps = min(math.ceil(len(ts.x_train) / BATCH) // 4, 20)
    if which == "seed":
        flow = seed_generator().flow(arrays["x_train"], arrays["y_train"], batch_size=BATCH, seed=0)
        return train_speed("seed_cnn", flow, size, steps, n_classes)
    augmentation = None if which == "tumornb_unaugmented" else TrainConfig().augmentation
    data = training_dataset(
        ts.x_train, ts.y_train, n_classes=n_classes, batch_size=BATCH, augmentation=augmentation
    )
    return train_speed("tumornb_cnn", data, size, steps, n_classes)


def seed_job(tmp: Path, size: int, seed: int, budget: float) -> dict:
    """The seed notebook's training: ImageDataGenerator + seed_cnn, last epoch kept."""
    ts, arrays = _data(tmp, size)
    keras.utils.set_random_seed(seed)
    steps = math.ceil(len(arrays["x_train"]) / BATCH)
    model = compile_model(
        build_model("seed_cnn", size, len(ts.class_names)), steps_per_epoch=steps, epochs=100
    )
    flow = seed_generator().flow(arrays["x_train"], arrays["y_train"], batch_size=BATCH, seed=seed)
    start = time.perf_counter()
    history = model.fit(
        flow,
        epochs=1000,
        validation_data=(arrays["x_val"], arrays["y_val"]),
        callbacks=[TimeBudget(budget)],
        verbose=0,
    )
    wall = time.perf_counter() - start
    predicted = model.predict(arrays["x_score"], verbose=0).argmax(1)
    truth = arrays["y_score"].argmax(1)
    return {
        "pipeline": "seed",
        "seed": seed,
        "epochs": len(history.history["loss"]),
        "wall_s": wall,
        "held_out_accuracy": accuracy_score(truth, predicted),
        "held_out_macro_f1": f1_score(truth, predicted, average="macro"),
        "val_accuracy": history.history["val_accuracy"],
    }


def tumornb_job(tmp: Path, size: int, seed: int, budget: float, epochs: int) -> dict:
    """tumornb's training: tf.data pipeline + tumornb_cnn, best validation epoch kept."""
    ts, arrays = _data(tmp, size)
    # The budget, not early stopping, ends the run, as for the seed pipeline.
    config = TrainConfig(
        model="tumornb_cnn", image_size=size, epochs=epochs, patience=epochs, seed=seed, time_budget_s=budget
    )
    start = time.perf_counter()
    trained = train_classifier(
        ts.x_train,
        ts.y_train,
        ts.x_val,
        ts.y_val,
        tmp / f"tumornb-{seed}",
        config,
        class_names=ts.class_names,
    )
    wall = time.perf_counter() - start
    predicted = trained.model.predict(evaluation_dataset(arrays["tumornb_x_score"]), verbose=0).argmax(1)
    truth = arrays["y_score"].argmax(1)
    return {
        "pipeline": "tumornb",
        "seed": seed,
        "epochs": len(trained.history),
        "wall_s": wall,
        "held_out_accuracy": accuracy_score(truth, predicted),
        "held_out_macro_f1": f1_score(truth, predicted, average="macro"),
        "val_accuracy": trained.history["val_accuracy"].tolist(),
    }


def in_fresh_process(function, *args):
    """Run ``function(*args)`` in a new Python process and return its result."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--budget-min", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    budget = args.budget_min * 60
    size = args.image_size
    results: dict = {"budget_s": budget, "image_size": size, "seeds": args.seeds, "runs": []}

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = args.data_dir or (REAL_DATA if REAL_DATA.is_dir() else None)
        if data_dir is None:
            data_dir = tmp / "phantom"
            write_phantom_dataset(data_dir)
        run = RunDir(tmp / "run")
        print(f"data: {data_dir}; {size} px; budget {args.budget_min:g} min per model and seed", flush=True)

        # Loading. tumornb reads every file once (decode, hashes, duplicates) and caches the arrays.
        start = time.perf_counter()
        audit_dataset(data_dir, run.root, image_size=size)
        load_images(read_manifest(run.manifest), size, cache_dir=run.cache_dir)
        tumornb_load = time.perf_counter() - start
        manifest = read_manifest(run.manifest)
        ts, scoring, x_score = benchmark_split(run.root, size)

        encoder = LabelEncoder().fit(ts.class_names)
        start = time.perf_counter()
        seed_train = seed_load(ts.train_rows["path"], ts.train_rows["label"], size, encoder)
        seed_val = seed_load(ts.val_rows["path"], ts.val_rows["label"], size, encoder)
        seed_score = seed_load(scoring["path"], scoring["label"], size, encoder)
        seed_load_s = time.perf_counter() - start
        n_files = len(ts.train_rows) + len(ts.val_rows) + len(scoring)
        results["loading_images_per_s"] = {
            "seed": n_files / seed_load_s,
            "tumornb": len(manifest) / tumornb_load,
        }
        np.savez(
            tmp / "seed_arrays.npz",
            x_train=seed_train[0],
            y_train=seed_train[1],
            x_val=seed_val[0],
            y_val=seed_val[1],
            x_score=seed_score[0],
            y_score=seed_score[1],
            tumornb_x_score=x_score,
        )
        print(
            f"train {len(ts.x_train)}, validation {len(ts.x_val)}, scoring {len(x_score)} images "
            "(all from the training split; the test split is not read)",
            flush=True,
        )

        # Training speed with and without augmentation, then the input pipelines alone.
        results["train_images_per_s"] = {
            which: in_fresh_process(speed_job, tmp, size, which)
            for which in ("seed", "tumornb", "tumornb_unaugmented")
        }
        n_classes = len(ts.class_names)
        tumornb_aug = training_dataset(ts.x_train, ts.y_train, n_classes=n_classes, batch_size=BATCH, seed=0)
        results["augmentation_images_per_s"] = {"tumornb": images_per_s(tumornb_aug, 40)}
        flow = seed_generator().flow(seed_train[0], seed_train[1], batch_size=BATCH, seed=0)
        results["augmentation_images_per_s"]["seed"] = images_per_s(flow, 40)
        print(json.dumps({k: results[k] for k in results if k.endswith("per_s")}, indent=1), flush=True)

        # Accuracy within the same wall-clock budget, several seeds each.
        ips = results["train_images_per_s"]["tumornb"]
        epochs = max(3, int(budget * ips / (len(ts.x_train) * 1.1)))  # 10% for validation
        for seed in args.seeds:
            for entry in (
                in_fresh_process(seed_job, tmp, size, seed, budget),
                in_fresh_process(tumornb_job, tmp, size, seed, budget, epochs),
            ):
                entry["val_swing_after_3"] = swing(entry["val_accuracy"])
                results["runs"].append(entry)
                print(
                    f"seed {seed} {entry['pipeline']:8s} epochs {entry['epochs']:3d} "
                    f"wall {entry['wall_s']:5.0f}s "
                    f"held-out acc {entry['held_out_accuracy']:.3f} "
                    f"macro-F1 {entry['held_out_macro_f1']:.3f} "
                    f"val swing {entry['val_swing_after_3']:.3f}",
                    flush=True,
                )

    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def summary(values: np.ndarray) -> str:
    """Mean, range and sample standard deviation over seeds."""
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} (min {values.min():.3f}, max {values.max():.3f}, sd {sd:.3f})"


def report(results: dict) -> None:
    def row(name, seed_value, tumornb_value, fmt="{:10.0f}"):
        ratio = tumornb_value / seed_value if seed_value else float("nan")
        print(f"{name:40s} {fmt.format(seed_value)} {fmt.format(tumornb_value)} {ratio:8.2f}x")

    print(f"\n{'':40s} {'seed':>10s} {'tumornb':>10s} {'ratio':>9s}")
    row("loading, images/s", *results["loading_images_per_s"].values())
    aug = results["augmentation_images_per_s"]
    row("augmentation, images/s", aug["seed"], aug["tumornb"])
    speed = results["train_images_per_s"]
    row("training with augmentation, images/s", speed["seed"], speed["tumornb"])
    print(
        f"tumornb training on un-augmented cached batches: {speed['tumornb_unaugmented']:.0f} images/s; "
        f"with augmentation {speed['tumornb'] / speed['tumornb_unaugmented']:.1%} of that"
    )
    for metric in ("held_out_accuracy", "held_out_macro_f1", "val_swing_after_3", "epochs"):
        values = {
            p: np.array([r[metric] for r in results["runs"] if r["pipeline"] == p])
            for p in ("seed", "tumornb")
        }
        text = "  ".join(f"{p}: {summary(v)}" for p, v in values.items())
        print(f"{metric:18s} over {len(values['seed'])} seeds  {text}")


if __name__ == "__main__":
    main()
