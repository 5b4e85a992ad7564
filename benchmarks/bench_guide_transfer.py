"""Does a guide's pull towards a class move the judge too? An ordinary guide against a robust one.

Run by hand, not in CI, on a run directory where chapter 01 has run::

    python benchmarks/bench_guide_transfer.py --run-dir runs/default

A GAN steered by a frozen guide classifier (``bench_gan.py``'s ``cbn+guide+ms``) learns
whatever moves that guide. Whether that is the class or noise only the guide sees can be
asked without a GAN: take real validation images of the other classes, move each towards a
class by targeted gradient steps on the guide (:func:`tumornb.adversarial.l2_attack`, within
an L2 distance ``--distances``), and count how often the independent judge then calls it that
class. Chapter 02's judge and the bench's guide are trained as ``bench_gan.py`` trains them,
on the real training images only; the robust guide is the same guide fine-tuned on
adversarial images (:func:`tumornb.adversarial.adversarial_finetune`). The test split plays
no part.

Printed per guide and distance: the guide's own validation accuracy, how often the moved
images reach their target for the guide and for the judge (per target class and overall), and
at the end the robust guide's judge hit rate over the ordinary guide's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a run directory where chapter 01 has run")
    parser.add_argument("--image-size", type=int, default=64, help="the GAN's resolution")
    parser.add_argument("--distances", default="2,4,8", help="L2 distances in [0, 1] units, comma-separated")
    parser.add_argument("--radius", type=float, default=0.25, help="the robust guide's training radius")
    parser.add_argument("--epochs", type=int, default=10, help="the robust guide's fine-tuning epochs")
    parser.add_argument("--per-class", type=int, default=64, help="source images moved towards each class")
    parser.add_argument("--steps", type=int, default=20, help="gradient steps of each move")
    parser.add_argument("--judge-epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every row here too, with the command and the machine")
    args = parser.parse_args()

    from tumornb import evaluation, fidelity
    from tumornb.adversarial import adversarial_finetune, l2_attack
    from tumornb.datasets import real_training_set
    from tumornb.runner import write_benchmark_record

    real = real_training_set(args.run_dir, args.image_size)
    names = real.class_names
    x_val = real.x_val  # (n, side, side), as evaluation.predict_proba takes images
    work = Path(tempfile.mkdtemp(prefix="bench_guide_transfer_"))
    judge = fidelity.train_judge(real, work / "judge", epochs=args.judge_epochs, seed=args.seed).model
    guide = fidelity.train_guide(real, work / "guide", epochs=args.judge_epochs, seed=args.seed + 1)
    started = time.perf_counter()
    robust = adversarial_finetune(
        guide.model, real.x_train, real.y_train, radius=args.radius, epochs=args.epochs, seed=args.seed
    )
    guides = {
        "guide": (guide.model, guide.info["wall_seconds"]),
        f"robust guide (radius {args.radius:g})": (robust, time.perf_counter() - started),
    }

    def accuracy(model, images, labels) -> float:
        return float((evaluation.predict_proba(model, images).argmax(1) == labels).mean())

    print(f"{len(real.x_train)} training and {len(x_val)} validation images at {args.image_size} px")
    print(f"judge accuracy on real validation images {accuracy(judge, x_val, real.y_val):.3f}\n")
    rows = []
    for name, (model, seconds) in guides.items():
        for distance in (float(d) for d in args.distances.split(",")):
            row = {"guide": name, "distance": distance, "val accuracy": accuracy(model, x_val, real.y_val)}
            hits = {"guide": [], "judge": []}
            for k, target in enumerate(names):
                sources = x_val[real.y_val != k][: args.per_class, ..., None].astype(np.float32)
                wanted = np.full(len(sources), k)
                moved = l2_attack(model, sources, wanted, radius=distance, steps=args.steps, towards=True)
                moved = np.asarray(moved)[..., 0]
                for who, classifier in (("guide", model), ("judge", judge)):
                    hit = evaluation.predict_proba(classifier, moved).argmax(1) == k
                    hits[who].append(hit)
                    if who == "judge":
                        row[f"judge: {target}"] = float(hit.mean())
            row |= {f"{who} hit rate": float(np.concatenate(h).mean()) for who, h in hits.items()}
            rows.append(row | {"guide s": seconds})
            print(pd.DataFrame([row]).to_string(index=False, float_format="{:.3f}".format), flush=True)

    table = pd.DataFrame(rows)
    print("\nAll rows:")
    print(table.to_string(index=False, float_format="{:.3f}".format))
    ordinary, hardened = list(guides)
    for distance, group in table.groupby("distance"):
        rate = group.set_index("guide")["judge hit rate"]
        ratio = rate[hardened] / rate[ordinary]
        print(f"distance {distance:g}: judge hit rate, robust guide / guide x{ratio:.2f}")
    if args.json:
        write_benchmark_record(
            args.json,
            "benchmarks/bench_guide_transfer.py",
            image_size=args.image_size,
            n_train=len(real.x_train),
            n_val=len(real.x_val),
            rows=rows,
        )


if __name__ == "__main__":
    main()
