"""The run directory: one place that names every artifact a chapter reads or writes.

Chapters hand data to each other through files in a run directory, never
through notebook globals. Its layout::

    RUN_DIR/
      data/                 embedded phantom dataset, when no --data-dir is given
      manifest.csv          01_eda: one row per file found
      eda_summary.json      01_eda: counts, duplicates, leakage
      cache/                decoded image arrays keyed by manifest and image size
      gan/VARIANT/          02_dgan: generator weights, history.csv, learning grids, gan.json
      synthetic/            02_dgan: generated PNGs (Kaggle layout) and their manifest.csv
      fidelity/             02_dgan: the judge, the classification-accuracy-score classifiers, fidelity.json
      models/VARIANT/       03_cnn: model.keras, history.csv, train.json per trained variant
      validation.csv        03_cnn: the validation images (path, label) every variant was selected on
      metrics.json          04_eval: every headline number with its interval, the comparison
      predictions.csv       04_eval: per test image and variant, true, predicted, probabilities
      explanations.json     05_visualize_predictions: pointing-game scores and chance levels
      notebooks/            executed notebooks (papermill output)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NOTEBOOK_RUN_DIR", "RUN_DIR_ENV", "RunDir", "atomic_path"]

#: Where a chapter opened in Jupyter writes when its ``run_dir`` parameter is None
#: (relative to the notebooks folder), unless :data:`RUN_DIR_ENV` names another folder.
NOTEBOOK_RUN_DIR = "../runs/notebook"
#: The environment variable that redirects such chapters (the test suite points it at a temporary folder).
RUN_DIR_ENV = "TUMORNB_RUN_DIR"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory.

    Parameters
    ----------
    root : path-like, optional
        The run directory; created on first use by the writers, not here. None: the
        folder named by ``$TUMORNB_RUN_DIR``, else :data:`NOTEBOOK_RUN_DIR`.
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            root = os.environ.get(RUN_DIR_ENV) or NOTEBOOK_RUN_DIR
        object.__setattr__(self, "root", Path(root).expanduser().resolve())

    @property
    def phantom_dir(self) -> Path:
        """The embedded phantom dataset, when the run has no ``--data-dir``."""
        return self.root / "data"

    @property
    def manifest(self) -> Path:
        """Chapter 01's manifest: one row per file found."""
        return self.root / "manifest.csv"

    @property
    def eda_summary(self) -> Path:
        """Chapter 01's counts, duplicates and leakage."""
        return self.root / "eda_summary.json"

    @property
    def cache_dir(self) -> Path:
        """Decoded image arrays, keyed by manifest and image size."""
        return self.root / "cache"

    def gan_dir(self, variant: str) -> Path:
        """Folder of one trained GAN, e.g. ``gan/conditional``."""
        return self.root / "gan" / variant

    @property
    def synthetic_dir(self) -> Path:
        """Chapter 02's generated images, in the Kaggle layout."""
        return self.root / "synthetic"

    @property
    def synthetic_manifest(self) -> Path:
        """One row per synthetic image: class, seed, generator hash, judge's verdict."""
        return self.synthetic_dir / "manifest.csv"

    def fidelity_dir(self, name: str = "") -> Path:
        """Chapter 02's class-fidelity artifacts, e.g. ``fidelity/judge``; the folder itself for ``""``."""
        return self.root / "fidelity" / name if name else self.root / "fidelity"

    @property
    def fidelity_json(self) -> Path:
        """Chapter 02's class-fidelity, quality and memorisation numbers."""
        return self.fidelity_dir() / "fidelity.json"

    @property
    def models_dir(self) -> Path:
        """Chapter 03's trained classifiers, one folder per variant."""
        return self.root / "models"

    def model_dir(self, variant: str) -> Path:
        """Folder of one trained classifier, e.g. ``models/real``."""
        return self.models_dir / variant

    @property
    def validation_split(self) -> Path:
        """The validation images chapter 03 chose its epochs on (chapter 04 fits the temperature on them)."""
        return self.root / "validation.csv"

    @property
    def metrics(self) -> Path:
        """Chapter 04's numbers with their intervals."""
        return self.root / "metrics.json"

    @property
    def predictions(self) -> Path:
        """Chapter 04's class probabilities per test image and variant."""
        return self.root / "predictions.csv"

    @property
    def explanations(self) -> Path:
        """Chapter 05's pointing-game scores and latency."""
        return self.root / "explanations.json"

    @property
    def notebooks_dir(self) -> Path:
        """The executed chapters (papermill output)."""
        return self.root / "notebooks"

    @property
    def run_info(self) -> Path:
        """What ``tumornb run`` was asked to do: profile, parameters, versions."""
        return self.root / "run.json"


@contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path that replaces ``target`` only if the block succeeds.

    An interrupted writer leaves at most a stray temporary file, never a
    half-written ``target`` that a later run would trust. ``suffix`` ends the
    temporary name, for writers that insist on an extension (``".keras"``).

    Parameters
    ----------
    target : path-like
    suffix : str, default=".tmp"
        Of the temporary file, e.g. ``.keras`` where a library checks the extension.

    Examples
    --------
    >>> with atomic_path(run_dir / "manifest.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp, index=False)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give it the permissions of an ordinary new file.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
