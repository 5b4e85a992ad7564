"""The classifier's recipe, piece by piece: schedule, weight averaging, mixing, width, input size, TTA.

Run by hand, not in CI::

    python benchmarks/bench_recipe.py                                # Sartaj data if present
    python benchmarks/bench_recipe.py --image-size 96 --epochs 12 --seeds 0 1 2 --json out.json
    python benchmarks/bench_recipe.py --recipes baseline mixup cutmix "width 1.5x" "size 128"

The data is pooled and re-split with chapter 01's grouped re-split (``resplit="grouped"``: scans
within 4 pHash bits, a patient proxy, stay on one side), and chapter 03's validation split is
carved out of the new training split. Every recipe is trained once per seed, each training in a
fresh process, on the same images:

* ``baseline``: chapter 03's ``tumornb_cnn`` recipe for ``--epochs`` epochs;
* ``1.5x schedule``, ``2x schedule``: the same for 1.5 or 2 times as many epochs (the cosine
  schedule stretched);
* ``plateau``: the plateau schedule (:mod:`tumornb.schedules`): the peak rate held until the
  validation loss stalls (4 epochs without a new low; 8, the default, for ``plateau, patience
  8``), then a cool-down; the data decides the length, up to 4x ``--epochs``;
* ``plateau, baseline's budget``, ``plateau, 1.5x budget``: the default profile's schedule (patience
  8) held to the baseline's ``--epochs``, or 1.5 times as many: the cool-down starts in time to end
  within them, so the recipes cost the baseline's time per epoch over at most as many epochs, or 1.5x;
* ``ema``: ``--epochs`` epochs with a moving average of the weights (``TrainConfig.ema``);
* ``mixup``, ``cutmix``: every training batch mixed (``TrainConfig.mixing``, default alphas);
  ``mixup, 2x schedule`` mixes over the ``2x schedule``'s epochs;
* ``width 1.5x``: ``tumornb_cnn`` with 1.5 times the filters in every layer;
* ``size 128``, ``size 160``, ``size 192``: the baseline on images of that side (validation
  and test images at the same side);

and each trained model is also scored with **flip TTA** (its probabilities averaged with those
of the left-right mirror image), which costs no training. The recipe to keep is chosen on
**validation accuracy only**; the test split of the re-split is scored for reference, after the
choice, and never feeds it. Printed: per recipe, validation and test accuracy and test macro-F1
(mean over seeds with a Student's t 95% interval), training wall time and its ratio to the
baseline's, training images/s and prediction time per image.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import pandas as pd

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kaggle-sartaj-brain-mri"
#: Each recipe is the baseline with these changes: ``epochs_factor`` stretches the schedule,
#: ``image_size`` replaces ``--image-size``, anything else is a ``TrainConfig`` field.
RECIPES: dict[str, dict] = {
    "baseline": {},
    "1.5x schedule": {"epochs_factor": 1.5},
    "2x schedule": {"epochs_factor": 2},
    "plateau": {"schedule": "plateau", "plateau_patience": 4, "epochs_factor": 4},
    # Measured with early stopping at 12 epochs; the plateau schedule no longer stops early at all.
    "plateau, patience 8": {"schedule": "plateau", "plateau_patience": 8, "patience": 12, "epochs_factor": 4},
    # Today's default schedule held to the baseline's budget, then to 1.5 times it (issue 21's comparison).
    "plateau, baseline's budget": {"schedule": "plateau"},
    "plateau, 1.5x budget": {"schedule": "plateau", "epochs_factor": 1.5},
    "ema": {"ema": 0.99},
    "mixup": {"mixing": "mixup"},
    # Mixing is said to pay only over long schedules: MixUp given the 2x schedule's epochs.
    "mixup, 2x schedule": {"mixing": "mixup", "epochs_factor": 2},
    "cutmix": {"mixing": "cutmix"},
    "width 1.5x": {"width": 1.5},
    "size 128": {"image_size": 128},
    "size 160": {"image_size": 160},
    "size 192": {"image_size": 192},
}


def prepare(data_dir: Path | None, run_dir: Path, size: int) -> None:
    """Chapter 01 with the grouped re-split: manifest and image cache in ``run_dir``."""
    from tumornb.audit import audit_dataset, resolve_data_dir

    data_path = resolve_data_dir(data_dir, run_dir, seed=0)
    audit_dataset(data_path, run_dir, image_size=size, seed=0, resplit="grouped", resplit_bits=4)


def train_and_score(run_dir: Path, size: int, recipe: str, seed: int, epochs: int) -> dict:
    """Train one recipe with one seed and score it, plain and with flip TTA."""
    from tumornb.datasets import real_training_set, run_images
    from tumornb.evaluation import predict_proba
    from tumornb.metrics import accuracy, macro_f1
    from tumornb.training import TrainConfig, train_classifier

    data = real_training_set(run_dir, size, val_fraction=0.15, seed=0)
    usable, images, names = run_images(run_dir, size)
    is_test = (usable["split"] == "test").to_numpy()
    x_test, y_test = images[is_test], usable.loc[is_test, "label"].map(names.index).to_numpy()
    settings = dict(RECIPES[recipe])
    settings.pop("image_size", None)
    epochs = round(epochs * settings.pop("epochs_factor", 1.0))
    config = TrainConfig(image_size=size, epochs=epochs, seed=seed, **settings)
    out = run_dir / "recipes" / f"{recipe}-{seed}"
    trained = train_classifier(
        data.x_train, data.y_train, data.x_val, data.y_val, out, config, class_names=data.class_names
    )
    rows = []
    for flip in (False, True):
        started = time.perf_counter()
        test_p = predict_proba(trained.model, x_test, flip=flip)
        per_image_ms = 1000 * (time.perf_counter() - started) / max(len(x_test), 1)
        val_p = predict_proba(trained.model, data.x_val, flip=flip)
        rows.append(
            {
                "recipe": recipe + (" + flip TTA" if flip else ""),
                "seed": seed,
                "validation accuracy": accuracy(data.y_val, val_p.argmax(1)),
                "test accuracy": accuracy(y_test, test_p.argmax(1)),
                "test macro-F1": macro_f1(y_test, test_p.argmax(1)),
                "training wall (s)": trained.info["wall_seconds"],
                "epochs run": trained.info["epochs_run"],
                "training images/s": trained.info["train_images_per_s"],
                "prediction ms/image": per_image_ms,
                "n_train": len(data.x_train),
                "n_val": len(data.x_val),
                "n_test": len(x_test),
            }
        )
    return rows


def in_fresh_process(function, *args):
    """Run ``function(*args)`` in a new Python process: no Keras state carries over."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, help="a Kaggle download (default: the Sartaj data if present)"
    )
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30, help="the baseline's epochs (default profile: 30)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES), help="default: all"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the baseline (its rows come from another run)"
    )
    parser.add_argument(
        "--json", type=Path, help="also write every row, with the command and machine (chapter 03 reads it)"
    )
    args = parser.parse_args()
    from tumornb.runner import write_benchmark_record
    from tumornb.training import recipe_table

    data_dir = args.data_dir or (REAL_DATA if REAL_DATA.is_dir() else None)
    print(f"data: {data_dir or 'the embedded phantom'}; {args.image_size} px; seeds {args.seeds}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        recipes = [name for name in args.recipes if name != "baseline"]
        recipes = recipes if args.no_baseline else ["baseline", *recipes]
        sizes = {name: RECIPES[name].get("image_size", args.image_size) for name in recipes}
        # One audit; a recipe at another size has its images decoded into the cache on first use.
        in_fresh_process(prepare, data_dir, run_dir, args.image_size)
        for seed in args.seeds:
            for recipe in recipes:
                found = in_fresh_process(train_and_score, run_dir, sizes[recipe], recipe, seed, args.epochs)
                rows += found
                scores = (f"{r['validation accuracy']:.3f}/{r['test accuracy']:.3f}" for r in found)
                print(
                    f"  seed {seed} {recipe}: validation/test accuracy, plain and flipped: "
                    + ", ".join(scores)
                )
    frame = pd.DataFrame(rows)
    first = frame.iloc[0]
    counts = (int(first[key]) for key in ("n_train", "n_val", "n_test"))
    print("\n{} training, {} validation, {} test images".format(*counts))
    print(recipe_table(frame).to_string())
    if args.json:
        write_benchmark_record(
            args.json,
            "benchmarks/bench_recipe.py",
            data=str(data_dir.name if data_dir else "phantom"),
            image_size=args.image_size,
            epochs=args.epochs,
            rows=rows,
        )


if __name__ == "__main__":
    main()
