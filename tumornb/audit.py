"""Chapter 01's audit of a dataset, as functions the notebook and the CLI share.

:func:`resolve_data_dir` picks the dataset (the user's folder, or the embedded
phantom written into the run directory); :func:`audit_dataset` reads it once,
writes ``manifest.csv``, the image cache and ``eda_summary.json`` into the run
directory, and returns the summary that :func:`format_audit` prints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tumornb.data import PATIENT_PROXY_BITS, build_manifest, grouped_resplit, save_images, write_manifest
from tumornb.dedup import NEAR_DUPLICATE_BITS, leakage
from tumornb.paths import RunDir, atomic_path
from tumornb.phantom import write_phantom_dataset

__all__ = ["audit_dataset", "embed_2d", "format_audit", "resolve_data_dir"]


def resolve_data_dir(
    data_dir: str | os.PathLike[str] | None,
    run_dir: str | os.PathLike[str],
    *,
    phantom_train_per_class: int = 300,
    phantom_test_per_class: int = 75,
    phantom_size_range: tuple[int, int] | list[int] = (160, 288),
    seed: int = 0,
    progress: Callable | None = None,
) -> Path:
    """The dataset to use: ``data_dir`` when given, else the embedded phantom data.

    The phantom is written to ``RUN_DIR/data`` on first use and reused after.

    Parameters
    ----------
    data_dir : path-like or None
        The user's folder-per-class dataset; None for the phantom.
    run_dir : path-like
        The run directory (the phantom goes to its ``data/``).
    phantom_train_per_class, phantom_test_per_class : int
        Phantom images per class and split.
    phantom_size_range : (int, int)
        Smallest and largest side of the phantom's stored images, in pixels.
    seed : int, default=0
    progress : callable, optional
        A ``tqdm``-like wrapper for the phantom writer's progress.
    """
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    target = RunDir(run_dir).phantom_dir
    write_phantom_dataset(
        target,
        n_train_per_class=phantom_train_per_class,
        n_test_per_class=phantom_test_per_class,
        size_range=tuple(phantom_size_range),
        seed=seed,
        progress=progress,
    )
    return target


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def summarise(
    manifest: pd.DataFrame,
    *,
    data_dir: Path,
    split_source: str,
    image_size: int,
    seed: int,
    near_duplicate_bits: int,
) -> dict[str, Any]:
    """The audit's numbers, as a JSON-ready dictionary."""
    usable = manifest[manifest["error"] == ""]
    leaks = leakage(manifest)
    unreadable = manifest.loc[manifest["error"] != "", ["path", "error"]]
    summary = {
        "data_dir": str(data_dir),
        "split_source": split_source,
        "image_size": image_size,
        "seed": seed,
        "near_duplicate_bits": near_duplicate_bits,
        "n_files": len(manifest),
        "n_usable": len(usable),
        "n_unreadable": len(unreadable),
        "unreadable": unreadable.to_dict("records"),
        "counts": usable.groupby(["split", "label"]).size().unstack(fill_value=0).to_dict("index"),
        "modes": usable["mode"].value_counts().to_dict(),
        "formats": usable["format"].value_counts().to_dict(),
        "n_sizes": int(usable.groupby(["width", "height"]).ngroups),
        "n_duplicate_groups": int(manifest["dup_group"].max() + 1) if len(manifest) else 0,
        "n_in_duplicate_groups": int((manifest["dup_group"] >= 0).sum()),
        "n_exact_copies": int((manifest["dup_kind"] == "exact").sum()),
        "n_near_only": int((manifest["dup_kind"] == "near").sum()),
        "n_leaking_groups": len(leaks),
        "n_test_leaked": int(leaks["n_test"].sum()) if len(leaks) else 0,
        "n_test": int((usable["split"] == "test").sum()),
        "n_label_conflicts": int(leaks["labels"].str.contains("/").sum()) if len(leaks) else 0,
    }
    return _json_safe(summary)


def audit_dataset(
    data_dir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    image_size: int = 128,
    seed: int = 0,
    test_fraction: float = 0.2,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    resplit: str | None = None,
    resplit_bits: int = PATIENT_PROXY_BITS,
    progress: Callable | None = None,
) -> dict[str, Any]:
    """Audit a dataset and write the run directory's chapter-01 artifacts.

    Writes ``manifest.csv``, ``eda_summary.json`` and the decoded images at
    ``image_size`` in ``cache/``, each atomically.

    ``resplit="grouped"`` replaces the download's split by a grouped re-split
    (:func:`tumornb.data.grouped_resplit` at ``resplit_bits``), drawn with ``seed``.

    Parameters
    ----------
    data_dir : path-like
        A folder-per-class dataset (Kaggle layouts), never written to.
    run_dir : path-like
        Where ``manifest.csv``, ``eda_summary.json`` and the image cache go.
    image_size : int, default=128
        Side of the cached square images.
    seed : int, default=0
        For the split of a dataset without one, and the grouped re-split.
    test_fraction : float, default=0.2
        Test share when the dataset has no split of its own.
    near_duplicate_bits : int, default=2
        pHash bits two images may differ in and still be near copies.
    resplit : {None, "grouped"}
        Pool the download's splits and re-split by patient-proxy groups.
    resplit_bits : int, default=4
        pHash bits within which two scans count as one patient (grouped re-split only).
    progress : callable, optional
        A ``tqdm``-like class for the per-file progress bar.

    Returns
    -------
    dict
        The summary also written to ``eda_summary.json``.
    """
    run = RunDir(run_dir)
    data_dir = Path(data_dir).expanduser()
    manifest, images = build_manifest(
        data_dir,
        image_size=image_size,
        seed=seed,
        test_fraction=test_fraction,
        near_duplicate_bits=near_duplicate_bits,
        progress=progress,
    )
    split_source = "folders" if not manifest.attrs.get("split_made") else "made"
    if resplit not in (None, "grouped"):
        raise ValueError(f"resplit must be None or 'grouped', got {resplit!r}")
    if resplit == "grouped":
        manifest = grouped_resplit(manifest, bits=resplit_bits, seed=seed)
        split_source = f"grouped re-split at {resplit_bits} pHash bits"
    save_images(images, manifest, image_size, run.cache_dir)
    write_manifest(manifest, run.manifest)
    summary = summarise(
        manifest,
        data_dir=data_dir.resolve(),
        split_source=split_source,
        image_size=image_size,
        seed=seed,
        near_duplicate_bits=near_duplicate_bits,
    )
    if resplit == "grouped":
        summary["resplit"] = resplit_summary(manifest, resplit_bits)
    with atomic_path(run.eda_summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def resplit_summary(manifest: pd.DataFrame, bits: int) -> dict[str, Any]:
    """What a grouped re-split did: its groups, and how many images changed side."""
    usable = manifest[manifest["error"] == ""]
    sizes = usable.loc[usable["split_group"] >= 0, "split_group"].value_counts()
    moved = pd.crosstab(usable["original_split"], usable["split"])
    groups_both = usable[usable["split_group"] >= 0].groupby("split_group")["split"].nunique()
    return {
        "bits": bits,
        "n_groups": int(len(sizes)),
        "n_in_groups": int(sizes.sum()),
        "largest_group": int(sizes.max()) if len(sizes) else 1,
        "groups_on_both_sides": int((groups_both > 1).sum()),
        "moved": {f"{a} -> {b}": int(moved.loc[a, b]) for a in moved.index for b in moved.columns},
    }


def format_audit(summary: dict[str, Any]) -> str:
    """A short plain-text report of :func:`audit_dataset`'s summary.

    Parameters
    ----------
    summary : dict
        :func:`audit_dataset`'s result.

    Returns
    -------
    str
    """
    counts = pd.DataFrame(summary["counts"]).T
    lines = [
        f"dataset: {summary['data_dir']} (split from {summary['split_source']})",
        f"files: {summary['n_files']}, usable: {summary['n_usable']}, unreadable: {summary['n_unreadable']}",
        counts.to_string(),
        f"duplicate groups: {summary['n_duplicate_groups']} "
        f"holding {summary['n_in_duplicate_groups']} images "
        f"({summary['n_exact_copies']} with a byte-identical copy)",
        f"leakage: {summary['n_leaking_groups']} groups cross train/test; "
        f"{summary['n_test_leaked']} of {summary['n_test']} test images have a duplicate in training",
    ]
    lines += [f"  unreadable: {row['path']}: {row['error']}" for row in summary["unreadable"][:20]]
    return "\n".join(lines)


def embed_2d(
    images: np.ndarray, *, seed: int = 0, max_images: int | None = 2000, method: str = "tsne"
) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D map of images: PCA to 50 dimensions, then t-SNE (or PCA alone).

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width)
    seed : int, default=0
        Seeds the subsample and t-SNE.
    max_images : int or None, default=2000
        Embed a seeded random subsample of at most this many images.
    method : {"tsne", "pca"}

    Returns
    -------
    coords : ndarray of shape (n_embedded, 2)
    index : ndarray of shape (n_embedded,)
        Row numbers into ``images`` of the embedded images.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in ("tsne", "pca"):
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    index = np.arange(len(images))
    if max_images is not None and len(images) > max_images:
        index = np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))
    features = images[index].reshape(len(index), -1).astype(np.float32) / 255.0
    n_components = min(50, *features.shape)
    reduced = PCA(n_components=n_components, random_state=seed).fit_transform(features)
    if method == "pca":
        return reduced[:, :2], index
    perplexity = min(30.0, max(5.0, (len(index) - 1) / 3))
    coords = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return coords, index
