"""Class names and the mapping from dataset folder names to canonical labels.

The public Kaggle brain-MRI datasets spell the same four classes differently
(``glioma`` / ``glioma_tumor``, ``notumor`` / ``no_tumor``, ...). Every chapter
speaks the canonical names defined here.
"""

from __future__ import annotations

import re

__all__ = ["CLASS_NAMES", "SPLITS", "canonical_label", "ordered_classes"]

#: Canonical class names, in the order used for one-hot encodings and plots.
CLASS_NAMES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")

#: Canonical split names and the folder names that datasets use for them.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("training", "train"),
    "test": ("testing", "test"),
}

_ALIASES = {
    "glioma": "glioma",
    "meningioma": "meningioma",
    "pituitary": "pituitary",
    "notumor": "notumor",
    "no": "notumor",
    "normal": "notumor",
    "healthy": "notumor",
}


def canonical_label(folder_name: str) -> str:
    """Return the canonical label for a class folder name.

    Parameters
    ----------
    folder_name : str
        Name of a class folder, e.g. ``"glioma_tumor"`` or ``"no_tumor"``.

    Returns
    -------
    str
        One of :data:`CLASS_NAMES` when the name is a known spelling, else the
        folder name lower-cased (datasets with other classes still load).

    Examples
    --------
    >>> canonical_label("Glioma_Tumor"), canonical_label("no_tumor")
    ('glioma', 'notumor')
    """
    key = re.sub(r"[^a-z]", "", folder_name.lower())
    if key not in ("tumor", "tumour"):
        key = re.sub(r"tumou?r$", "", key) or key
    return _ALIASES.get(key, folder_name.lower())


def ordered_classes(labels) -> list[str]:
    """The labels present, canonical classes first in their usual order, others sorted after.

    This is the class order of every one-hot encoding, table and plot.

    Parameters
    ----------
    labels : iterable of str

    Returns
    -------
    list of str

    Examples
    --------
    >>> ordered_classes(["pituitary", "glioma", "glioma"])
    ['glioma', 'pituitary']
    """
    present = set(labels)
    return [n for n in CLASS_NAMES if n in present] + sorted(present - set(CLASS_NAMES))
