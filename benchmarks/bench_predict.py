"""Prediction speed on the CPU: one image at a time, in batches, and ``tumornb predict`` on a folder.

Run by hand, not in CI::

    python benchmarks/bench_predict.py --model runs/default/models/real+synthetic
    python benchmarks/bench_predict.py                 # an untrained tumornb_cnn (same speed)

Every figure is measured side by side in one run, with the model loaded once:

* single-image latency (batch 1, after warm-up; median and 95th percentile) of
  Keras's ``Model.predict``, a plain call ``model(x)``, and tumornb's
  :class:`~tumornb.predict.Predictor` (one traced graph), with the ratios;
* batched throughput of ``Predictor.predict_proba`` at several batch sizes;
* the wall time of the ``tumornb predict`` command on a folder of 1,000
  phantom images (a fresh process: start-up, model loading, reading, predicting).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def latencies(function, image: np.ndarray, *, repeats: int, warmup: int = 5) -> np.ndarray:
    """Milliseconds per call of ``function(image)``, after ``warmup`` calls."""
    for _ in range(warmup):
        function(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(image)
        times.append(1000 * (time.perf_counter() - start))
    return np.array(times)


def untrained_model_dir(out: Path, image_size: int) -> Path:
    """A freshly initialised tumornb_cnn with a train.json, as chapter 03 would write it."""
    from tumornb.data import preprocessing_spec
    from tumornb.labels import CLASS_NAMES
    from tumornb.models import build_model

    out.mkdir(parents=True, exist_ok=True)
    build_model("tumornb_cnn", image_size, len(CLASS_NAMES)).save(out / "model.keras")
    info = {"class_names": list(CLASS_NAMES), "preprocessing": preprocessing_spec(image_size)}
    (out / "train.json").write_text(json.dumps(info))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="a model.keras or its folder (default: untrained tumornb_cnn)"
    )
    parser.add_argument("--image-size", type=int, default=128, help="for the untrained model")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--folder-images", type=int, default=1000)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tumornb.phantom import write_phantom_dataset
    from tumornb.predict import load_predictor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_path = args.model or untrained_model_dir(tmp / "model", args.image_size)
        predictor = load_predictor(model_path)
        side = predictor.image_size
        print(f"model {model_path} ({predictor.model.name}, {side} px); {os.cpu_count()} CPU cores")

        image = np.random.default_rng(0).integers(0, 256, (1, side, side), dtype=np.uint8)
        batch = image[..., None].astype(np.float32)
        model = predictor.model
        ways = {
            "Model.predict(x)": lambda x: model.predict(batch, verbose=0),
            "model(x) (eager)": lambda x: model(batch, training=False).numpy(),
            "Predictor.predict_proba": predictor.predict_proba,
        }
        print(f"\nsingle image, batch 1, {args.repeats} calls after warm-up:")
        medians = {}
        for name, function in ways.items():
            ms = latencies(function, image, repeats=args.repeats)
            medians[name] = np.median(ms)
            print(f"  {name:26s} median {np.median(ms):6.2f} ms   p95 {np.percentile(ms, 95):6.2f} ms")
        ours = medians["Predictor.predict_proba"]
        for name in list(ways)[:2]:
            print(f"  Predictor is {medians[name] / ours:.1f}x faster than {name}")

        print("\nbatched throughput (Predictor.predict_proba):")
        many = np.random.default_rng(1).integers(0, 256, (512, side, side), dtype=np.uint8)
        for size in (1, 8, 32, 64, 128):
            predictor.predict_proba(many[:size], batch_size=size)
            start = time.perf_counter()
            predictor.predict_proba(many, batch_size=size)
            print(f"  batch {size:4d}: {len(many) / (time.perf_counter() - start):7.0f} images/s")

        per_class = -(-args.folder_images // 4)
        folder = tmp / "phantom"
        write_phantom_dataset(folder, n_train_per_class=per_class, n_test_per_class=0, duplicate_fraction=0.0)
        scans = folder / "Training"
        n_files = sum(1 for p in scans.rglob("*") if p.is_file())
        command = [sys.executable, "-m", "tumornb.cli", "predict", str(scans), "--model", str(model_path)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        rows = len(done.stdout.splitlines()) - 1
        print(
            f"\n`tumornb predict` on a folder of {n_files} images: {wall:.1f} s wall "
            f"({rows} rows, exit {done.returncode})"
        )


if __name__ == "__main__":
    main()
