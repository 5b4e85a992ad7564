import cv2
import numpy as np
import pandas as pd
import pytest

from tumornb.dedup import duplicate_groups, hamming_pairs, leakage, leakage_examples, phash


def _image(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (96, 96)).astype(np.uint8), (0, 0), 3)


def test_phash_survives_resizing_and_recompression():
    """Check that a resized, JPEG re-compressed copy stays within 2 bits and another image does not."""
    original = _image(0)
    ok, buf = cv2.imencode(".jpg", cv2.resize(original, (80, 80)), [cv2.IMWRITE_JPEG_QUALITY, 80])
    copy = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    distance = lambda a, b: bin(int(phash(a), 16) ^ int(phash(b), 16)).count("1")  # noqa: E731
    assert distance(original, copy) <= 2
    assert distance(original, _image(1)) > 10


def test_hamming_pairs_matches_brute_force():
    """Check the vectorised pair search against a double loop, across chunk borders."""
    rng = np.random.default_rng(0)
    codes = [f"{int(c):016x}" for c in rng.integers(0, 2**63, 50, dtype=np.int64)]
    codes += [f"{int(codes[0], 16) ^ 0b11:016x}", codes[3]]
    expected = {
        (i, j)
        for i in range(len(codes))
        for j in range(i + 1, len(codes))
        if bin(int(codes[i], 16) ^ int(codes[j], 16)).count("1") <= 2
    }
    found = {tuple(p) for p in hamming_pairs(codes, 2, chunk=7)}
    assert found == expected == {(0, 50), (3, 51)}


def test_duplicate_groups_exact_near_and_unreadable():
    """Check grouping: exact copies, a near copy joining them, and unreadable files kept apart."""
    sha = ["a", "a", "b", "c", "", ""]
    hashes = [
        "ff00000000000000",
        "ff00000000000000",
        "ff00000000000003",
        "00000000ffffffff",
        "",
        "",
    ]
    group, kind = duplicate_groups(sha, hashes, max_bits=2)
    assert group.tolist() == [0, 0, 0, -1, -1, -1]
    assert kind.tolist() == ["exact", "exact", "near", "", "", ""]


def test_leakage_reports_groups_across_splits():
    """Check that only groups with members in both splits are leakage, with label conflicts shown."""
    manifest = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d", "e"],
            "split": ["train", "test", "train", "train", "test"],
            "label": ["glioma", "glioma", "notumor", "notumor", "pituitary"],
            "dup_group": [0, 0, 1, 1, 2],
            "dup_kind": ["exact", "exact", "near", "near", ""],
        }
    )
    leaks = leakage(manifest)
    assert leaks["dup_group"].tolist() == [0]
    assert leaks.loc[0, ["n_train", "n_test", "labels", "kind"]].tolist() == [
        1,
        1,
        "glioma",
        "exact",
    ]
    assert leakage_examples(manifest) == [("b", "a")]


@pytest.mark.parametrize("n", [0, 1])
def test_small_inputs(n):
    """Check the edge cases of no and one image."""
    group, kind = duplicate_groups(["x"] * n, ["0" * 16] * n)
    assert group.tolist() == [-1] * n


def test_nearest_distances_is_the_minimum_over_the_reference():
    """Check the smallest Hamming distance to a reference set against a brute-force count."""
    from tumornb.dedup import nearest_distances

    rng = np.random.default_rng(0)
    hashes = [f"{int(v):016x}" for v in rng.integers(0, 2**63, 30)]
    reference = [f"{int(v):016x}" for v in rng.integers(0, 2**63, 50)]
    brute = [min(bin(int(h, 16) ^ int(r, 16)).count("1") for r in reference) for h in hashes]
    assert nearest_distances(hashes, reference, chunk=7).tolist() == brute
    assert nearest_distances(hashes[:2], []).tolist() == [65, 65]
