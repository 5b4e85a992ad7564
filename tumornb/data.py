"""Find, read and audit a folder-per-class MRI dataset; cache its pixels.

Chapter 01 walks through this module. The pieces, in the order a run uses them:

* :func:`scan_dataset` finds the files of the two Kaggle layouts (``Training/``
  and ``Testing/`` with one folder per class, or one folder per class with no
  split) and maps class folder names to canonical labels;
* :func:`read_image` decodes one file of any common format and mode to grey
  levels, or says in a few words why it cannot;
* :func:`build_manifest` reads every file once, in parallel, and returns the
  manifest (one row per file: path, split, label, size, mode, error, hashes,
  duplicate group) together with the decoded images at the chosen size;
* :func:`load_images` returns those images for later chapters from a cache
  keyed by the manifest and the image size, decoding only when it must.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from tumornb.dedup import NEAR_DUPLICATE_BITS, duplicate_groups, phash
from tumornb.labels import SPLITS, canonical_label
from tumornb.paths import atomic_path

__all__ = [
    "MANIFEST_COLUMNS",
    "MIN_SIDE",
    "DatasetError",
    "UnreadableImage",
    "PATIENT_PROXY_BITS",
    "assign_split",
    "build_manifest",
    "grouped_holdout",
    "grouped_resplit",
    "load_image_file",
    "load_images",
    "preprocess",
    "preprocessing_spec",
    "read_image",
    "read_manifest",
    "scan_dataset",
    "write_manifest",
]

MANIFEST_COLUMNS = [
    "path",
    "split",
    "label",
    "class_folder",
    "width",
    "height",
    "mode",
    "format",
    "bytes",
    "error",
    "sha256",
    "phash",
    "dup_group",
    "dup_kind",
]

#: Smallest accepted image side in pixels; smaller files are reported, not used.
MIN_SIDE = 16

#: Images are hashed from a decode of at least this many pixels a side, so the
#: manifest's perceptual hashes do not depend on the chosen ``image_size``.
HASH_DECODE_SIDE = 128

_CACHE_VERSION = 1


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names the path and the fix."""


class UnreadableImage(ValueError):
    """One file that is not a usable image; the message is the reason."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded file: grey levels plus what the header said."""

    gray: np.ndarray
    width: int
    height: int
    mode: str
    format: str


def _find_folders(root: Path, names: Iterable[str]) -> list[Path]:
    wanted = {n.lower() for n in names}
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() in wanted)


def _class_folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_dataset(data_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """List the files of a folder-per-class dataset.

    Parameters
    ----------
    data_dir : path-like
        Either a folder with ``Training/`` and ``Testing/`` (any capitalisation,
        also ``train``/``test``), each holding one folder per class, or a folder
        holding one folder per class directly (no split yet).

    Returns
    -------
    DataFrame
        Columns ``path`` (absolute), ``split`` (``"train"``, ``"test"`` or ``""``
        when the dataset has no split), ``label`` (canonical), ``class_folder``
        (its name) and ``class_dir`` (its path); one row per non-hidden file.

    Raises
    ------
    DatasetError
        If the folder is missing, holds no class folders, or a split folder
        holds no class folders.
    """
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise DatasetError(
            f"data directory not found: {root} (pass the folder that holds Training/ and Testing/)"
        )
    if not root.is_dir():
        raise DatasetError(f"data directory is a file, not a folder: {root}")
    root = root.resolve()

    split_folders = {split: _find_folders(root, names) for split, names in SPLITS.items()}
    if any(split_folders.values()):
        sources = [(split, folder) for split, folders in split_folders.items() for folder in folders]
    else:
        sources = [("", root)]

    rows = []
    for split, parent in sources:
        classes = _class_folders(parent)
        if not classes:
            raise DatasetError(
                f"no class folders in {parent}: expected one sub-folder per class "
                "(e.g. glioma/, meningioma/, notumor/, pituitary/)"
            )
        for folder in classes:
            label = canonical_label(folder.name)
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    rows.append((str(path), split, label, folder.name, str(folder)))
    return pd.DataFrame(rows, columns=["path", "split", "label", "class_folder", "class_dir"])


def read_image(data: bytes, *, min_side: int | None = None) -> DecodedImage:
    """Decode one image file to grey levels.

    Reads JPEG, PNG (8- and 16-bit, palette, with alpha), BMP, TIFF and the other
    formats OpenCV decodes; colour is converted to luminance, 16-bit to 8-bit.

    Parameters
    ----------
    data : bytes
        The file's contents.
    min_side : int, optional
        When given, a large JPEG may be decoded at a reduced scale whose shorter
        side is still at least ``min_side`` pixels (``width`` and ``height``
        always report the stored size).

    Returns
    -------
    DecodedImage
        ``gray`` is a uint8 array of shape (height, width); ``mode`` and
        ``format`` are as Pillow names them (e.g. ``"L"``, ``"RGB"``, ``"P"``,
        ``"I;16"``; ``"JPEG"``, ``"PNG"``).

    Raises
    ------
    UnreadableImage
        With a short reason: empty file, not an image, truncated, undecodable
        or smaller than :data:`MIN_SIDE` pixels.
    """
    if not data:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as header:  # reads the header only
            width, height, mode, fmt = *header.size, header.mode, header.format or ""
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UnreadableImage(f"not an image file ({type(exc).__name__})") from None
    if fmt == "JPEG" and b"\xff\xd9" not in data[-4096:]:
        raise UnreadableImage("truncated JPEG (no end-of-image marker)")
    if min(width, height) < MIN_SIDE:
        raise UnreadableImage(f"image too small ({width}x{height} px; need at least {MIN_SIDE} px a side)")
    flag = cv2.IMREAD_GRAYSCALE
    if fmt == "JPEG" and min_side:
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale in the DCT domain, far faster than
        # decoding in full and resizing; keep at least ``min_side`` pixels a side.
        for factor, reduced in (
            (8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
            (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
            (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
        ):
            if min(width, height) // factor >= min_side:
                flag = reduced
                break
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if gray is None or gray.size == 0:
        raise UnreadableImage(f"{fmt or 'image'} data could not be decoded (corrupt or truncated)")
    return DecodedImage(gray, width, height, mode, fmt)


def to_square(gray: np.ndarray, image_size: int) -> np.ndarray:
    """Pad ``gray`` to a square with black borders, then resize to ``image_size``.

    Padding instead of stretching keeps the head's proportions; MRI background
    is black, so the borders add no signal.
    """
    height, width = gray.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = cv2.copyMakeBorder(
        gray, top, side - height - top, left, side - width - left, cv2.BORDER_CONSTANT, value=0
    )
    interpolation = cv2.INTER_AREA if side > image_size else cv2.INTER_LINEAR
    return cv2.resize(square, (image_size, image_size), interpolation=interpolation)


def preprocess(image: DecodedImage, image_size: int) -> np.ndarray:
    """The model's input from a decoded file: square, ``image_size`` a side, uint8 grey.

    The one preprocessing used for the cache, training and prediction alike.

    Parameters
    ----------
    image : DecodedImage
        A decoded file (:func:`decode_image`).
    image_size : int

    Returns
    -------
    ndarray of shape (image_size, image_size), uint8
    """
    return to_square(image.gray, image_size)


#: Bump when :func:`preprocess` changes, so a model trained under the old one is refused.
PREPROCESSING_VERSION = 1


def preprocessing_spec(image_size: int) -> dict:
    """What :func:`preprocess` does, as stored with every trained model.

    ``tumornb predict`` compares a model's stored spec with this one and refuses
    to run when they differ, so prediction cannot silently disagree with training.

    Parameters
    ----------
    image_size : int

    Returns
    -------
    dict
        Stored in ``train.json``; :func:`tumornb.predict.load_predictor` compares it.
    """
    return {
        "version": PREPROCESSING_VERSION,
        "image_size": int(image_size),
        "grey": True,
        "letterbox": True,
        "scale": "0-255",
    }


def decode_side(image_size: int) -> int:
    """Smallest side to decode at: enough for ``image_size`` and for a stable pHash."""
    return max(image_size, HASH_DECODE_SIDE)


def load_image_file(path: str | os.PathLike[str], image_size: int) -> np.ndarray:
    """Read and preprocess one file exactly as the cache does.

    Parameters
    ----------
    path : path-like
    image_size : int
        Side of the square result.

    Returns
    -------
    ndarray of shape (image_size, image_size), uint8

    Raises
    ------
    UnreadableImage
        With the reason, when the file is not a usable image.
    """
    return preprocess(read_image(_read_bytes(path), min_side=decode_side(image_size)), image_size)


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableImage(f"cannot read file ({exc.strerror or type(exc).__name__})") from None


def _audit_file(path: str, image_size: int) -> tuple[dict, np.ndarray | None]:
    """Read one file once: hashes, header facts and the resized pixels."""
    record = dict(width=0, height=0, mode="", format="", bytes=0, error="", sha256="", phash="")
    try:
        data = _read_bytes(path)
        record["bytes"] = len(data)
        record["sha256"] = hashlib.sha256(data).hexdigest()
        image = read_image(data, min_side=decode_side(image_size))
    except UnreadableImage as exc:
        record["error"] = str(exc)
        return record, None
    record.update(width=image.width, height=image.height, mode=image.mode, format=image.format)
    record["phash"] = phash(image.gray)
    return record, preprocess(image, image_size)


def grouped_holdout(labels, groups, *, fraction: float, seed: int = 0) -> np.ndarray:
    """Pick a stratified, seeded share of rows, never splitting a group.

    Parameters
    ----------
    labels : sequence of str, length n
        Class of each row; class proportions are kept on both sides.
    groups : sequence of int, length n
        Duplicate group of each row (``-1``: no duplicate). Rows of one group
        land on the same side, so a copy on one side never leaks to the other.
    fraction : float
        Share of rows to hold out, in (0, 0.5].
    seed : int, default=0

    Returns
    -------
    ndarray of bool, length n
        True for the held-out rows.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 < fraction <= 0.5:
        raise ValueError(f"the held-out fraction must be in (0, 0.5], got {fraction}")
    labels = np.asarray(labels)
    groups = np.asarray(groups).copy()
    singles = groups < 0
    groups[singles] = groups.max(initial=0) + 1 + np.arange(singles.sum())
    folds = StratifiedGroupKFold(n_splits=max(2, round(1 / fraction)), shuffle=True, random_state=seed)
    _, held_out = next(folds.split(np.zeros(len(labels)), labels, groups))
    mask = np.zeros(len(labels), dtype=bool)
    mask[held_out] = True
    return mask


def assign_split(manifest: pd.DataFrame, *, test_fraction: float = 0.2, seed: int = 0) -> pd.Series:
    """A stratified, seeded, duplicate-aware train/test split (see :func:`grouped_holdout`).

    Parameters
    ----------
    manifest : DataFrame
        With columns ``label`` and ``dup_group``.
    test_fraction : float, default=0.2
        Share of images for the test split, in (0, 0.5].
    seed : int, default=0

    Returns
    -------
    Series of str
        ``"train"`` or ``"test"`` for each row.
    """
    if not 0 < test_fraction <= 0.5:
        raise ValueError(f"test_fraction must be in (0, 0.5], got {test_fraction}")
    held_out = grouped_holdout(manifest["label"], manifest["dup_group"], fraction=test_fraction, seed=seed)
    return pd.Series(np.where(held_out, "test", "train"), index=manifest.index)


#: pHash bits within which two scans are taken for the same patient by :func:`grouped_resplit`.
#: Neighbouring slices of one patient sit at about 4 bits (:mod:`tumornb.dedup`); on the Sartaj
#: download, groups at 4 bits hold at most 10 images, while at 8 bits they chain into one of 848.
PATIENT_PROXY_BITS = 4


def grouped_resplit(
    manifest: pd.DataFrame,
    *,
    bits: int = PATIENT_PROXY_BITS,
    test_fraction: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Pool a download's splits and draw a new one that keeps every patient-proxy group on one side.

    Kaggle downloads do not say which scans come from one patient, and their own
    splits put copies and neighbouring slices of one scan on both sides. Here
    images whose perceptual hashes differ in at most ``bits`` bits are joined
    into groups (connected components, as :func:`tumornb.dedup.duplicate_groups`),
    and a stratified group split (:func:`grouped_holdout`) assigns whole groups.

    Parameters
    ----------
    manifest : DataFrame
        Chapter 01's manifest (``split``, ``label``, ``error``, ``sha256``, ``phash``).
    bits : int, default=PATIENT_PROXY_BITS
    test_fraction : float, optional
        The test share; default: the download's own.
    seed : int, default=0

    Returns
    -------
    DataFrame
        A copy with the new ``split``, the download's as ``original_split``, and
        ``split_group`` (the patient-proxy group, ``-1`` for an image alone),
        which every later split of the training images (validation) also keeps
        together. Unreadable rows keep their split.
    """
    usable = (manifest["error"] == "").to_numpy()
    if test_fraction is None:
        test_fraction = float((manifest.loc[usable, "split"] == "test").mean())
    groups, _ = duplicate_groups(
        manifest["sha256"].where(usable, ""), manifest["phash"].where(usable, ""), max_bits=bits
    )
    held_out = grouped_holdout(
        manifest.loc[usable, "label"], groups[usable], fraction=test_fraction, seed=seed
    )
    out = manifest.copy()
    out["original_split"] = manifest["split"]
    out["split_group"] = groups
    out.loc[usable, "split"] = np.where(held_out, "test", "train")
    return out


def build_manifest(
    data_dir: str | os.PathLike[str],
    *,
    image_size: int = 128,
    seed: int = 0,
    test_fraction: float = 0.2,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    n_jobs: int | None = None,
    progress: Callable | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read every file of a dataset once and describe it.

    Parameters
    ----------
    data_dir : path-like
        See :func:`scan_dataset`.
    image_size : int, default=128
        Side of the square grey-level images returned.
    seed, test_fraction : int, float
        Used only when the dataset has no split of its own (:func:`assign_split`).
    near_duplicate_bits : int, default=NEAR_DUPLICATE_BITS
        pHash Hamming distance up to which two images are near duplicates.
    n_jobs : int, optional
        Reader threads; OpenCV and hashlib release the GIL. Default: CPU count.
    progress : callable, optional
        Wrapper for an iterable, e.g. ``tqdm.tqdm``.

    Returns
    -------
    manifest : DataFrame
        One row per file found, columns :data:`MANIFEST_COLUMNS`; ``error`` is
        empty for a usable image and otherwise says why the file was skipped.
        ``manifest.attrs["split_made"]`` is True when the dataset had no split
        and :func:`assign_split` made one.
    images : ndarray of shape (n_readable, image_size, image_size), uint8
        The usable images, in manifest order (rows whose ``error`` is empty).

    Raises
    ------
    DatasetError
        See :func:`scan_dataset`; also when a class folder holds no readable image.
    """
    if image_size < MIN_SIDE:
        raise ValueError(f"image_size must be at least {MIN_SIDE} pixels, got {image_size}")
    files = scan_dataset(data_dir)
    paths = files["path"].tolist()
    with ThreadPoolExecutor(n_jobs or os.cpu_count() or 1) as pool:
        results = pool.map(lambda p: _audit_file(p, image_size), paths)
        if progress is not None:
            results = progress(results, total=len(paths), desc="reading images", unit="img")
        records, pixels = zip(*results, strict=True) if paths else ((), ())

    manifest = pd.concat([files, pd.DataFrame(list(records), index=files.index)], axis=1)
    usable_per_folder = (manifest["error"] == "").groupby(manifest["class_dir"]).sum()
    empty_classes = usable_per_folder.index[usable_per_folder == 0].tolist()
    if empty_classes:
        raise DatasetError(
            f"class folder {empty_classes[0]} has no readable image"
            + (f" (and {len(empty_classes) - 1} more folders)" if len(empty_classes) > 1 else "")
            + "; add images or remove the folder"
        )
    manifest["dup_group"], manifest["dup_kind"] = duplicate_groups(
        manifest["sha256"], manifest["phash"], max_bits=near_duplicate_bits
    )
    split_made = bool((manifest["split"] == "").all())
    if split_made:
        manifest["split"] = assign_split(manifest, test_fraction=test_fraction, seed=seed)
    manifest = manifest[MANIFEST_COLUMNS].copy()
    manifest.attrs["split_made"] = split_made
    images = (
        np.stack([p for p in pixels if p is not None])
        if any(p is not None for p in pixels)
        else np.empty((0, image_size, image_size), np.uint8)
    )
    return manifest, images


def write_manifest(manifest: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``manifest`` as CSV, atomically (no half-written file on interruption).

    Parameters
    ----------
    manifest : DataFrame
    path : path-like

    Returns
    -------
    Path
    """
    with atomic_path(path) as tmp:
        manifest.to_csv(tmp, index=False)
    return Path(path)


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`, with its column types.

    Parameters
    ----------
    path : path-like
        A ``manifest.csv`` written by :func:`write_manifest`.

    Returns
    -------
    DataFrame
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no manifest at {path}: run chapter 01 (tumornb run --only 01_eda) first")
    text_columns = [
        "split",
        "label",
        "class_folder",
        "mode",
        "format",
        "error",
        "sha256",
        "phash",
        "dup_kind",
        "original_split",  # present after a grouped re-split
    ]
    manifest = pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)
    return manifest


def _cache_key(manifest: pd.DataFrame, image_size: int) -> str:
    usable = manifest[manifest["error"] == ""]
    digest = hashlib.sha256(f"v{_CACHE_VERSION}|{image_size}|".encode())
    for path, sha in zip(usable["path"], usable["sha256"], strict=True):
        digest.update(f"{path}|{sha}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(manifest: pd.DataFrame, image_size: int, cache_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`load_images` keeps the arrays for this manifest and size."""
    return Path(cache_dir) / f"images-{image_size}px-{_cache_key(manifest, image_size)}.npy"


def save_images(
    images: np.ndarray, manifest: pd.DataFrame, image_size: int, cache_dir: str | os.PathLike[str]
) -> Path:
    """Store decoded images in the cache, atomically."""
    target = cache_path(manifest, image_size, cache_dir)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.save(handle, images)
    return target


def load_images(
    manifest: pd.DataFrame,
    image_size: int,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    n_jobs: int | None = None,
    progress: Callable | None = None,
) -> np.ndarray:
    """Grey-level images of the manifest's usable rows, from the cache when possible.

    Parameters
    ----------
    manifest : DataFrame
        As returned by :func:`build_manifest` or :func:`read_manifest`.
    image_size : int
        Side of the square images.
    cache_dir : path-like, optional
        Cache folder (``RunDir.cache_dir``); without it every call decodes.
    n_jobs, progress
        As in :func:`build_manifest`.

    Returns
    -------
    ndarray of shape (n_usable, image_size, image_size), uint8
        In the order of ``manifest[manifest.error == ""]``.
    """
    if cache_dir is not None:
        cached = cache_path(manifest, image_size, cache_dir)
        if cached.exists():
            return np.load(cached, mmap_mode=None)
    paths = manifest.loc[manifest["error"] == "", "path"].tolist()
    with ThreadPoolExecutor(n_jobs or os.cpu_count() or 1) as pool:
        results = pool.map(lambda path: load_image_file(path, image_size), paths)
        if progress is not None:
            results = progress(results, total=len(paths), desc="decoding images", unit="img")
        arrays = list(results)
    images = np.stack(arrays) if arrays else np.empty((0, image_size, image_size), np.uint8)
    if cache_dir is not None:
        save_images(images, manifest, image_size, cache_dir)
    return images
