"""Exact and near-duplicate images: perceptual hashes, duplicate groups, leakage.

Public MRI datasets contain the same scan more than once -- byte-identical
copies, re-saved or resized copies, and copies across the train/test split,
which inflate test scores. Chapter 01 explains the method; in short:

* an **exact** duplicate has the same SHA-256 of its file bytes;
* a **near** duplicate has a perceptual hash (pHash: the signs of the
  low-frequency DCT coefficients of a 32x32 thumbnail) within a small Hamming
  distance of another image's;
* a **duplicate group** is a connected component of those pairs;
* **leakage** is a group with members in both the train and the test split.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

__all__ = [
    "NEAR_DUPLICATE_BITS",
    "duplicate_groups",
    "hamming_pairs",
    "leakage",
    "leakage_examples",
    "nearest_distances",
    "pairs_between",
    "phash",
]

#: Largest pHash Hamming distance (of 64 bits) that counts as a near duplicate.
#: Measured on the Kaggle (Sartaj) dataset: pairs at distance 2 are the same scan
#: re-saved or resized; at distance 4 they are already neighbouring slices of one
#: patient with visibly different anatomy. Distances are even because every hash
#: has exactly 32 bits set (the median split), so 2 is the tightest useful value.
NEAR_DUPLICATE_BITS = 2


def phash(gray: np.ndarray) -> str:
    """Perceptual hash of a grey-level image, as 16 hexadecimal digits.

    Parameters
    ----------
    gray : ndarray of shape (height, width)
        Any size and integer or float dtype.

    Returns
    -------
    str
        64 bits: whether each of the 8x8 lowest DCT frequencies of a 32x32
        thumbnail is above their median. Resizing, re-compression and small
        intensity changes flip few bits.
    """
    thumb = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(thumb)[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term only measures overall brightness
    return f"{int(np.packbits(bits).view('>u8')[0]):016x}"


def hamming_pairs(hashes: list[str] | np.ndarray, max_bits: int, chunk: int = 1024) -> np.ndarray:
    """Index pairs ``(i, j)``, ``i < j``, whose hashes differ in at most ``max_bits`` bits.

    Parameters
    ----------
    hashes : sequence of str
        Hexadecimal 64-bit hashes, e.g. from :func:`phash`.
    max_bits : int
        Largest Hamming distance that counts as a pair.
    chunk : int, default=1024
        Rows compared at once; bounds memory to ``chunk * len(hashes)`` bytes.

    Returns
    -------
    ndarray of shape (n_pairs, 2)
    """
    codes = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs = []
    for start in range(0, len(codes), chunk):
        block = codes[start : start + chunk]
        distance = np.bitwise_count(block[:, None] ^ codes[None, :])
        i, j = np.nonzero(distance <= max_bits)
        i = i + start
        keep = i < j
        pairs.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def pairs_between(
    hashes: list[str] | np.ndarray, low: int, high: int, *, max_pairs: int = 6, seed: int = 0
) -> np.ndarray:
    """Up to ``max_pairs`` random index pairs whose hashes differ in ``low`` < bits <= ``high``.

    What a looser threshold adds to a tighter one: e.g. the pairs a patient-proxy
    grouping at 4 bits joins that the near-duplicate grouping at 2 bits does not.

    Parameters
    ----------
    hashes : sequence of str
        pHashes, one per image.
    low, high : int
        Pairs differing in more than ``low`` and at most ``high`` bits.
    max_pairs : int, default=6
    seed : int, default=0
        Which pairs are drawn.

    Returns
    -------
    ndarray of shape (n_pairs, 2)
    """
    codes = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    pairs = hamming_pairs(list(hashes), high)
    if len(pairs):
        distance = np.bitwise_count(codes[pairs[:, 0]] ^ codes[pairs[:, 1]])
        pairs = pairs[distance > low]
    rng = np.random.default_rng(seed)
    return pairs[np.sort(rng.permutation(len(pairs))[:max_pairs])]


def nearest_distances(
    hashes: list[str] | np.ndarray, reference: list[str] | np.ndarray, chunk: int = 1024
) -> np.ndarray:
    """For each hash, the smallest Hamming distance (bits) to any hash of ``reference``.

    Parameters
    ----------
    hashes, reference : sequence of str
        Hexadecimal 64-bit hashes (:func:`phash`).
    chunk : int, default=1024
        Rows compared at once; bounds memory to ``chunk * len(reference)`` bytes.

    Returns
    -------
    ndarray of int, shape (len(hashes),)
        65 (more than any distance) when ``reference`` is empty.

    Examples
    --------
    >>> nearest_distances(["000000000000000f", "ffffffffffffffff"], ["0000000000000000"]).tolist()
    [4, 64]
    """
    codes = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    ref = np.array([int(h, 16) for h in reference], dtype=np.uint64)
    if len(ref) == 0:
        return np.full(len(codes), 65)
    nearest = [
        np.bitwise_count(codes[start : start + chunk, None] ^ ref[None, :]).min(axis=1)
        for start in range(0, len(codes), chunk)
    ]
    return np.concatenate(nearest).astype(int) if nearest else np.empty(0, int)


def duplicate_groups(
    sha256: list[str] | pd.Series,
    phashes: list[str] | pd.Series,
    *,
    max_bits: int = NEAR_DUPLICATE_BITS,
) -> tuple[np.ndarray, np.ndarray]:
    """Group images that are exact or near duplicates of each other.

    Parameters
    ----------
    sha256, phashes : sequence of str of length n_images
        File hashes and perceptual hashes; an empty string marks an image that
        could not be read, which is never grouped.
    max_bits : int, default=NEAR_DUPLICATE_BITS
        Near-duplicate threshold on the pHash Hamming distance.

    Returns
    -------
    dup_group : ndarray of shape (n_images,), int
        Group number, ``-1`` for an image with no duplicate.
    dup_kind : ndarray of shape (n_images,), object
        ``"exact"`` when the group holds a byte-identical copy of the image,
        ``"near"`` when it holds only similar images, ``""`` otherwise.
    """
    sha256 = np.asarray(sha256, dtype=object)
    phashes = np.asarray(phashes, dtype=object)
    n = len(sha256)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    readable = np.flatnonzero(phashes != "")
    exact_pairs = []
    first_seen: dict[str, int] = {}
    for i in readable:
        j = first_seen.setdefault(sha256[i], i)
        if j != i:
            exact_pairs.append((j, i))
    near_pairs = readable[hamming_pairs(list(phashes[readable]), max_bits)]
    for i, j in [*exact_pairs, *near_pairs]:
        root_i, root_j = find(i), find(j)
        if root_i != root_j:
            parent[max(root_i, root_j)] = min(root_i, root_j)

    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    sizes = np.bincount(roots, minlength=n)
    grouped = sizes[roots] > 1
    dup_group = np.full(n, -1)
    _, dup_group[grouped] = np.unique(roots[grouped], return_inverse=True)
    sha_counts = pd.Series(sha256[readable]).value_counts()
    dup_kind = np.where(grouped, "near", "").astype(object)
    has_copy = np.isin(sha256, sha_counts.index[sha_counts > 1]) & (phashes != "")
    dup_kind[has_copy] = "exact"
    return dup_group, dup_kind


def leakage(manifest: pd.DataFrame) -> pd.DataFrame:
    """Duplicate groups that cross the train/test split.

    Parameters
    ----------
    manifest : DataFrame
        With columns ``split``, ``label``, ``dup_group``, ``dup_kind`` and ``path``.

    Returns
    -------
    DataFrame
        One row per leaking group: ``dup_group``, ``n_train``, ``n_test``,
        ``labels`` (the labels in the group; more than one is a label conflict),
        ``kind`` and ``example`` paths.
    """
    grouped = manifest[manifest["dup_group"] >= 0]
    rows = []
    for group, members in grouped.groupby("dup_group"):
        splits = members["split"].value_counts()
        if splits.get("train", 0) and splits.get("test", 0):
            rows.append(
                {
                    "dup_group": int(group),
                    "n_train": int(splits["train"]),
                    "n_test": int(splits["test"]),
                    "labels": "/".join(sorted(members["label"].unique())),
                    "kind": "exact" if (members["dup_kind"] == "exact").any() else "near",
                    "example": " | ".join(members["path"].head(2)),
                }
            )
    columns = ["dup_group", "n_train", "n_test", "labels", "kind", "example"]
    return pd.DataFrame(rows, columns=columns)


def leakage_examples(manifest: pd.DataFrame, *, max_pairs: int = 6) -> list[tuple[str, str]]:
    """``(test_path, train_path)`` for the first ``max_pairs`` leaking groups, to show side by side.

    Parameters
    ----------
    manifest : DataFrame
        Chapter 01's manifest.
    max_pairs : int, default=6

    Returns
    -------
    list of (str, str)
        (test path, training path) pairs.
    """
    pairs = []
    for group in leakage(manifest)["dup_group"].head(max_pairs):
        members = manifest[manifest["dup_group"] == group]
        test = members.loc[members["split"] == "test", "path"].iloc[0]
        train = members.loc[members["split"] == "train", "path"].iloc[0]
        pairs.append((test, train))
    return pairs
