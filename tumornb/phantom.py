"""Embedded default data: a synthetic brain-MRI dataset in the Kaggle layout.

There is no network at run time, so the book's default data is drawn here,
deterministically from a seed. Each image is a 2-D "slice" with anatomically
motivated content:

* scalp (bright fat), skull (dark cortical bone) and brain;
* a grey-matter ribbon with gyri and sulci around white matter, ventricles
  (axial and coronal views) or cerebellum, brainstem and corpus callosum
  (sagittal view);
* T1, contrast-enhanced T1 and T2 weighting, which change every tissue's
  brightness (CSF is dark on T1, bright on T2), as in the public datasets;
* class-specific lesions -- glioma: irregular intra-axial mass with a necrotic
  core and surrounding oedema; meningioma: well-circumscribed extra-axial mass
  against the skull; pituitary: midline mass at the skull base (in axial slices in
  front of the lateral ventricles, so that it cannot pass for one on T2);
  notumor: none -- every lesion visible on every weighting (a CNN must be able
  to learn the classes from ~1,000 images in minutes), at sizes and contrasts
  that still range from obvious to faint;
* small bright vessels in every class, a smooth intensity inhomogeneity (bias
  field) and Rician scanner noise.

Each lesion's binary mask is written under ``masks/`` and each brain's under
``brains/`` (outside the class folders, so loaders never mistake a mask for a
scan); chapter 05 uses them, through :func:`load_masks`, to check whether the
classifier looks at the lesion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from tumornb.labels import CLASS_NAMES
from tumornb.paths import atomic_path

__all__ = ["PhantomSlice", "load_masks", "make_slice", "mask_paths", "write_phantom_dataset"]

_RENDER_SIDE = 128
# Bump when the drawing changes, so a folder drawn by an older version is not reused.
GENERATOR_VERSION = 3

VIEWS = ("axial", "coronal", "sagittal")
SEQUENCES = ("T1", "T1c", "T2")
SPLIT_FOLDERS = {"train": "Training", "test": "Testing"}
_FILE_PREFIX = {"train": "Tr", "test": "Te"}

# Relative tissue brightness per MRI weighting (0 = air, 1 = brightest).
_TISSUE = {
    #         scalp skull  csf   gm    wm   vessel necrosis mass  rim  oedema  extra pit
    "T1": dict(scalp=0.85, skull=0.06, csf=0.12, gm=0.42, wm=0.62, vessel=0.75,
               necrosis=0.12, mass=0.30, rim=0.40, oedema=0.30, extra=0.80, pit=0.82),
    "T1c": dict(scalp=0.85, skull=0.06, csf=0.12, gm=0.42, wm=0.62, vessel=0.90,
                necrosis=0.14, mass=0.35, rim=0.92, oedema=0.30, extra=0.90, pit=0.85),
    "T2": dict(scalp=0.55, skull=0.05, csf=0.95, gm=0.55, wm=0.36, vessel=0.10,
               necrosis=0.95, mass=0.78, rim=0.62, oedema=0.78, extra=0.88, pit=0.90),
}  # fmt: skip


@dataclass(frozen=True)
class PhantomSlice:
    """One synthetic slice.

    Attributes
    ----------
    image : ndarray of shape (height, width), uint8
        The grey-level image.
    mask : ndarray of shape (height, width), bool
        Lesion pixels; all ``False`` for ``notumor``.
    brain : ndarray of shape (height, width), bool
        Brain pixels, so the chance level of "is a point in the lesion" is
        ``mask.sum() / brain.sum()``.
    view, sequence : str
        The simulated orientation and MRI weighting.
    """

    image: np.ndarray
    mask: np.ndarray
    brain: np.ndarray
    view: str
    sequence: str


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-scale random field smooth on the scale of ``1/cells`` of the image."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def _inside(distance: np.ndarray, edge: float | np.ndarray, softness: float) -> np.ndarray:
    """Soft indicator of ``distance < edge`` with a ramp of width ``softness``."""
    return np.clip((edge - distance) / softness + 0.5, 0.0, 1.0)


def _ellipse_distance(x, y, cx, cy, ax, ay):
    return np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)


def _blend(image: np.ndarray, weight: np.ndarray, value: float | np.ndarray) -> np.ndarray:
    return image + weight * (value - image)


def _place_lesion(label, rng, view, brain_ax, brain_ay, brain_cy):
    """Centre and radius of a lesion, in the head's coordinate frame."""
    if label == "glioma":
        radius = rng.uniform(0.14, 0.28)
        angle = rng.uniform(0, 2 * np.pi)
        reach = rng.uniform(0.15, 0.62)  # intra-axial: well inside the brain
        return (
            reach * brain_ax * np.cos(angle),
            brain_cy + reach * brain_ay * np.sin(angle),
        ), radius
    if label == "meningioma":
        radius = rng.uniform(0.12, 0.22)
        angle = rng.uniform(0, 2 * np.pi)
        if view != "axial":  # convexity or falx, not the skull base
            angle = rng.uniform(np.pi * 1.05, np.pi * 1.95)
        # extra-axial: centred just inside the inner table of the skull
        reach = 1.0 - 0.55 * radius / min(brain_ax, brain_ay)
        return (
            reach * brain_ax * np.cos(angle),
            brain_cy + reach * brain_ay * np.sin(angle),
        ), radius
    # pituitary: midline, at the skull base; in an axial slice, in front of the ventricles
    radius = rng.uniform(0.09, 0.15)
    base = {"axial": -0.5, "coronal": 0.62, "sagittal": 0.55}[view]
    return (
        rng.normal(0.0, 0.02) + (0.08 if view == "sagittal" else 0.0),
        brain_cy + base * brain_ay + rng.normal(0, 0.03),
    ), radius


@dataclass(frozen=True)
class _Frame:
    """A slice's pixel grid in head coordinates (unit: about half the shorter side), and its head."""

    x: np.ndarray
    y: np.ndarray
    px: float  # one pixel, in head units: the softness of tissue edges
    head_ax: float
    head_ay: float
    scalp_t: float
    skull_t: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape

    @property
    def brain_ax(self) -> float:
        return self.head_ax - self.scalp_t - self.skull_t

    @property
    def brain_ay(self) -> float:
        return self.head_ay - self.scalp_t - self.skull_t

    brain_cy = 0.0

    def brain_distance(self) -> np.ndarray:
        return _ellipse_distance(self.x, self.y, 0, self.brain_cy, self.brain_ax, self.brain_ay)


def _head_frame(rng: np.random.Generator, shape: tuple[int, int], view: str) -> _Frame:
    """A random pose of the head on the pixel grid, and the head's outline for ``view``."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    half = min(height, width) / 2
    xx, yy = (xx - width / 2 + 0.5) / half, (yy - height / 2 + 0.5) / half
    theta = rng.normal(0, 0.12)
    scale = rng.uniform(0.8, 0.97)
    dx, dy = rng.normal(0, 0.04, size=2)
    x = (np.cos(theta) * xx + np.sin(theta) * yy) / scale - dx
    y = (-np.sin(theta) * xx + np.cos(theta) * yy) / scale - dy
    # Axial heads are taller than wide, sagittal ones wider than tall.
    head_ax, head_ay = {
        "axial": (rng.uniform(0.74, 0.84), rng.uniform(0.9, 0.98)),
        "coronal": (rng.uniform(0.8, 0.9), rng.uniform(0.84, 0.94)),
        "sagittal": (rng.uniform(0.9, 0.98), rng.uniform(0.78, 0.88)),
    }[view]
    scalp_t, skull_t = rng.uniform(0.05, 0.08), rng.uniform(0.04, 0.07)
    return _Frame(x, y, 1.0 / half, head_ax, head_ay, scalp_t, skull_t)


def _scalp_and_skull(frame: _Frame, tissue: dict[str, float]) -> np.ndarray:
    """The head's outer layers: bright scalp fat around dark cortical bone."""
    head = _ellipse_distance(frame.x, frame.y, 0, 0, frame.head_ax, frame.head_ay)
    image = tissue["scalp"] * _inside(head, 1.0, frame.px * 2)
    return _blend(image, _inside(head, 1.0 - frame.scalp_t / frame.head_ax, frame.px * 2), tissue["skull"])


def _brain(rng: np.random.Generator, frame: _Frame, view: str, tissue: dict[str, float]) -> np.ndarray:
    """Folded cortex around white matter, the view's deep structures, and vessels."""
    x, y, px, shape, cy = frame.x, frame.y, frame.px, frame.shape, frame.brain_cy
    brain_d = frame.brain_distance()
    angle = np.arctan2(y - cy, x)
    # Cortex: a grey-matter ribbon whose inner edge folds into gyri, sulci of CSF.
    phases = rng.uniform(0, 2 * np.pi, size=3)
    folds = rng.integers(9, 15)
    gyri = (
        0.05 * np.sin(folds * angle + phases[0])
        + 0.03 * np.sin(2.3 * folds * angle + phases[1])
        + 0.03 * _smooth_noise(rng, shape, 6)
    )
    wm_edge = rng.uniform(0.7, 0.8) + gyri
    texture = 0.03 * _smooth_noise(rng, shape, 24)
    brain_img = tissue["gm"] + texture
    white = _inside(brain_d, wm_edge, px * 3 / frame.brain_ax)
    brain_img = _blend(brain_img, white, tissue["wm"] + texture)
    sulci = (np.cos(folds * angle + phases[2]) > 0.93) & (brain_d > wm_edge + 0.05)
    brain_img = _blend(brain_img, cv2.GaussianBlur(sulci.astype(np.float32), (0, 0), 1.0), tissue["csf"])
    brain_img = _deep_structures(rng, frame, view, tissue, brain_img)
    # Vessels: small bright dots in every class, so brightness alone is no label.
    for _ in range(rng.integers(2, 7)):
        r, a = rng.uniform(0.1, 0.85), rng.uniform(0, 2 * np.pi)
        dot = _ellipse_distance(
            x, y, r * frame.brain_ax * np.cos(a), cy + r * frame.brain_ay * np.sin(a), 0.02, 0.02
        )
        brain_img = _blend(brain_img, _inside(dot, 1.0, 0.5) * rng.uniform(0.3, 0.8), tissue["vessel"])
    return brain_img


def _deep_structures(
    rng: np.random.Generator, frame: _Frame, view: str, tissue: dict[str, float], brain_img: np.ndarray
) -> np.ndarray:
    """Ventricles in axial and coronal slices; corpus callosum, brainstem and cerebellum in sagittal."""
    x, y, cy = frame.x, frame.y, frame.brain_cy
    if view in ("axial", "coronal"):
        # Lateral ventricles: two CSF lobes either side of the midline.
        v_size = rng.uniform(0.6, 1.4)
        for side in (-1, 1):
            vx, vy = side * rng.uniform(0.07, 0.11), cy + rng.uniform(-0.12, 0.04)
            lobe = _ellipse_distance(
                x, y, vx, vy, 0.06 * v_size, (0.26 if view == "axial" else 0.12) * v_size
            )
            brain_img = _blend(brain_img, _inside(lobe, 1.0, 0.15), tissue["csf"])
        return brain_img
    cc = _ellipse_distance(x, y, 0.05, cy - 0.02, 0.42, 0.2)
    brain_img = _blend(brain_img, _inside(np.abs(cc - 1.0), 0.12, 0.05) * (y < cy), tissue["wm"])
    stem = _ellipse_distance(x, y, 0.12, cy + 0.62 * frame.brain_ay, 0.09, 0.3)
    brain_img = _blend(brain_img, _inside(stem, 1.0, 0.1), tissue["wm"] * 0.9 + tissue["gm"] * 0.1)
    cereb = _ellipse_distance(x, y, -0.42 * frame.brain_ax, cy + 0.5 * frame.brain_ay, 0.28, 0.2)
    folia = 0.5 + 0.5 * np.sin(40 * y + 8 * x)
    return _blend(
        brain_img,
        _inside(cereb, 1.0, 0.08),
        tissue["gm"] + 0.12 * folia * (tissue["wm"] - tissue["gm"]),
    )


def _lesion(
    rng: np.random.Generator,
    label: str,
    frame: _Frame,
    view: str,
    tissue: dict[str, float],
    brain_img: np.ndarray,
    brain_w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the class's lesion into the brain: the new brain, brain weight and lesion mask."""
    x, y, px, shape = frame.x, frame.y, frame.px, frame.shape
    if label == "notumor":
        return brain_img, brain_w, np.zeros(shape, dtype=bool)
    (cx, cy), radius = _place_lesion(label, rng, view, frame.brain_ax, frame.brain_ay, frame.brain_cy)
    # Fainter lesions, or ones nearly isointense with brain (as meningiomas are on
    # T1), left a 1,200-image phantom unlearnable in 20 epochs: chance accuracy.
    strength = rng.uniform(0.6, 1.0)
    d = _ellipse_distance(x, y, cx, cy, radius, radius * rng.uniform(0.75, 1.25))
    if label == "glioma":
        edge = (
            1.0
            + 0.25 * _smooth_noise(rng, shape, 10)
            + 0.12 * np.sin(5 * np.arctan2(y - cy, x - cx) + rng.uniform(0, 6))
        )
        oedema = _inside(d, edge + rng.uniform(0.5, 1.2), 0.5) * brain_w
        brain_img = _blend(brain_img, strength * oedema, tissue["oedema"])
        lesion = _inside(d, edge, px * 2 / radius)
        core = 0.5 + 0.5 * np.clip(1 - d / np.maximum(edge, 0.1), 0, 1)
        value = tissue["rim"] + (tissue["mass"] - tissue["rim"]) * core
        necrotic = _inside(d, edge * rng.uniform(0.0, 0.55), 0.2)
        value = _blend(value, necrotic, tissue["necrosis"]) + 0.05 * _smooth_noise(rng, shape, 30)
    elif label == "meningioma":
        lesion = _inside(d, 1.0, px * 2 / radius)
        value = tissue["extra"] + 0.02 * _smooth_noise(rng, shape, 20)
    else:
        lesion = _inside(d, 1.0, px * 2 / radius)
        value = tissue["pit"] + 0.03 * _smooth_noise(rng, shape, 20)
    if label != "meningioma":
        lesion = lesion * brain_w
    brain_img = _blend(brain_img, strength * lesion, value)
    # Extra-axial masses belong to the "brain" area too.
    return brain_img, np.maximum(brain_w, lesion), lesion > 0.5


def _scanner(
    rng: np.random.Generator, image: np.ndarray, out_shape: tuple[int, int]
) -> tuple[np.ndarray, Callable[[np.ndarray, int], np.ndarray]]:
    """Scanner physics on the rendered image: blur, bias field, resizing, Rician noise, uint8.

    Returns the pixels and the function that brings a mask drawn on the render grid to
    ``out_shape`` (nearest neighbour for masks, linear for weights).
    """
    shape = image.shape
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.0))
    image *= 1.0 + rng.uniform(0.05, 0.2) * _smooth_noise(rng, shape, 3)
    size = (out_shape[1], out_shape[0])

    def to_output(array: np.ndarray, interpolation: int) -> np.ndarray:
        return array if out_shape == shape else cv2.resize(array, size, interpolation=interpolation)

    image = to_output(image, cv2.INTER_LINEAR)
    sigma = rng.uniform(0.015, 0.05)
    # Rician: the magnitude of a complex signal with Gaussian noise in both channels.
    # OpenCV's generator, reseeded from ``rng``, is several times faster than numpy's here.
    real, imag = np.empty(out_shape, np.float32), np.empty(out_shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    cv2.randn(real, 0.0, sigma)
    cv2.randn(imag, 0.0, sigma)
    noisy = cv2.magnitude(image + real, imag)
    gain = 255.0 * rng.uniform(0.85, 1.0) / max(float(image.max()) + 2 * sigma, 1e-6)
    return cv2.convertScaleAbs(noisy, alpha=gain), to_output  # scaled, rounded, saturated to uint8


def make_slice(
    label: str,
    *,
    rng: np.random.Generator,
    height: int = 256,
    width: int = 256,
    view: str | None = None,
    sequence: str | None = None,
) -> PhantomSlice:
    """Draw one synthetic brain-MRI slice of class ``label``.

    Four steps, each its own function: the head's pose and outline (:func:`_head_frame`),
    the anatomy (:func:`_scalp_and_skull`, :func:`_brain`), the class's lesion
    (:func:`_lesion`) and the scanner (:func:`_scanner`).

    Parameters
    ----------
    label : {"glioma", "meningioma", "notumor", "pituitary"}
        The class to draw.
    rng : numpy.random.Generator
        Source of all randomness; the same generator state gives the same slice.
    height, width : int, default=256
        Output size in pixels.
    view : {"axial", "coronal", "sagittal"}, optional
        Orientation; drawn at random when omitted.
    sequence : {"T1", "T1c", "T2"}, optional
        MRI weighting; drawn at random when omitted.

    Returns
    -------
    PhantomSlice
    """
    if label not in CLASS_NAMES:
        raise ValueError(f"label must be one of {CLASS_NAMES}, got {label!r}")
    view = view or VIEWS[rng.integers(len(VIEWS))]
    sequence = sequence or SEQUENCES[rng.integers(len(SEQUENCES))]
    tissue = _TISSUE[sequence]
    # Anatomy is drawn on a grid of at most _RENDER_SIDE pixels on the short side and
    # resized; only noise is added at full size. Keeps a 512x512 slice cheap.
    zoom = min(1.0, _RENDER_SIDE / min(height, width))
    frame = _head_frame(rng, (max(1, round(height * zoom)), max(1, round(width * zoom))), view)
    image = _scalp_and_skull(frame, tissue)
    brain_w = _inside(frame.brain_distance(), 1.0, frame.px * 2)
    brain_img = _brain(rng, frame, view, tissue)
    brain_img, brain_w, mask = _lesion(rng, label, frame, view, tissue, brain_img, brain_w)
    image = _blend(image, brain_w, brain_img).astype(np.float32)
    pixels, to_output = _scanner(rng, image, (height, width))
    mask = to_output(mask.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)
    brain_w = to_output(brain_w.astype(np.float32), cv2.INTER_LINEAR)
    return PhantomSlice(pixels, mask, (brain_w > 0.5) | mask, view, sequence)


def _image_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    side = int(rng.integers(size_range[0], size_range[1] + 1))
    if rng.random() < 0.25:  # some downloads are not square
        return side, int(side * rng.uniform(0.8, 1.25))
    return side, side


def write_phantom_dataset(
    out_dir: str | os.PathLike[str],
    *,
    n_train_per_class: int = 300,
    n_test_per_class: int = 75,
    seed: int = 0,
    size_range: tuple[int, int] = (160, 288),
    rgb_fraction: float = 0.05,
    png_fraction: float = 0.05,
    duplicate_fraction: float = 0.02,
    n_jobs: int | None = None,
    progress: Callable | None = None,
) -> dict:
    """Write a phantom dataset in the Kaggle layout, deterministically from ``seed``.

    Layout::

        out_dir/Training/<class>/Tr-<cl>_0000.jpg   scans, one folder per class
        out_dir/Testing/<class>/Te-<cl>_0000.jpg
        out_dir/masks/<Split>/<class>/<stem>.png    lesion masks (not for notumor)
        out_dir/brains/<Split>/<class>/<stem>.png   brain masks (every class)
        out_dir/phantom.json                        parameters, counts and planted copies

    Parameters
    ----------
    out_dir : path-like
        Destination; must not already contain a dataset other than a phantom
        written with the same parameters (which is then reused as it is).
    n_train_per_class, n_test_per_class : int
        Images per class in each split.
    seed : int, default=0
        Every image is a pure function of ``(seed, split, class, index)``.
    size_range : (int, int)
        Smallest and largest image side in pixels.
    rgb_fraction, png_fraction : float
        Share of scans saved as 3-channel JPEG and as PNG, as real downloads have.
    duplicate_fraction : float, default=0.02
        Share of each class and split that are copies of training images:
        exact copies in training, resized copies (leakage) in testing.
    n_jobs : int, optional
        Worker threads; defaults to the number of CPU cores.
    progress : callable, optional
        Wrapper for an iterable, e.g. ``tqdm.tqdm``, to show progress.

    Returns
    -------
    dict
        The contents of ``phantom.json``.
    """
    out_dir = Path(out_dir)
    params = dict(
        generator_version=GENERATOR_VERSION,
        n_train_per_class=n_train_per_class,
        n_test_per_class=n_test_per_class,
        seed=seed,
        size_range=list(size_range),
        rgb_fraction=rgb_fraction,
        png_fraction=png_fraction,
        duplicate_fraction=duplicate_fraction,
    )
    stamp = out_dir / "phantom.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("params") == params:
            return info
        raise FileExistsError(
            f"{out_dir} already holds a phantom dataset with other parameters "
            "or from another version of tumornb.phantom; "
            "choose an empty directory or delete it first."
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; the phantom writer only fills an empty directory.")

    jobs = [
        (split, label, i)
        for split, n in (("train", n_train_per_class), ("test", n_test_per_class))
        for label in CLASS_NAMES
        for i in range(n)
    ]

    for folder in SPLIT_FOLDERS.values():
        for label in CLASS_NAMES:
            (out_dir / folder / label).mkdir(parents=True, exist_ok=True)
            (out_dir / "brains" / folder / label).mkdir(parents=True, exist_ok=True)
            if label != "notumor":
                (out_dir / "masks" / folder / label).mkdir(parents=True, exist_ok=True)
    # Processes, not threads: drawing is many small numpy calls that hold the GIL.
    with ProcessPoolExecutor(n_jobs or os.cpu_count() or 1) as pool:
        results = pool.map(partial(_write_one, out_dir, seed, params), jobs, chunksize=16)
        for _ in progress(results, total=len(jobs), desc="phantom") if progress else results:
            pass

    info = {
        "generator": "tumornb.phantom",
        "params": params,
        "classes": list(CLASS_NAMES),
        "counts": {
            s: {c: n for c in CLASS_NAMES}
            for s, n in (("train", n_train_per_class), ("test", n_test_per_class))
        },
        "planted_copies_per_class": {s: _n_copies(params, s) for s in SPLIT_FOLDERS},
    }
    with atomic_path(stamp) as tmp:  # written last: its presence means "complete"
        tmp.write_text(json.dumps(info, indent=2))
    return info


def _job_rng(seed: int, split: str, label: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, list(SPLIT_FOLDERS).index(split), CLASS_NAMES.index(label), index])


def _n_copies(params: dict, split: str) -> int:
    return round(params["duplicate_fraction"] * params[f"n_{split}_per_class"])


def _draw(
    seed: int, params: dict, split: str, label: str, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Pixels (grey or BGR), lesion mask, brain mask and file extension of one scan, from its own seed."""
    rng = _job_rng(seed, split, label, index)
    height, width = _image_size(rng, params["size_range"])
    sl = make_slice(label, rng=rng, height=height, width=width)
    pixels = sl.image
    if rng.random() < params["rgb_fraction"]:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    ext = ".png" if rng.random() < params["png_fraction"] else ".jpg"
    return pixels, sl.mask, sl.brain, ext


def _write_one(out_dir: Path, seed: int, params: dict, job: tuple[str, str, int]) -> str:
    """Draw and save one scan (and its mask); a pure function of ``seed`` and ``job``.

    The last few images of each class and split are copies of training images,
    as real downloads have: byte-identical in ``Training/``, resized and
    re-compressed in ``Testing/`` (a near duplicate that leaks across the split).
    """
    split, label, index = job
    n_copies = _n_copies(params, split)
    if index >= params[f"n_{split}_per_class"] - n_copies:
        n_originals = params["n_train_per_class"] - _n_copies(params, "train")
        source = int(_job_rng(seed, split, label, index).integers(n_originals))
        pixels, mask, brain, ext = _draw(seed, params, "train", label, source)
        if split == "test":
            size = (round(pixels.shape[1] * 0.9), round(pixels.shape[0] * 0.9))
            pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            mask, brain = (
                cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
                for m in (mask, brain)
            )
    else:
        pixels, mask, brain, ext = _draw(seed, params, split, label, index)
    stem = f"{_FILE_PREFIX[split]}-{label[:2]}_{index:04d}"
    folder = SPLIT_FOLDERS[split]
    _write_image(out_dir / folder / label / f"{stem}{ext}", pixels)
    if label != "notumor":
        _write_image(out_dir / "masks" / folder / label / f"{stem}.png", mask.astype(np.uint8) * 255)
    _write_image(out_dir / "brains" / folder / label / f"{stem}.png", brain.astype(np.uint8) * 255)
    return label


def _write_image(path: Path, pixels: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == ".jpg" else []
    ok, buf = cv2.imencode(path.suffix, pixels, params)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def mask_paths(data_dir: str | os.PathLike[str], image_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The lesion and brain mask files of one phantom scan (the lesion file exists for tumours only).

    Parameters
    ----------
    data_dir : path-like
        The phantom dataset.
    image_path : path-like
        One of its scans.

    Returns
    -------
    (Path, Path)
        Its lesion mask and brain mask.
    """
    image_path = Path(image_path)
    relative = Path(image_path.parent.parent.name, image_path.parent.name, f"{image_path.stem}.png")
    return Path(data_dir) / "masks" / relative, Path(data_dir) / "brains" / relative


def load_masks(
    data_dir: str | os.PathLike[str], image_paths, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lesion and brain masks of phantom scans, squared and resized exactly like the scans.

    Parameters
    ----------
    data_dir : path-like
        The phantom dataset (with ``phantom.json``).
    image_paths : iterable of path-like
        Scans inside ``data_dir``.
    image_size : int
        Side of the preprocessed images (see :func:`tumornb.data.preprocess`).

    Returns
    -------
    lesions, brains : ndarray of shape (n, image_size, image_size), bool
        A scan without a lesion (``notumor``) gets an empty lesion mask.

    Raises
    ------
    FileNotFoundError
        When ``data_dir`` is not a phantom dataset with brain masks (an older
        version, or real data).
    """
    from tumornb.data import to_square

    stamp = Path(data_dir) / "phantom.json"
    version = json.loads(stamp.read_text())["params"]["generator_version"] if stamp.exists() else None
    if version is None or version < 3:
        raise FileNotFoundError(
            f"{data_dir} is not a phantom dataset with lesion and brain masks "
            "(written by tumornb.phantom version 3 or later); masks exist for the embedded data only."
        )

    def read(path: Path, shape: tuple[int, int]) -> np.ndarray:
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.exists() else None
        if mask is None:
            mask = np.zeros(shape, np.uint8)
        return to_square(mask, image_size) > 127

    lesions, brains = [], []
    for image_path in image_paths:
        lesion_path, brain_path = mask_paths(data_dir, image_path)
        brain = cv2.imread(str(brain_path), cv2.IMREAD_GRAYSCALE)
        if brain is None:
            raise FileNotFoundError(f"no brain mask {brain_path} for {image_path}")
        brains.append(to_square(brain, image_size) > 127)
        lesions.append(read(lesion_path, brain.shape))
    empty = np.zeros((0, image_size, image_size), bool)
    return (np.stack(lesions), np.stack(brains)) if brains else (empty, empty.copy())
