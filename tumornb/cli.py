"""The ``tumornb`` command: ``run``, ``ablate``, ``sweep``, ``book``, ``predict``, ``phantom``, ``audit``.

Examples
--------
Run every chapter on the embedded phantom data, then render the book::

    tumornb run --profile default --run-dir runs/default
    tumornb book --run-dir runs/default

On a Kaggle download::

    tumornb run --data-dir ~/data/brain-mri --profile default --run-dir runs/my-run

Train the ablation on two local Dask workers, or on a running Dask cluster::

    tumornb ablate --run-dir runs/default --jobs 2
    tumornb ablate --run-dir runs/default --scheduler tcp://10.0.0.5:8786

Sweep the learning rate over chapter 03-04, each point from a copy of a run::

    tumornb sweep -p learning_rate=[5e-4,1e-3] --only 03,04 --base-run runs/default --sweep-dir runs/lr

Classify new images with a trained model::

    tumornb predict scans/ --model runs/default/models/real --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from tumornb.profiles import PROFILES, parse_override

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tumornb", description="Brain-tumour MRI classification as a reproducible book."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="execute the chapter notebooks with papermill")
    run.add_argument(
        "--data-dir",
        help="folder-per-class dataset (Training/ and Testing/); default: embedded phantom data",
    )
    run.add_argument(
        "--profile",
        choices=list(PROFILES),
        default="default",
        help="how much work to do (default: %(default)s)",
    )
    run.add_argument("--run-dir", default="runs/default", help="where results go (default: %(default)s)")
    run.add_argument("--only", help="comma-separated chapters to run, e.g. 01_eda,03_cnn or 01,03")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a notebook parameter (repeatable)",
    )
    run.add_argument(
        "--resplit",
        choices=["grouped"],
        help="pool the download's train/test splits and re-split them, keeping scans within "
        "--resplit-bits pHash bits of each other (a patient proxy) on one side",
    )
    run.add_argument(
        "--resplit-bits",
        type=int,
        metavar="BITS",
        help="the patient-proxy threshold for --resplit grouped (default: chapter 01's, 4)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the per-cell progress bar")
    run.add_argument(
        "--ablate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="before chapter 04, train the ablation's repetitions (the profile's ablation_seeds); "
        "default: on for the smoke and full profiles, off for default",
    )

    ablate = commands.add_parser(
        "ablate",
        help="train chapter 04's ablation: each variant once per seed, one notebook execution each",
        description="Train the classifier on each variant (real, real+synthetic, real+filtered-synthetic, "
        "10real+90synthetic) "
        "once per seed, skipping those already trained; then re-run chapter 04 to see the result.",
    )
    ablate.add_argument(
        "--run-dir", default="runs/default", help="a run after chapter 03 (default: %(default)s)"
    )
    ablate.add_argument("--profile", choices=list(PROFILES), default="default", help="(default: %(default)s)")
    ablate.add_argument("--seeds", help="comma-separated seeds (default: the profile's ablation_seeds)")
    ablate.add_argument(
        "--variants", help="comma-separated variants (default: the profile's ablation_variants)"
    )
    ablate.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes of the local Dask cluster: trainings at once (default: %(default)s)",
    )
    ablate.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://HOST:8786) whose workers see the run directory at the "
        "same path; default: $TUMORNB_SCHEDULER, else a local cluster of --jobs workers",
    )
    ablate.add_argument("--progress", action="store_true", help="a progress bar over the trainings")
    ablate.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")

    sweep = commands.add_parser(
        "sweep",
        help="run chapters once per point of a parameter grid, each point its own run directory",
        description="Run the chapters once per point of a parameter grid (-p key=[v1,v2] per axis), "
        "as Dask tasks, each point in SWEEP_DIR/<key=value__...>; finished points are skipped. "
        "Prints and writes SWEEP_DIR/summary.csv: each point's headline metrics.",
    )
    sweep.add_argument("--sweep-dir", default="runs/sweep", help="where the points go (default: %(default)s)")
    sweep.add_argument("--profile", choices=list(PROFILES), default="default", help="(default: %(default)s)")
    sweep.add_argument("--data-dir", help="folder-per-class dataset; default: embedded phantom data")
    sweep.add_argument("--only", help="comma-separated chapters to run at each point, e.g. 03,04")
    sweep.add_argument(
        "--base-run", help="a finished run each point starts from a copy of (needed when --only skips 01)"
    )
    sweep.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=[V1,V2]",
        help="one axis of the grid (repeatable); a single value is an axis of one",
    )
    sweep.add_argument("--jobs", type=int, default=1, help="local Dask workers (default: %(default)s)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (see ablate)")
    sweep.add_argument("--progress", action="store_true", help="a progress bar over the points")

    book = commands.add_parser("book", help="render a run's executed notebooks as an HTML book")
    book.add_argument("--run-dir", default="runs/default", help="the run to render (default: %(default)s)")
    book.add_argument("--out", help="the HTML goes to OUT/_build/html (default: the run directory)")

    predict = commands.add_parser(
        "predict",
        help="classify image files with a trained model",
        description="Classify image files with a model trained by chapter 03. Files that cannot be "
        "read get one error line each on stderr; the exit status is 1 when any failed.",
    )
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders")
    predict.add_argument(
        "--model",
        required=True,
        action="append",
        help="model.keras (train.json beside it), or its folder; repeat it to average several models "
        "(e.g. the ablation's seeds: ablation/real/seed*)",
    )
    predict.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    predict.add_argument("--cam", metavar="OUT_DIR", help="write a Grad-CAM overlay per image into OUT_DIR")
    predict.add_argument("--batch-size", type=int, default=64, help="images per batch (default: %(default)s)")
    predict.add_argument(
        "--flip-tta",
        action="store_true",
        help="test-time augmentation: average each image's probabilities with its left-right mirror's",
    )

    phantom = commands.add_parser(
        "phantom", help="write the synthetic brain-MRI dataset in the Kaggle layout"
    )
    phantom.add_argument("out_dir", help="an empty or new folder")
    phantom.add_argument("--train-per-class", type=int, default=300)
    phantom.add_argument("--test-per-class", type=int, default=75)
    phantom.add_argument("--seed", type=int, default=0)

    audit = commands.add_parser("audit", help="write the manifest of a dataset and print its audit")
    audit.add_argument("data_dir")
    audit.add_argument(
        "--run-dir", default="runs/audit", help="where manifest.csv goes (default: %(default)s)"
    )
    audit.add_argument("--image-size", type=int, default=128)
    return parser


def _run(args: argparse.Namespace) -> None:
    from tumornb.runner import run_chapters

    overrides = dict(parse_override(item) for item in args.param)
    if args.resplit:
        overrides["resplit"] = args.resplit
    if args.resplit_bits is not None:
        if not args.resplit:
            raise ValueError("--resplit-bits needs --resplit grouped")
        overrides["resplit_bits"] = args.resplit_bits
    only = args.only.split(",") if args.only else None
    run_chapters(
        args.run_dir,
        profile=args.profile,
        data_dir=args.data_dir,
        only=only,
        overrides=overrides,
        progress=not args.no_progress,
        ablate=args.ablate,
    )


def _ablate(args: argparse.Namespace) -> None:
    from tumornb.ablation import VARIANTS, run_ablation
    from tumornb.profiles import profile_parameters
    from tumornb.runner import check_overrides

    overrides = dict(parse_override(item) for item in args.param)
    check_overrides(overrides)
    parameters = profile_parameters(args.profile) | overrides
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else parameters["ablation_seeds"]
    variants = (
        args.variants.split(",") if args.variants else parameters.get("ablation_variants") or list(VARIANTS)
    )
    run_ablation(
        args.run_dir,
        seeds=seeds,
        variants=variants,
        parameters=parameters,
        jobs=args.jobs,
        scheduler=args.scheduler,
        progress=args.progress,
    )


def _sweep(args: argparse.Namespace) -> None:
    from tumornb.runner import check_overrides
    from tumornb.sweep import parse_grid, run_sweep

    grid = parse_grid(args.param)
    if not grid:
        raise ValueError("a sweep needs at least one axis: -p key=[value1,value2]")
    check_overrides(grid)
    _, summary = run_sweep(
        args.sweep_dir,
        grid,
        profile=args.profile,
        data_dir=args.data_dir,
        only=args.only.split(",") if args.only else None,
        base_run=args.base_run,
        jobs=args.jobs,
        scheduler=args.scheduler,
        progress=args.progress,
    )
    print(summary.to_string(index=False))


def _book(args: argparse.Namespace) -> None:
    from tumornb.book import build_book

    index = build_book(args.run_dir, out_dir=args.out)
    print(f"book written: {index}")


def _predict(args: argparse.Namespace) -> int:
    from tumornb.predict import find_images, load_ensemble

    if args.cam and len(args.model) > 1:
        raise ValueError("Grad-CAM explains one model: pass a single --model with --cam")
    predictor = load_ensemble(args.model)
    result = predictor.predict_files(find_images(args.inputs), batch_size=args.batch_size, flip=args.flip_tta)
    for row in result.errors.itertuples():
        print(f"tumornb predict: error: {row.path}: {row.error}", file=sys.stderr)
    table = result.table
    if args.json:
        for row in table.to_dict(orient="records"):
            probabilities = {name: round(float(row[f"p_{name}"]), 6) for name in predictor.class_names}
            print(
                json.dumps(
                    {"path": row["path"], "predicted": row["predicted"], "probabilities": probabilities}
                )
            )
    elif len(table):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.cam and len(table):
        from tumornb.explain import write_overlays

        written = write_overlays(predictor.model, result.images, table["path"], args.cam)
        print(f"wrote {len(written)} Grad-CAM overlays to {args.cam}", file=sys.stderr)
    return 1 if len(result.errors) else 0


def _phantom(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from tumornb.phantom import write_phantom_dataset

    info = write_phantom_dataset(
        args.out_dir,
        n_train_per_class=args.train_per_class,
        n_test_per_class=args.test_per_class,
        seed=args.seed,
        progress=tqdm,
    )
    total = sum(sum(c.values()) for c in info["counts"].values())
    print(f"wrote {total} phantom images to {args.out_dir} (seed {args.seed})")


def _audit(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from tumornb.audit import audit_dataset, format_audit

    summary = audit_dataset(args.data_dir, args.run_dir, image_size=args.image_size, progress=tqdm)
    print(format_audit(summary))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tumornb`` console script; returns the exit status."""
    from tumornb.data import DatasetError
    from tumornb.execute import ExecutionFailed

    args = _build_parser().parse_args(argv)
    # TensorFlow's C++ start-up notices would mix with the command's own output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    handlers = {
        "run": _run,
        "ablate": _ablate,
        "sweep": _sweep,
        "book": _book,
        "predict": _predict,
        "phantom": _phantom,
        "audit": _audit,
    }
    try:
        status = handlers[args.command](args)
    except (
        DatasetError,
        ExecutionFailed,
        FileNotFoundError,
        FileExistsError,
        ValueError,
        RuntimeError,
    ) as exc:
        print(f"tumornb {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tumornb {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
