import pytest

from tumornb.labels import CLASS_NAMES, canonical_label


@pytest.mark.parametrize(
    ("folder", "label"),
    [
        ("glioma", "glioma"),
        ("glioma_tumor", "glioma"),
        ("Glioma_Tumour", "glioma"),
        ("meningioma_tumor", "meningioma"),
        ("notumor", "notumor"),
        ("no_tumor", "notumor"),
        ("pituitary_tumor", "pituitary"),
        ("pituitary", "pituitary"),
        ("Astrocytoma", "astrocytoma"),
    ],
)
def test_canonical_label(folder, label):
    """Check that the Kaggle spellings map to one canonical label set and others pass through."""
    assert canonical_label(folder) == label


def test_class_names_are_canonical():
    """Check that every canonical class name maps to itself."""
    assert [canonical_label(name) for name in CLASS_NAMES] == list(CLASS_NAMES)
