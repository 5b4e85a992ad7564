import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tumornb import data
from tumornb.data import (
    MANIFEST_COLUMNS,
    DatasetError,
    UnreadableImage,
    build_manifest,
    load_images,
    read_image,
    read_manifest,
    scan_dataset,
    write_manifest,
)


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", array)
    assert ok
    return buf.tobytes()


def _scan(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    blob = 200 * np.exp(-((xx - rng.integers(16, 48)) ** 2 + (yy - rng.integers(16, 48)) ** 2) / 150.0)
    return np.clip(blob + rng.normal(20, 5, (size, size)), 0, 255).astype(np.uint8)


@pytest.fixture
def messy_dir(tmp_path) -> Path:
    """Kaggle layout with good images among corrupt, empty, truncated and non-image files."""
    root = tmp_path / "messy"
    for split, folder in (("train", "Training"), ("test", "Testing")):
        for k, cls in enumerate(("glioma_tumor", "no_tumor")):
            d = root / folder / cls
            d.mkdir(parents=True)
            for i in range(3):
                (d / f"{split}{k}{i}.jpg").write_bytes(_jpeg(_scan(100 * k + 10 * (split == "test") + i)))
    bad = root / "Training" / "glioma_tumor"
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.txt").write_text("not an image")
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    (bad / "truncated.jpg").write_bytes(_jpeg(_scan(7))[:400])
    (bad / "tiny.png").write_bytes(_png(np.zeros((4, 4), np.uint8)))
    (bad / ".DS_Store").write_bytes(b"hidden files are not scans")
    return root


def test_scan_dataset_maps_kaggle_folders(messy_dir):
    """Check that both splits and the canonical labels are found, and hidden files skipped."""
    files = scan_dataset(messy_dir)
    assert set(files["split"]) == {"train", "test"}
    assert set(files["label"]) == {"glioma", "notumor"}
    assert not files["path"].str.endswith(".DS_Store").any()
    assert len(files) == 12 + 5


def test_bad_files_are_listed_with_reasons_not_fatal(messy_dir):
    """Check that unreadable files are counted and explained while good ones load."""
    manifest, images = build_manifest(messy_dir, image_size=32)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    errors = dict(zip(manifest["path"].map(lambda p: Path(p).name), manifest["error"], strict=True))
    assert errors["empty.jpg"] == "empty file (0 bytes)"
    assert errors["notes.txt"].startswith("not an image file")
    assert errors["truncated.jpg"] == "truncated JPEG (no end-of-image marker)"
    assert "could not be decoded" in errors["corrupt.png"] or errors["corrupt.png"].startswith("not an image")
    assert errors["tiny.png"].startswith("image too small (4x4 px")
    assert (manifest["error"] != "").sum() == 5
    assert images.shape == (12, 32, 32) and images.dtype == np.uint8


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda a: _png(a), "L"),
        (lambda a: _png(np.stack([a, a, a], -1)), "RGB"),
        (lambda a: _png(np.dstack([a, a, a, np.full_like(a, 255)])), "RGBA"),
        (lambda a: _png(a.astype(np.uint16) * 257), "I;16"),
        (lambda a: _png(a // 64, mode="P"), "P"),
        (lambda a: _jpeg(a), "L"),
        (lambda a: _jpeg(cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)), "RGB"),
    ],
)
def test_read_image_any_common_mode(make, mode):
    """Check that grey, RGB, RGBA, 16-bit and palette files decode to 8-bit grey levels."""
    array = _scan(1, size=80)[:, :60]
    decoded = read_image(make(array))
    assert decoded.mode.startswith(mode[:1]) if mode == "I;16" else decoded.mode == mode
    assert (decoded.width, decoded.height) == (60, 80)
    assert decoded.gray.shape == (80, 60) and decoded.gray.dtype == np.uint8
    if mode in ("L", "RGB", "RGBA", "I;16"):
        assert np.abs(decoded.gray.astype(int) - array).mean() < 3


def test_reduced_jpeg_decoding_keeps_enough_pixels():
    """Check that a large JPEG decoded at reduced scale keeps at least min_side pixels."""
    big = cv2.resize(_scan(2), (512, 512))
    decoded = read_image(_jpeg(big), min_side=128)
    assert min(decoded.gray.shape) >= 128 and (decoded.width, decoded.height) == (512, 512)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "data directory not found: .*missing"),
        (lambda root: root.mkdir(), "no class folders in .*missing"),
        (lambda root: (root / "Training").mkdir(parents=True), "no class folders in .*Training"),
    ],
)
def test_dataset_errors_name_the_path(tmp_path, setup, message):
    """Check that a wrong data directory is one clear error naming the path."""
    root = tmp_path / "missing"
    setup(root)
    with pytest.raises(DatasetError, match=message):
        build_manifest(root, image_size=32)


def test_class_with_no_readable_image_is_an_error(tmp_path):
    """Check that a class folder with only unreadable files stops the audit with its path."""
    (tmp_path / "glioma").mkdir()
    (tmp_path / "glioma" / "a.jpg").write_bytes(_jpeg(_scan(0)))
    (tmp_path / "pituitary").mkdir()
    (tmp_path / "pituitary" / "broken.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"class folder .*pituitary has no readable image"):
        build_manifest(tmp_path, image_size=32)


def test_no_split_gets_a_stratified_duplicate_aware_split(tmp_path):
    """Check the split made for a dataset without one: stratified, seeded, copies kept together."""
    for k, cls in enumerate(("glioma", "meningioma")):
        (tmp_path / cls).mkdir()
        for i in range(20):
            (tmp_path / cls / f"{i}.jpg").write_bytes(_jpeg(_scan(100 * k + i)))
        for i in range(3):  # byte-identical copies: must land in the same split as their original
            shutil.copy(tmp_path / cls / f"{i}.jpg", tmp_path / cls / f"{i}_copy.jpg")
    manifest, _ = build_manifest(tmp_path, image_size=32, seed=5, test_fraction=0.25)
    assert manifest.attrs["split_made"]
    per_class_test = manifest[manifest["split"] == "test"].groupby("label").size()
    assert per_class_test.between(4, 7).all()
    for _, group in manifest[manifest["dup_group"] >= 0].groupby("dup_group"):
        assert group["split"].nunique() == 1
    again, _ = build_manifest(tmp_path, image_size=32, seed=5, test_fraction=0.25)
    assert again["split"].tolist() == manifest["split"].tolist()


def test_manifest_roundtrip_and_atomic_write(tmp_path, phantom_dir, monkeypatch):
    """Check that the manifest reads back equal, and a failed write leaves the old file intact."""
    manifest, _ = build_manifest(phantom_dir, image_size=32)
    target = write_manifest(manifest, tmp_path / "manifest.csv")
    back = read_manifest(target)
    pd.testing.assert_frame_equal(back, manifest, check_dtype=False)

    def explode(self, path, **kwargs):
        Path(path).write_text("half a manifest")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", explode)
    with pytest.raises(KeyboardInterrupt):
        write_manifest(manifest, target)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_manifest(target), back)
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]


def test_load_images_uses_the_cache(tmp_path, phantom_dir, monkeypatch):
    """Check that a second load of the same manifest and size decodes nothing."""
    manifest, images = build_manifest(phantom_dir, image_size=48)
    first = load_images(manifest, 48, cache_dir=tmp_path)
    np.testing.assert_array_equal(first, images)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(data, "load_image_file", no_decoding)
    np.testing.assert_array_equal(load_images(manifest, 48, cache_dir=tmp_path), images)
    with pytest.raises(AssertionError, match="decoded although cached"):
        load_images(manifest, 40, cache_dir=tmp_path)  # another size is another cache entry


def test_read_image_rejects_empty_bytes():
    """Check the reason given for an empty file."""
    with pytest.raises(UnreadableImage, match="empty file"):
        read_image(b"")


def _patient_manifest(n_patients=120, seed=0):
    """Scans of patients: each patient's slices differ from its first slice in 1-2 pHash bits."""
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n_patients):
        base = int(rng.integers(0, 2**63))
        label = ["glioma", "meningioma", "notumor", "pituitary"][patient % 4]
        for k in range(int(rng.integers(1, 6))):
            code = base ^ (1 << int(rng.integers(0, 64))) if k else base
            rows.append(
                {
                    "path": f"p{patient}_{k}.jpg",
                    "split": "test"
                    if rng.random() < 0.2
                    else "train",  # the download's split ignores patients
                    "label": label,
                    "error": "",
                    "sha256": f"{patient}-{k}",
                    "phash": f"{code:016x}",
                    "patient": patient,
                }
            )
    return pd.DataFrame(rows)


def test_grouped_resplit_keeps_each_patient_on_one_side_and_stays_stratified():
    """Check the re-split on hand-made patients: no patient on both sides, class shares kept."""
    from tumornb.data import grouped_resplit

    manifest = _patient_manifest()
    assert (manifest.groupby("patient")["split"].nunique() > 1).any()  # the download's split leaks
    out = grouped_resplit(manifest, bits=2, seed=0)
    assert (out.groupby("patient")["split"].nunique() == 1).all()
    assert (out["original_split"] == manifest["split"]).all()
    grouped = out[out["split_group"] >= 0]
    assert grouped.groupby("split_group")["patient"].nunique().max() == 1  # one patient per proxy group
    test_share = (out["split"] == "test").groupby(out["label"]).mean()
    assert test_share.between(0.1, 0.32).all(), test_share
    again = grouped_resplit(manifest, bits=2, seed=0)
    assert (again["split"] == out["split"]).all()


def test_validation_split_keeps_patient_proxy_groups_together_after_a_resplit(phantom_dir, tmp_path):
    """Check that a grouped re-split leaves no duplicate across splits and validation respects groups."""
    from tumornb.audit import audit_dataset
    from tumornb.datasets import real_training_set

    summary = audit_dataset(phantom_dir, tmp_path / "run", image_size=32, resplit="grouped", resplit_bits=4)
    assert summary["n_test_leaked"] == 0 and summary["resplit"]["groups_on_both_sides"] == 0
    assert summary["split_source"] == "grouped re-split at 4 pHash bits"
    ts = real_training_set(tmp_path / "run", 32, val_fraction=0.25, seed=0)
    fit_groups = set(ts.train_rows.loc[ts.train_rows["split_group"] >= 0, "split_group"])
    val_groups = set(ts.val_rows.loc[ts.val_rows["split_group"] >= 0, "split_group"])
    assert not fit_groups & val_groups
    with pytest.raises(ValueError, match="resplit must be None or 'grouped'"):
        audit_dataset(phantom_dir, tmp_path / "other", image_size=32, resplit="random")
