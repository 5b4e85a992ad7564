import hashlib
import json

import numpy as np
import pytest

from tumornb.data import build_manifest
from tumornb.labels import CLASS_NAMES
from tumornb.phantom import load_masks, make_slice, write_phantom_dataset


def _digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    """Check that the dataset is a pure function of the seed."""
    kwargs = dict(n_train_per_class=3, n_test_per_class=1, size_range=(48, 64))
    write_phantom_dataset(tmp_path / "a", seed=1, **kwargs)
    write_phantom_dataset(tmp_path / "b", seed=1, **kwargs)
    write_phantom_dataset(tmp_path / "c", seed=2, **kwargs)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_kaggle_layout_and_masks_outside_class_folders(phantom_dir):
    """Check the Training/Testing layout, counts, and that masks live outside class folders."""
    for split, n in (("Training", 12), ("Testing", 4)):
        for label in CLASS_NAMES:
            scans = list((phantom_dir / split / label).iterdir())
            assert len(scans) == n
            masks = list((phantom_dir / "masks" / split / label).glob("*.png"))
            assert len(masks) == (0 if label == "notumor" else n)
            assert len(list((phantom_dir / "brains" / split / label).glob("*.png"))) == n
    info = json.loads((phantom_dir / "phantom.json").read_text())
    assert info["counts"]["train"]["glioma"] == 12


@pytest.mark.parametrize("label", ["glioma", "meningioma", "pituitary"])
def test_lesion_mask_is_small_and_inside_the_head(label):
    """Check that each tumour class draws a lesion that covers a plausible share of the brain."""
    for index in range(8):
        sl = make_slice(label, rng=np.random.default_rng(index), height=160, width=160)
        assert sl.mask.any()
        share = sl.mask.sum() / sl.brain.sum()
        assert 0.001 < share < 0.35
        # The brain (and so the lesion) lies inside the head: away from the image's border, and
        # over tissue, far brighter than the air around the head.
        assert not (sl.brain[0].any() or sl.brain[-1].any() or sl.brain[:, 0].any() or sl.brain[:, -1].any())
        head = sl.image > 10
        assert head[sl.mask].mean() > 0.95 and 0.2 < sl.brain.mean() < 0.8


def test_notumor_has_no_lesion():
    """Check that the notumor class has an empty mask."""
    sl = make_slice("notumor", rng=np.random.default_rng(0), height=96, width=128)
    assert sl.image.shape == (96, 128) and sl.image.dtype == np.uint8
    assert not sl.mask.any()


def test_pituitary_lesions_are_midline_and_meningiomas_peripheral():
    """Check the class-specific anatomy: pituitary near the midline, meningioma at the brain's edge."""
    rng = np.random.default_rng(0)
    pit_x, men_r = [], []
    for _ in range(20):
        sl = make_slice("pituitary", rng=rng, height=128, width=128, view="coronal")
        ys, xs = np.nonzero(sl.mask)
        pit_x.append(abs(xs.mean() - 64) / 64)
        sl = make_slice("meningioma", rng=rng, height=128, width=128)
        ys, xs = np.nonzero(sl.mask)
        bys, bxs = np.nonzero(sl.brain)
        men_r.append(np.hypot(xs.mean() - bxs.mean(), ys.mean() - bys.mean()) / (np.ptp(bxs) / 2))
    assert np.median(pit_x) < 0.12
    assert np.median(men_r) > 0.6
    # In an axial slice the pituitary mass sits in front of the lateral ventricles, not on them
    # (on T2 both are bright: a mass on the ventricles is hard to tell from them).
    rows = [
        np.nonzero(make_slice("pituitary", rng=rng, height=128, width=128, view="axial").mask)[0].mean()
        for _ in range(20)
    ]
    assert np.median(rows) < 64 - 0.25 * 64


def test_refuses_to_write_into_a_non_empty_folder(tmp_path):
    """Check that the phantom writer never overwrites a user's files."""
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        write_phantom_dataset(tmp_path, n_train_per_class=1, n_test_per_class=1)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_planted_copies_are_found_as_duplicates_and_leakage(tmp_path):
    """Check that the planted copies are detected: exact ones all, resized test copies mostly."""
    write_phantom_dataset(tmp_path, n_train_per_class=50, n_test_per_class=50, seed=0, duplicate_fraction=0.1)
    manifest, _ = build_manifest(tmp_path, image_size=32)
    copies = manifest["path"].str.extract(r"_(\d{4})\.")[0].astype(int) >= 45
    found = manifest["dup_group"] >= 0
    train, test = manifest["split"] == "train", manifest["split"] == "test"
    assert found[copies & train].all()  # byte-identical copies: every one
    assert found[copies & test].mean() >= 0.9  # resized copies: pHash at 2 bits finds nearly all
    assert not found[~copies & test].any()  # no original test image is grouped by mistake


def test_not_trivially_separable(tmp_path):
    """Check that a linear model on raw pixels does not classify the phantom perfectly."""
    from sklearn.linear_model import LogisticRegression

    write_phantom_dataset(tmp_path, n_train_per_class=60, n_test_per_class=25, seed=4, size_range=(64, 96))
    manifest, images = build_manifest(tmp_path, image_size=32)
    X = images.reshape(len(images), -1) / 255.0
    train = (manifest["split"] == "train").to_numpy()
    model = LogisticRegression(max_iter=500).fit(X[train], manifest["label"][train])
    assert model.score(X[~train], manifest["label"][~train]) < 1.0


def test_masks_are_squared_like_the_scans_and_lesions_lie_in_the_brain(phantom_dir):
    """Check load_masks: one lesion per tumour scan, none for notumor, inside the brain, aligned."""
    scans = sorted((phantom_dir / "Testing").glob("*/*.*"))
    lesions, brains = load_masks(phantom_dir, scans, 48)
    assert lesions.shape == brains.shape == (len(scans), 48, 48)
    has_lesion = lesions.any(axis=(1, 2))
    assert has_lesion.tolist() == [scan.parent.name != "notumor" for scan in scans]
    assert (lesions & ~brains).sum() <= 0.02 * lesions.sum()  # only resampling at the edge
    # The brain mask covers the bright part of the scan: the squared scan and mask line up.
    from tumornb.data import load_image_file

    image = load_image_file(scans[0], 48)
    assert image[brains[0]].mean() > 3 * image[~brains[0]].mean()


def test_masks_of_data_that_is_not_a_current_phantom_are_refused(tmp_path):
    """Check that real data (no phantom.json) gets a clear error instead of empty masks."""
    with pytest.raises(FileNotFoundError, match="masks exist for the embedded data only"):
        load_masks(tmp_path, [tmp_path / "Testing" / "glioma" / "x.jpg"], 32)
