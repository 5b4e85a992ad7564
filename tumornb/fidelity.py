"""Do synthetic images carry their class? A judge classifier's verdict, and what it costs.

Chapter 02's GAN draws images *for* a class. The D-GAN method then labels them with
that class and adds them to the training data, so a synthetic "glioma" must look
like a glioma to be of any use. Distances between feature distributions (FID, KID in
:mod:`tumornb.quality`) cannot say so: a generator can match the overall look of
the scans and still mix the classes up. Two measures can:

* **Class fidelity.** A *judge*, a classifier trained on the real training images
  only (never on synthetic or test images, and independent of the GAN), classifies
  every synthetic image. The share it assigns to the class it was drawn for is the
  fidelity; the judge's accuracy on real validation images is the ceiling, so the
  ratio of the two is comparable across judges. Per class, fidelity is the judge's
  recall on synthetic images of that class over its recall on real ones.
* **Classification accuracy score** (CAS; Ravuri and Vinyals, 2019): a classifier
  trained on synthetic images alone, tested on real validation images. Images that
  carry their class teach it; mislabelled ones leave it near chance.

:func:`keep_faithful` then filters synthetic images to those the judge assigns to
their own class with at least a given confidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tumornb.paths import atomic_path

__all__ = [
    "FILTER_CONFIDENCE",
    "REALISM_FID_RATIO",
    "SOURCES",
    "TARGET_CLASS_RATIO",
    "TARGET_RATIO",
    "Fidelity",
    "class_fidelity",
    "classification_accuracy_score",
    "generator_table",
    "judge_encoder",
    "checks_record",
    "choose_source",
    "keep_faithful",
    "realism_ratio",
    "record_judgement",
    "train_judge",
]


#: FID over its real floor, in the fixed random encoder's features, above which synthetic images do
#: not count as looking real in :meth:`Fidelity.verdict`: new scans from the training distribution
#: score about 1.
REALISM_FID_RATIO = 2.0

#: Fidelity over the judge's ceiling that counts as carrying the class: overall, and for the lowest
#: class (a judge that recalls 60% of real scans of a class cannot be asked for more on synthetic ones).
TARGET_RATIO = 0.9
TARGET_CLASS_RATIO = 0.8


@dataclass
class Fidelity:
    """What :func:`class_fidelity` found.

    Attributes
    ----------
    table : DataFrame
        One row per class and a last row ``all``: ``real`` (the judge's recall on real
        validation images: the ceiling), ``synthetic`` (its recall on synthetic images
        drawn for the class: the fidelity), ``ratio`` (synthetic / real), and the
        image counts ``n_real`` and ``n_synthetic``. The ``all`` row holds accuracies.
    confusion : DataFrame
        Synthetic images by intended class (rows) and judged class (columns).
    """

    table: pd.DataFrame
    confusion: pd.DataFrame

    @property
    def overall_ratio(self) -> float:
        """Fidelity over ceiling, all classes together."""
        return float(self.table.loc["all", "ratio"])

    @property
    def worst_class_ratio(self) -> float:
        """The lowest per-class ratio."""
        return float(self.table.drop(index="all")["ratio"].min())

    def verdict(
        self,
        *,
        overall: float = TARGET_RATIO,
        per_class: float = TARGET_CLASS_RATIO,
        fid_over_floor: float | None = None,
        max_fid_over_floor: float = REALISM_FID_RATIO,
    ) -> str:
        """Say in one sentence, from the numbers, whether the images carry their class.

        Parameters
        ----------
        overall, per_class : float
            The ratios to fidelity over ceiling that count as "carries its class".
        fid_over_floor : float, optional
            The synthetic images' FID over its floor (:func:`realism_ratio`), in the
            fixed random encoder's features: the judge's own features were fitted to
            the training images that make the floor, which inflates it. A generator
            can fool the judge with images that look like no scan; given this, images
            the judge assigns to their class only count as carrying it when they also
            lie near real scans.
        max_fid_over_floor : float, default=REALISM_FID_RATIO
        """
        table = self.table
        worst = table.drop(index="all")["ratio"].idxmin()
        facts = (
            f"the judge puts {table.loc['all', 'synthetic']:.0%} of the synthetic images in the class they "
            f"were drawn for, against {table.loc['all', 'real']:.0%} of real validation images "
            f"(ratio {self.overall_ratio:.2f}; lowest class {worst}, {self.worst_class_ratio:.2f})"
        )
        if fid_over_floor is not None:
            facts += f"; their FID is {fid_over_floor:.1f} times the real floor"
        chance = 1 / len(self.confusion)
        if self.overall_ratio >= overall and self.worst_class_ratio >= per_class:
            if fid_over_floor is not None and fid_over_floor > max_fid_over_floor:
                return (
                    "The judge assigns the synthetic images to their class, but they do not look like real "
                    f"scans (FID over {max_fid_over_floor:g} times the floor): the generator fools the "
                    f"judge rather than drawing the class: {facts}."
                )
            return f"The synthetic images carry their class: {facts}."
        if table.loc["all", "synthetic"] <= chance + 0.1:
            return f"The synthetic images do not carry their class (near chance, {chance:.0%}): {facts}."
        return (
            f"The synthetic images carry their class only in part (targets: ratio {overall} overall, "
            f"{per_class} per class): {facts}."
        )


def realism_ratio(scores: pd.DataFrame) -> float:
    """Mean FID over mean FID floor, across classes: how far from real scans the images lie.

    Parameters
    ----------
    scores : DataFrame
        One variant's :func:`tumornb.quality.quality_table`, with columns ``FID`` and
        ``FID floor``; chapter 02 uses the fixed random encoder's.

    Returns
    -------
    float
        About 1 for images as close to the reference scans as unseen real ones.
    """
    return float(scores["FID"].mean() / scores["FID floor"].mean())


def class_fidelity(
    judge: Callable[[np.ndarray], np.ndarray],
    real_images: np.ndarray,
    real_labels: np.ndarray,
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray,
    class_names: list[str],
) -> Fidelity:
    """The judge's accuracy on synthetic images per intended class, beside its accuracy on real ones.

    Parameters
    ----------
    judge : callable
        Maps uint8 images of shape ``(n, side, side)`` to class probabilities of shape
        ``(n, n_classes)``; trained on real training images only (see :func:`train_judge`).
    real_images : ndarray of shape (n_real, side, side)
        Real images the judge did not train on (the validation split).
    real_labels, synthetic_labels : ndarray of int
        Class indices into ``class_names``; for synthetic images, the class each was drawn for.
    synthetic_images : ndarray of shape (n_synthetic, side, side)
    class_names : list of str

    Returns
    -------
    Fidelity
    """
    judged_real = np.asarray(judge(real_images)).argmax(1)
    judged_synthetic = np.asarray(judge(synthetic_images)).argmax(1)
    real_labels, synthetic_labels = np.asarray(real_labels), np.asarray(synthetic_labels)

    def recall(labels, judged, k):
        members = labels == k
        return float((judged[members] == k).mean()) if members.any() else np.nan

    rows = {}
    for k, name in enumerate(class_names):
        rows[name] = {
            "real": recall(real_labels, judged_real, k),
            "synthetic": recall(synthetic_labels, judged_synthetic, k),
            "n_real": int((real_labels == k).sum()),
            "n_synthetic": int((synthetic_labels == k).sum()),
        }
    rows["all"] = {
        "real": float((judged_real == real_labels).mean()),
        "synthetic": float((judged_synthetic == synthetic_labels).mean()),
        "n_real": len(real_labels),
        "n_synthetic": len(synthetic_labels),
    }
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")
    table.insert(2, "ratio", table["synthetic"] / table["real"])
    confusion = pd.crosstab(
        pd.Categorical(np.asarray(class_names)[synthetic_labels], categories=class_names),
        pd.Categorical(np.asarray(class_names)[judged_synthetic], categories=class_names),
        rownames=["drawn for"],
        colnames=["judged as"],
        dropna=False,
    )
    return Fidelity(table, confusion)


#: The judge's probability of the intended class from which a synthetic image counts as faithful:
#: chapter 02's filter and chapter 04's ``real+filtered-synthetic`` variant.
FILTER_CONFIDENCE = 0.5


def keep_faithful(
    probabilities: np.ndarray, intended: np.ndarray, *, min_confidence: float = FILTER_CONFIDENCE
) -> np.ndarray:
    """Which synthetic images the judge assigns to their intended class with enough confidence.

    Parameters
    ----------
    probabilities : ndarray of shape (n_images, n_classes)
        The judge's class probabilities for the synthetic images.
    intended : ndarray of shape (n_images,), int
        The class each image was drawn for.
    min_confidence : float, default=FILTER_CONFIDENCE
        Keep an image when the judge's top class is the intended one and its
        probability is at least this.

    Returns
    -------
    ndarray of bool, shape (n_images,)
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence}")
    probabilities, intended = np.asarray(probabilities), np.asarray(intended)
    top = probabilities.argmax(1)
    return (top == intended) & (probabilities[np.arange(len(intended)), intended] >= min_confidence)


def pick_faithful(
    probabilities: np.ndarray,
    intended: np.ndarray,
    wanted: np.ndarray,
    *,
    min_confidence: float = FILTER_CONFIDENCE,
) -> np.ndarray:
    """Up to ``wanted[k]`` images of each class ``k`` from a larger pool, those a classifier finds faithful.

    Rejection sampling: draw more images than needed, keep the ones
    :func:`keep_faithful` keeps, the most confident first. A class with fewer
    faithful images than wanted gets only those: the shortfall is the caller's to report.
    The classifier must not be the judge that scores the kept images.

    Parameters
    ----------
    probabilities : ndarray of shape (n_images, n_classes)
        The filtering classifier's class probabilities for the pool.
    intended : ndarray of shape (n_images,), int
        The class each image of the pool was drawn for.
    wanted : ndarray of shape (n_classes,), int
        How many images of each class to keep at most.
    min_confidence : float, default=FILTER_CONFIDENCE

    Returns
    -------
    ndarray of int
        Indices into the pool, grouped by class in class order.
    """
    probabilities, intended = np.asarray(probabilities), np.asarray(intended)
    faithful = keep_faithful(probabilities, intended, min_confidence=min_confidence)
    confidence = probabilities[np.arange(len(intended)), intended]
    picked = []
    for k, n in enumerate(np.asarray(wanted)):
        mine = np.flatnonzero(faithful & (intended == k))
        picked.append(mine[np.argsort(-confidence[mine], kind="stable")][:n])
    return np.concatenate(picked).astype(int) if picked else np.array([], int)


def record_judgement(
    manifest_path: str | Path, probabilities: np.ndarray, class_names: list[str]
) -> pd.DataFrame:
    """Add the judge's verdict on each written synthetic image to chapter 02's synthetic manifest.

    Parameters
    ----------
    manifest_path : path-like
        ``synthetic/manifest.csv``; rewritten atomically with two more columns:
        ``judge_class`` (the judge's top class) and ``judge_confidence`` (its
        probability of the class the image was drawn for).
    probabilities : ndarray of shape (n_images, n_classes)
        The judge's probabilities for the manifest's images, in its order.
    class_names : list of str

    Returns
    -------
    DataFrame
        The updated manifest.
    """
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    probabilities = np.asarray(probabilities)
    if len(probabilities) != len(manifest):
        raise ValueError(f"{len(probabilities)} judgements for the {len(manifest)} images of {manifest_path}")
    intended = manifest["label"].map({name: i for i, name in enumerate(class_names)}).to_numpy()
    manifest["judge_class"] = np.asarray(class_names)[probabilities.argmax(1)]
    manifest["judge_confidence"] = probabilities[np.arange(len(manifest)), intended].round(6)
    with atomic_path(manifest_path) as tmp:
        manifest.to_csv(tmp, index=False)
    return manifest


def judge_encoder(model):
    """The judge up to its last layer before the class probabilities: features that tell classes apart.

    Use it with :func:`tumornb.quality.embed` for distances (FID, KID) in a space
    trained on MRI, beside the fixed random encoder of :mod:`tumornb.quality`.

    Parameters
    ----------
    model : keras.Model
        The judge.

    Returns
    -------
    keras.Model
        Images to the judge's penultimate-layer features.
    """
    import keras

    return keras.Model(model.inputs, model.get_layer("probabilities").input, name="judge_features")


def train_judge(real, out_dir: str | Path, *, epochs: int, seed: int = 0, progress: Callable | None = None):
    """Train (or load, when finished before) the judge: a classifier of the real images only.

    The judge is chapter 03's ``tumornb_cnn`` with its augmentation, trained at the
    GAN's resolution on the real training images with early stopping on the real
    validation images, and stored like any classifier (``train.json`` last).

    Parameters
    ----------
    real : tumornb.datasets.TrainingSet
        Real training and validation images (never synthetic or test images).
    out_dir : path-like
        Where the judge is stored, e.g. ``RunDir(...).fidelity_dir("judge")``.
    epochs : int
        The most epochs to train.
    seed : int, default=0
    progress : callable, optional
        A ``tqdm``-like class for an epoch progress bar.

    Returns
    -------
    tumornb.training.TrainResult
    """
    from tumornb.training import TrainConfig

    config = TrainConfig(image_size=real.x_train.shape[1], epochs=epochs, learning_rate=5e-4, seed=seed)
    return _fit_on_real(real, out_dir, config, role="judge", progress=progress)


GUIDE_MODEL = "seed_cnn"


def train_guide(real, out_dir: str | Path, *, epochs: int, seed: int = 1, progress: Callable | None = None):
    """Train (or load) the guide: a classifier of the real images that steers the generator.

    The guide (see :class:`tumornb.gan.DGAN`) must not be the judge, or the judge would
    grade images drawn to please it: it is another architecture (the seed project's CNN,
    :data:`GUIDE_MODEL`) from another seed, trained like :func:`train_judge` on the real
    training images only.

    Parameters
    ----------
    real : tumornb.datasets.TrainingSet
        Real training and validation images (never synthetic or test images).
    out_dir : path-like
        Where the guide is stored.
    epochs : int
        The most epochs to train.
    seed : int, default=1
        Differs from the judge's default.
    progress : callable, optional
        A ``tqdm``-like class for an epoch progress bar.

    Returns
    -------
    tumornb.training.TrainResult
    """
    from tumornb.training import TrainConfig

    config = TrainConfig(model=GUIDE_MODEL, image_size=real.x_train.shape[1], epochs=epochs, seed=seed)
    return _fit_on_real(real, out_dir, config, role="guide", progress=progress)


def _fit_on_real(real, out_dir, config, *, role, progress):
    """:func:`_fit_or_reuse` on the real training and validation images only, for ``role``."""
    data = (real.x_train, real.y_train, real.x_val, real.y_val)
    role = f"{role}: real training images only"
    return _fit_or_reuse(data, out_dir, config, class_names=real.class_names, role=role, progress=progress)


def _fit_or_reuse(data, out_dir, config, *, class_names, role, progress):
    """Train on ``data = (x_train, y_train, x_val, y_val)``, or reuse the finished run in ``out_dir``.

    The run is reused when it was trained for the same role, configuration and number of images.
    """
    from tumornb.training import load_trained, train_classifier

    x_train, y_train, x_val, y_val = data
    if (Path(out_dir) / "train.json").exists():
        done = load_trained(out_dir)
        same = (done.info.get("role"), done.info["config"], done.info["n_train"], done.info["n_val"])
        if same == (role, config.to_dict(), len(x_train), len(x_val)):
            return done
    return train_classifier(
        x_train,
        y_train,
        x_val,
        y_val,
        out_dir,
        config,
        class_names=class_names,
        extra_info={"role": role},
        progress=progress,
    )


def classification_accuracy_score(
    synthetic_images: np.ndarray,
    synthetic_labels: np.ndarray,
    real_images: np.ndarray,
    real_labels: np.ndarray,
    out_dir: str | Path,
    *,
    class_names: list[str],
    epochs: int,
    seed: int = 0,
    progress: Callable | None = None,
) -> dict:
    """Train on synthetic images only, test on real ones: the classification accuracy score.

    15% of the synthetic images (per class, seeded) stop the training early, so the
    real images are used once, for the score.

    Parameters
    ----------
    synthetic_images : ndarray of shape (n, side, side), uint8
    synthetic_labels : ndarray of shape (n,), int
        The class each synthetic image was drawn for.
    real_images : ndarray of shape (m, side, side), uint8
        Real images neither the GAN nor the classifier trained on (the validation split).
    real_labels : ndarray of shape (m,), int
    out_dir : path-like
        Where the classifier is stored.
    class_names : list of str
    epochs : int
    seed : int, default=0
    progress : callable, optional

    Returns
    -------
    dict
        ``accuracy`` and per-class ``recall`` on the real images, and ``n_train``.
    """
    from tumornb.evaluation import predict_proba
    from tumornb.training import TrainConfig

    rng = np.random.default_rng(seed)
    synthetic_labels = np.asarray(synthetic_labels)
    held = np.zeros(len(synthetic_labels), bool)
    for k in np.unique(synthetic_labels):
        members = np.flatnonzero(synthetic_labels == k)
        held[rng.choice(members, max(1, round(0.15 * len(members))), replace=False)] = True
    side = synthetic_images.shape[1]
    config = TrainConfig(image_size=side, epochs=epochs, learning_rate=5e-4, seed=seed)
    trained = _fit_or_reuse(
        (synthetic_images[~held], synthetic_labels[~held], synthetic_images[held], synthetic_labels[held]),
        out_dir,
        config,
        class_names=class_names,
        role="classification accuracy score: synthetic images only",
        progress=progress,
    )
    judged = predict_proba(trained.model, real_images).argmax(1)
    real_labels = np.asarray(real_labels)
    return {
        "accuracy": float((judged == real_labels).mean()),
        "recall": {
            name: float((judged[real_labels == k] == k).mean())
            for k, name in enumerate(class_names)
            if (real_labels == k).any()
        },
        "n_train": int((~held).sum()),
    }


#: What chapter 02's ``synthetic_source`` may name: a GAN variant, or ``"best"`` to let
#: :func:`choose_source` pick one.
SOURCES = ("conditional", "per_class", "best")


def choose_source(requested: str, cas: dict[str, dict], *, default: str = "conditional") -> str:
    """Which GAN variant writes the synthetic images chapter 03 trains on.

    ``"best"`` picks the variant whose images teach a classifier the most: the highest
    classification accuracy score (:func:`classification_accuracy_score`), measured on
    real validation images, so the test split plays no part in the choice. CAS rewards
    both what fidelity measures (images that carry their class) and what it cannot see
    (variety: a generator that draws one image per class fidelity would score 1 teaches
    little). Ties go to ``default``.

    Parameters
    ----------
    requested : {"conditional", "per_class", "best"}
        A variant by name, or ``"best"``.
    cas : dict of str to dict
        Each trained variant's :func:`classification_accuracy_score` (``accuracy`` is read).
    default : str, default="conditional"
        The variant a tie goes to.

    Returns
    -------
    str
        A key of ``cas``.

    Raises
    ------
    ValueError
        If ``requested`` is not one of :data:`SOURCES`, or names a variant that was not trained.

    Examples
    --------
    >>> choose_source("best", {"conditional": {"accuracy": 0.30}, "per_class": {"accuracy": 0.45}})
    'per_class'
    >>> choose_source("conditional", {"conditional": {"accuracy": 0.30}, "per_class": {"accuracy": 0.45}})
    'conditional'
    """
    if requested not in SOURCES:
        raise ValueError(f"synthetic_source must be one of {', '.join(SOURCES)}, got {requested!r}")
    if requested != "best":
        if requested not in cas:
            raise ValueError(
                f"synthetic_source={requested!r} needs that GAN trained; trained: {', '.join(cas)} "
                "(set compare_per_class=True to train the per-class GANs too)"
            )
        return requested
    # max() keeps the first of equals: put the default first.
    order = sorted(cas, key=lambda variant: variant != default)
    return max(order, key=lambda variant: cas[variant]["accuracy"])


def checks_record(
    fidelity_of: dict[str, Fidelity],
    cas: dict[str, dict],
    kept: np.ndarray,
    written: pd.DataFrame,
    *,
    judge_info: dict,
    seed: int,
) -> dict:
    """Chapter 02's class-fidelity numbers, as plain values for ``fidelity.json``.

    Parameters
    ----------
    fidelity_of : dict of str to Fidelity
        GAN variant to what :func:`class_fidelity` found for its images.
    cas : dict of str to dict
        GAN variant to its :func:`classification_accuracy_score`.
    kept : ndarray of bool, shape (n_synthetic,)
        Which sample images of the written variant (:func:`choose_source`) :func:`keep_faithful` keeps.
    written : DataFrame
        Per class of the written images: ``written``, ``faithful`` and what chapter 03 mixes in.
    judge_info : dict
        The judge's ``train.json`` facts (``epochs_run``, ``n_train``).
    seed : int
        The run's seed.
    """
    return {
        "seed": seed,
        "judge": {"epochs_run": judge_info["epochs_run"], "n_train": judge_info["n_train"]},
        "fidelity": {v: f.table.to_dict(orient="index") for v, f in fidelity_of.items()},
        "confusion": {v: f.confusion.to_dict(orient="index") for v, f in fidelity_of.items()},
        "classification_accuracy_score": cas,
        "filter": {
            "min_confidence": FILTER_CONFIDENCE,
            "kept": int(np.sum(kept)),
            "of": len(kept),
            "written_images": written.to_dict(orient="index"),
        },
    }


def generator_table(
    rows: pd.DataFrame,
    *,
    overall: float = TARGET_RATIO,
    per_class: float = TARGET_CLASS_RATIO,
    max_fid_over_floor: float = REALISM_FID_RATIO,
) -> pd.DataFrame:
    """One row per generator and training length of ``benchmarks/bench_gan.py``, against the targets.

    Parameters
    ----------
    rows : pandas.DataFrame
        One row per generator, seed and ``steps`` (the benchmark's record; records written
        before ``steps`` was recorded count as one length, 0): ``ratio`` (fidelity over the
        judge's ceiling), ``lowest class ratio``, ``CAS``, ``FID``, ``FID floor``, ``recall``
        and ``images/s``.
    overall, per_class, max_fid_over_floor : float
        The targets of :meth:`Fidelity.verdict`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(generator, steps)`` in the order first seen, means over seeds:
        ``fidelity ratio``, ``lowest class ratio``, ``CAS``, ``FID / floor`` (realism: about 1
        for unseen real scans), ``recall`` (variety), ``images/s``, ``seeds``, and
        ``carries its class``: all three targets met.
    """
    rows = rows.assign(steps=rows["steps"] if "steps" in rows else 0)
    rows = rows.assign(**{"FID / floor": rows["FID"] / rows["FID floor"]})
    by = rows.groupby(["generator", "steps"], sort=False)
    table = by[["ratio", "lowest class ratio", "CAS", "FID / floor", "recall", "images/s"]].mean()
    table = table.rename(columns={"ratio": "fidelity ratio"})
    table["seeds"] = by["seed"].nunique()
    table["carries its class"] = (
        (table["fidelity ratio"] >= overall)
        & (table["lowest class ratio"] >= per_class)
        & (table["FID / floor"] <= max_fid_over_floor)
    )
    return table
