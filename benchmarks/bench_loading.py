"""Image loading: tumornb's manifest pass and cache against a plain per-file cv2.imread loop.

Run by hand, not in CI::

    python benchmarks/bench_loading.py                       # real data if present, else phantom
    python benchmarks/bench_loading.py --data-dir PATH --image-size 128

Every figure is measured side by side in one run, on the same files, with the
page cache warm for all of them; it prints images/s and the ratio to the loop.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from tumornb.data import build_manifest, load_images, scan_dataset
from tumornb.phantom import write_phantom_dataset

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kaggle-sartaj-brain-mri"


def plain_loop(paths: list[str], image_size: int) -> None:
    """What a typical public notebook does: per-file imread, grey, resize."""
    for path in paths:
        image = cv2.imread(path)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        cv2.resize(gray, (image_size, image_size))


def best_of(repeats: int, function, *args) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or (REAL_DATA if REAL_DATA.is_dir() else None)
        if data_dir is None:
            data_dir = Path(tmp) / "phantom"
            write_phantom_dataset(data_dir)
        paths = scan_dataset(data_dir)["path"].tolist()
        for path in paths:  # warm the page cache for every contestant alike
            Path(path).read_bytes()
        n = len(paths)
        print(f"data: {data_dir} ({n} files), image size {args.image_size}, best of {args.repeats}")

        loop = best_of(args.repeats, plain_loop, paths, args.image_size)
        manifest_pass = best_of(args.repeats, lambda: build_manifest(data_dir, image_size=args.image_size))
        manifest, _ = build_manifest(data_dir, image_size=args.image_size)
        cache = Path(tmp) / "cache"
        decode = best_of(1, lambda: load_images(manifest, args.image_size, cache_dir=cache))
        cached = best_of(args.repeats, lambda: load_images(manifest, args.image_size, cache_dir=cache))

    rows = [
        ("plain cv2.imread loop (decode only)", loop),
        ("tumornb build_manifest (decode + SHA-256 + pHash)", manifest_pass),
        ("tumornb load_images, cold (decode, write cache)", decode),
        ("tumornb load_images, cached", cached),
    ]
    print(f"{'':52s} {'images/s':>10s} {'vs loop':>8s}")
    for name, seconds in rows:
        print(f"{name:52s} {n / seconds:10.0f} {loop / seconds:7.2f}x")


if __name__ == "__main__":
    main()
