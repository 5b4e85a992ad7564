"""Generators side by side at one wall-clock budget: do their images carry their class?

Run by hand, not in CI, on a run directory where chapter 01 has run::

    tumornb run --only 01 --run-dir runs/default            # the phantom data, default profile
    python benchmarks/bench_gan.py --run-dir runs/default --budget-s 150 --seeds 0,1

For each seed, in one process and one after the other, it trains the generators ``--generators``
names (default: all of them)

* ``projection``: the conditional GAN as tumornb 0.1 trains it (no auxiliary loss, Adam at 2e-4),
* ``projection+aux``: the same with the auxiliary classifier (``class_weight=1``),
* ``cbn``: class-conditional batch normalisation in the generator, Adam at ``--learning-rate``,
* ``cbn+aux``: the same with the auxiliary classifier,
* ``cbn+capped-aux``: the same with the auxiliary loss capped at a class probability of 0.8
  (``class_confidence``), so that drawing prototypes earns the generator nothing more,
* ``cbn+light-aux``: ``cbn+aux`` at a third of the weight (``class_weight=0.3``),
* ``cbn+tac``: ``cbn+aux`` with TAC-GAN's twin classifier (``twin_classifier``), which rewards
  images of a class that are as hard to tell apart as the real ones,
* ``cbn+aux+ms``: ``cbn+aux`` with the mode-seeking term (``diversity_weight=1``), which rewards
  two noises for drawing two different images of one class,
* ``cbn+aux+ms+augcls``: ``cbn+aux+ms`` whose auxiliary class head sees the images shifted
  and mirrored (``DGAN(class_augment="shift,flip")``), as the judge's classifier sees its training
  images; the realness score sees them as they are,
* ``cbn+strong-aux+ms``: the same with three times the auxiliary loss's weight (``class_weight=3``):
  with the collapse held off by the mode-seeking term, can the class be pushed harder?
* ``cbn+aux+da`` and ``cbn+aux+ms+da``: those two with differentiable augmentation (DiffAugment:
  shift, brightness and cutout of everything the discriminator sees), made for GANs trained on a
  few thousand images, where the discriminator otherwise learns the training set by heart;
  ``cbn+aux+ms+da-no-cutout`` leaves cutout out (its half-side square can hide the lesion that
  the class head is asked to find);
* ``cbn+guide+ms`` and ``cbn+aux+guide+ms``: a frozen *guide* classifier, trained on the real
  training images before the GAN (the seed project's CNN, another architecture and seed than the
  judge's), adds its cross-entropy on the intended classes to the generator's loss: the class
  signal is there from the first step, where the auxiliary head has to learn it alongside;
  the guide's training time is reported beside the generator's (``guide s``);
* ``cbn+rguide+ms``: ``cbn+guide+ms`` with the guide fine-tuned on adversarial images first
  (:func:`tumornb.adversarial.adversarial_finetune`, L2 radius 0.25, 10 epochs): a robust
  classifier's gradients look more like its classes (Santurkar et al., 2019), so following them
  may draw what the judge, too, recognises; the fine-tuning's time counts in ``guide s``;
* ``cbn+aux+ms+features``: ``cbn+aux+ms`` with a second discriminator on the guide's frozen
  penultimate features (``DGAN(feature_net=)``, as Vision-aided GAN does with pretrained networks):
  fake features must match real ones class by class, where the guide's cross-entropy alone asks
  only that they land on the right side of its decision boundary;
* ``cbn+aux+ms+lecam``: ``cbn+aux+ms`` with the LeCam regulariser (``DGAN(lecam_weight=0.3)``,
  Tseng et al., 2021, at their weight for BigGAN), which keeps the discriminator from learning a
  few thousand training images by heart without augmenting what it sees (DiffAugment's cost here);
* ``per_class``: the original method's one GAN per class at 2e-4, the budget split evenly between them,

each for the same number of seconds (``--budget-s``, stopped at the first batch past it), or the
same number of steps (``--budget-steps``), from the same seed. With ``--snapshots 1000,2000``
(and ``--budget-steps 3000``) each conditional generator also draws its images at those steps of
the same run, so one run shows how the numbers move with the budget; with ``--truncations 1,0.5``
they are also drawn with BigGAN's truncation trick at those bounds (noise cut at ±bound: less
variety, images nearer the generator's typical one), as rows ``<generator>, truncated at <bound>``.
Then, on the real
*validation* images (never the test split, never seen by a GAN):

* class fidelity: the judge's accuracy on synthetic images over its accuracy on real ones
  (overall, and the lowest class), with the judge trained on the real training images once;
* CAS: a classifier trained on the synthetic images alone, tested on the real validation images;
* FID and KID of the synthetic images against the real validation images, beside the floor
  (real training images against the same validation images), and recall;
* the same FID over its floor in the judge's own features (``judge FID/floor``); its floor is
  inflated (the judge was fitted to the training images that make it), so read realism from the
  random encoder's FID against its floor, and variety from recall: a generator can raise the
  judge's verdict by drawing one image per class;
* training throughput in real images per second.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: name -> DGAN options; ``learning_rate`` None means ``--learning-rate``.
GENERATORS = {
    "projection": {"learning_rate": 2e-4},
    "projection+aux": {"class_weight": 1.0, "learning_rate": 2e-4},
    "cbn": {"conditional_norm": True, "learning_rate": None},
    "cbn+aux": {"class_weight": 1.0, "conditional_norm": True, "learning_rate": None},
    "cbn+capped-aux": {
        "class_weight": 1.0,
        "class_confidence": 0.8,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+light-aux": {"class_weight": 0.3, "conditional_norm": True, "learning_rate": None},
    "cbn+tac": {
        "class_weight": 1.0,
        "twin_classifier": True,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms": {
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms+augcls": {
        "class_weight": 1.0,
        "class_augment": "shift,flip",
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+strong-aux+ms": {
        "class_weight": 3.0,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+da": {
        "class_weight": 1.0,
        "augment": True,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms+da": {
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "augment": True,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms+da-no-cutout": {
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "augment": "shift,brightness",
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+guide+ms": {
        "guide": True,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+rguide+ms": {
        "guide": "robust",
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+guide+ms": {
        "guide": True,
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms+features": {
        "guide_features": True,
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "cbn+aux+ms+lecam": {
        "lecam_weight": 0.3,
        "class_weight": 1.0,
        "diversity_weight": 1.0,
        "conditional_norm": True,
        "learning_rate": None,
    },
    "per_class": {"learning_rate": 2e-4},
}


def train_for(
    images,
    labels,
    n_classes,
    *,
    budget_s,
    width,
    seed,
    learning_rate=2e-4,
    budget_steps=None,
    snapshots=(),
    drawn=None,
    truncations=(None,),
    augment=False,
    **options,
):
    """A DGAN trained for ``budget_s`` seconds (or ``budget_steps`` steps, when given).

    Returns the DGAN, the real images per second it saw, and ``{(step, truncation): images}``:
    the classes ``drawn`` drawn (with seed ``seed + 1``, as after training) at each step of
    ``snapshots`` that training reached, once per truncation of ``truncations``.
    """
    import keras
    import tensorflow as tf

    from tumornb.gan import DGAN
    from tumornb.pipeline import training_dataset
    from tumornb.training import TimeBudget

    keras.utils.set_random_seed(seed)
    side = images.shape[1]
    gan = DGAN(
        side,
        n_classes,
        width=width,
        augment=augment,
        seed=seed,
        **options,
    )
    gan.compile(learning_rate=learning_rate)
    batch, epochs = 32, 10_000
    dataset = training_dataset(
        images, labels, n_classes=n_classes, batch_size=batch, seed=seed, augmentation=None, epochs=epochs
    ).map(lambda x, y: (x / 127.5 - 1.0, tf.argmax(y, axis=-1, output_type=tf.int32)))
    steps = math.ceil(len(images) / batch)
    drawn_at = snapshot_callback(gan, snapshots, drawn, seed=seed + 1, truncations=truncations)
    started = time.perf_counter()
    if budget_steps:
        gan.fit(dataset, epochs=1, steps_per_epoch=budget_steps, callbacks=[drawn_at], verbose=0)
    else:
        callbacks = [TimeBudget(budget_s), drawn_at]
        gan.fit(dataset, epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    seconds = time.perf_counter() - started - drawn_at.seconds
    seen = int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)) * batch
    return gan, seen / seconds, drawn_at.images


def snapshot_callback(gan, steps, drawn, *, seed, truncations=(None,)):
    """A callback that draws ``drawn`` with ``gan`` after each step in ``steps``; its time is kept apart.

    Its ``images`` map ``(step, truncation)`` to the images drawn, for each of ``truncations``.
    """
    import keras

    class _Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.images, self.seconds = {}, 0.0

        def on_train_batch_end(self, batch, logs=None):
            step = int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations))
            if step in steps and (step, truncations[0]) not in self.images:
                started = time.perf_counter()
                for truncation in truncations:
                    self.images[step, truncation] = gan.generate(drawn, seed=seed, truncation=truncation)
                self.seconds += time.perf_counter() - started

    return _Snapshots()


def _step_then_truncation(item):
    """Sort key of ``((step, truncation), images)``: by step, the untruncated draw first."""
    (step, truncation), _ = item
    return step, -math.inf if truncation is None else -truncation


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", default="runs/default")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--budget-s", type=float, default=150.0)
    parser.add_argument(
        "--budget-steps",
        type=int,
        help="train each generator this many steps instead of --budget-s seconds (fair on a shared machine)",
    )
    parser.add_argument(
        "--snapshots",
        default="",
        help="comma-separated steps at which the conditional generators' images are also scored",
    )
    parser.add_argument(
        "--truncations",
        default="",
        help="comma-separated bounds of the truncation trick at which the conditional generators' images "
        "are also drawn and scored, as rows '<generator>, truncated at <bound>' (the untruncated row stays)",
    )
    parser.add_argument(
        "--filter-pool",
        type=int,
        default=0,
        help="also score each conditional generator's final images after rejection sampling: draw this many "
        "times the images needed, keep those the guide (not the judge) puts in their class, as rows "
        "'<generator>, guide-filtered' with the share of the wanted images found ('filled'); 0: off",
    )
    parser.add_argument("--json", help="write every row here too, with the command and the machine")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--judge-epochs", type=int, default=40)
    parser.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam's step size of the cbn generators"
    )
    parser.add_argument("--generators", default=",".join(GENERATORS), help="comma-separated, of: %(default)s")
    args = parser.parse_args()

    from tumornb import evaluation, fidelity, quality
    from tumornb.adversarial import adversarial_finetune
    from tumornb.datasets import real_training_set
    from tumornb.runner import write_benchmark_record

    real = real_training_set(args.run_dir, args.image_size)
    names = real.class_names
    counts = np.bincount(real.y_train, minlength=len(names))
    drawn = np.repeat(np.arange(len(names)), counts)
    work = Path(tempfile.mkdtemp(prefix="bench_gan_"))
    judge = fidelity.train_judge(real, work / "judge", epochs=args.judge_epochs)

    def judge_proba(images):
        return evaluation.predict_proba(judge.model, images)

    judge_features = fidelity.judge_encoder(judge.model)
    val_judged = quality.embed(judge_features, real.x_val)
    train_judged = quality.embed(judge_features, real.x_train)
    judged_floor = quality.frechet_distance(val_judged, train_judged[: len(real.x_val)])
    encoder = quality.feature_encoder(args.image_size)
    val_features, train_features = quality.embed(encoder, real.x_val), quality.embed(encoder, real.x_train)
    floor_fid = quality.frechet_distance(val_features, train_features[: len(real.x_val)])
    floor_kid = quality.kernel_distance(val_features, train_features)[0]
    print(f"{len(real.x_train)} training and {len(real.x_val)} validation images at {args.image_size} px")
    budget = f"{args.budget_steps} steps" if args.budget_steps else f"{args.budget_s:.0f} s"
    print(f"budget {budget} per generator; judge accuracy on real validation images ", end="")
    judge_accuracy = float((judge_proba(real.x_val).argmax(1) == real.y_val).mean())
    print(f"{judge_accuracy:.3f}\n")

    def score(name, seed, steps, synthetic, rate, truncation=None, labels=drawn):
        found = fidelity.class_fidelity(judge_proba, real.x_val, real.y_val, synthetic, labels, names)
        cas = fidelity.classification_accuracy_score(
            synthetic,
            labels,
            real.x_val,
            real.y_val,
            # A folder per draw: one would resume another.
            work / f"cas-{name}-{seed}-{steps}-{truncation}-{len(labels)}",
            class_names=names,
            epochs=args.judge_epochs,
            seed=seed,
        )
        fake_features = quality.embed(encoder, synthetic)
        row = {
            "generator": name if truncation is None else f"{name}, truncated at {truncation:g}",
            "seed": seed,
            "steps": steps,
            "truncation": truncation,
            "fidelity": found.table.loc["all", "synthetic"],
            "ratio": found.overall_ratio,
            "lowest class ratio": found.worst_class_ratio,
            "CAS": cas["accuracy"],
            "FID": quality.frechet_distance(val_features, fake_features[: len(real.x_val)]),
            "FID floor": floor_fid,
            "KID": quality.kernel_distance(val_features, fake_features)[0],
            "KID floor": floor_kid,
            "judge FID/floor": quality.frechet_distance(
                val_judged, quality.embed(judge_features, synthetic)[: len(real.x_val)]
            )
            / judged_floor,
            "recall": quality.precision_recall(val_features, fake_features[: len(real.x_val)])[1],
            "images/s": rate,
        }
        print(pd.DataFrame([row]).to_string(index=False, float_format="{:.3f}".format), flush=True)
        return row

    snapshots = sorted(int(s) for s in args.snapshots.split(",")) if args.snapshots else []
    truncations = [None] + [float(t) for t in args.truncations.split(",") if t]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.generators.split(","):
            options = dict(GENERATORS[name])
            learning_rate = options.pop("learning_rate") or args.learning_rate
            guide_seconds = 0.0
            wants_guide, wants_features = options.pop("guide", False), options.pop("guide_features", False)
            if wants_guide or wants_features:
                guide = fidelity.train_guide(
                    real, work / f"guide-{seed}", epochs=args.judge_epochs, seed=seed + 1
                )
                guide_seconds = guide.info["wall_seconds"]  # also when reused from an earlier generator
                if wants_guide == "robust":
                    started = time.perf_counter()
                    x, y = real.x_train, real.y_train  # training images only, as the guide's own
                    options["guide"] = adversarial_finetune(guide.model, x, y, seed=seed)
                    guide_seconds += time.perf_counter() - started
                elif wants_guide:
                    options["guide"] = guide.model
                if wants_features:
                    options["feature_net"] = fidelity.judge_encoder(guide.model)
            if name == "per_class":
                synthetic, rates, steps = [], [], 0
                for k in range(len(names)):
                    mine = real.x_train[real.y_train == k]
                    gan, rate, _ = train_for(
                        mine,
                        np.zeros(len(mine), int),
                        1,
                        budget_s=args.budget_s / len(names),
                        budget_steps=args.budget_steps and args.budget_steps // len(names),
                        width=args.width,
                        seed=seed,
                        learning_rate=learning_rate,
                    )
                    synthetic.append(gan.generate(np.zeros(counts[k], int), seed=seed + 1))
                    rates.append(rate)
                    steps += int(gan.d_optimizer.iterations.numpy())
                rows.append(score(name, seed, steps, np.concatenate(synthetic), float(np.mean(rates))))
                continue
            gan, rate, drawn_at = train_for(
                real.x_train,
                real.y_train,
                len(names),
                budget_s=args.budget_s,
                budget_steps=args.budget_steps,
                snapshots=snapshots,
                drawn=drawn,
                truncations=truncations,
                width=args.width,
                seed=seed,
                learning_rate=learning_rate,
                **options,
            )
            steps = int(gan.d_optimizer.iterations.numpy())
            for truncation in truncations:
                drawn_at[steps, truncation] = gan.generate(drawn, seed=seed + 1, truncation=truncation)
            for (step, truncation), synthetic in sorted(drawn_at.items(), key=_step_then_truncation):
                rows.append(score(name, seed, step, synthetic, rate, truncation) | {"guide s": guide_seconds})
            if args.filter_pool:
                filter_by = fidelity.train_guide(
                    real, work / f"guide-{seed}", epochs=args.judge_epochs, seed=seed + 1
                )
                pool = np.repeat(np.arange(len(names)), counts * args.filter_pool)
                pooled = gan.generate(pool, seed=seed + 2)
                keep = fidelity.pick_faithful(evaluation.predict_proba(filter_by.model, pooled), pool, counts)
                row = score(f"{name}, guide-filtered", seed, steps, pooled[keep], rate, labels=pool[keep])
                filter_seconds = filter_by.info["wall_seconds"]
                rows.append(row | {"guide s": filter_seconds, "filled": len(keep) / len(drawn)})

    table = pd.DataFrame(rows)
    print("\nAll runs:")
    print(table.to_string(index=False, float_format="{:.3f}".format))
    if args.json:
        write_benchmark_record(
            args.json,
            "benchmarks/bench_gan.py",
            image_size=args.image_size,
            n_train=len(real.x_train),
            n_val=len(real.x_val),
            judge_accuracy=judge_accuracy,
            rows=table.to_dict(orient="records"),
        )
    table = table.drop(columns="truncation")  # in each row's generator name too
    print("\nMean over seeds:")
    print(
        table.drop(columns="seed")
        .groupby(["generator", "steps"], sort=False)
        .mean()
        .to_string(float_format="{:.3f}".format)
    )
    # Generators compare at the end of their training, not at their snapshots.
    final = table.sort_values("steps").groupby(["generator", "seed"], sort=False).tail(1)
    means = final.drop(columns=["seed", "steps"]).groupby("generator", sort=False).mean()
    if "projection" not in means.index:
        return
    base = means.loc["projection"]
    for name in means.index.drop("projection"):
        ratios = means.loc[name] / base
        print(
            f"{name} / projection: fidelity ratio x{ratios['ratio']:.2f}, CAS x{ratios['CAS']:.2f}, "
            f"judge FID/floor x{ratios['judge FID/floor']:.2f}, images/s x{ratios['images/s']:.2f}"
        )


if __name__ == "__main__":
    main()
