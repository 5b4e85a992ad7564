"""Wall time of a smoke-sized ablation on one Dask worker and on two, side by side in one run.

Run by hand, not in CI::

    python benchmarks/bench_sweep.py                       # makes a smoke run first (about 2 min)
    python benchmarks/bench_sweep.py --run-dir runs/smoke  # after `tumornb run --profile smoke`

The same ablation (variants ``real`` and ``real+synthetic``, seeds 1-3: six
trainings, smoke profile) runs on a fresh copy of the run for each worker count,
through a local Dask cluster (``tumornb ablate --jobs N``). It prints the wall
times and the ratio. Each training starts its own kernel that uses every core
it is given, so on a 2-core machine the second worker adds overlap (kernel
start-up, data loading, writing) rather than a second core's worth of training.
The test split is never read: the ablation's executions train and select on the
training and validation splits only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def smoke_run(out: Path) -> Path:
    """Chapters 01-03 with the smoke profile on the phantom data (no ablation)."""
    from tumornb.runner import run_chapters

    run_chapters(out, profile="smoke", only=["01", "02", "03"], progress=False, ablate=False)
    return out


def timed_ablation(run_dir: Path, workers: int, seeds: list[int]) -> float:
    """Seconds for the ablation on a local cluster of ``workers`` processes, cluster start included."""
    from tumornb.ablation import run_ablation
    from tumornb.profiles import profile_parameters

    start = time.perf_counter()
    run_ablation(
        run_dir,
        seeds=seeds,
        variants=["real", "real+synthetic"],
        parameters=profile_parameters("smoke"),
        jobs=workers,
        log=lambda line: None,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", help="a smoke run after chapter 03 (default: make one in a temp folder)")
    parser.add_argument("--seeds", default="1,2,3", help="ablation seeds (default: %(default)s)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = Path(args.run_dir) if args.run_dir else smoke_run(tmp / "base")
        times = {}
        for workers in (1, 2):
            copy = tmp / f"workers{workers}"
            shutil.copytree(base, copy, ignore=shutil.ignore_patterns("ablation", "_build"))
            times[workers] = timed_ablation(copy, workers, seeds)
            print(f"{workers} worker(s): {2 * len(seeds)} trainings in {times[workers]:.1f} s", flush=True)
    print(f"cores: {os.cpu_count()}; speed-up with 2 workers: {times[1] / times[2]:.2f}x")


if __name__ == "__main__":
    main()
