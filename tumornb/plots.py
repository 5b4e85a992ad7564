"""Figures for the chapters.

Altair where a reader wants to hover and zoom, matplotlib/seaborn where a static figure reads better.

One calling convention, as in seaborn:

* **axes-level** matplotlib functions (one panel) take ``ax=None`` and return the
  ``matplotlib.axes.Axes`` they drew on, so a notebook can place several in one figure;
* **figure-level** matplotlib functions (grids of images or panels) make their own figure and
  return the ``matplotlib.figure.Figure``; with nothing to draw it says so in an empty figure;
* functions named ``*_chart`` return an Altair chart.

An Altair chart carries its data inside the page, and Altair refuses more than
5,000 rows (``MaxRowsError``). So no chart here embeds data that grows with the
dataset: counts are aggregated, curves thinned (:func:`thin_curve`) and scatter
plots sampled before charting, each to at most :data:`MAX_CHART_ROWS` rows,
whatever the number of images.
"""

from __future__ import annotations

import altair as alt
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd

from tumornb.fidelity import REALISM_FID_RATIO, TARGET_RATIO
from tumornb.labels import CLASS_NAMES, ordered_classes

__all__ = [
    "MAX_CHART_ROWS",
    "augmentation_grid",
    "cam_panels",
    "class_counts_chart",
    "comparison_chart",
    "confusion_matrices",
    "curves_chart",
    "distance_histograms",
    "embedding_chart",
    "gan_loss_chart",
    "generator_budget_figure",
    "grid_progression",
    "history_chart",
    "history_figure",
    "image_grid",
    "image_pairs",
    "intensity_histograms",
    "mean_images",
    "pointing_chart",
    "prediction_grid",
    "real_synthetic_gallery",
    "reliability_diagram",
    "seed_chart",
    "size_chart",
    "thin_curve",
]

#: The most data rows any chart of this module embeds in a page (Altair's own limit is 5,000).
MAX_CHART_ROWS = 2000
#: Points kept per curve: at 280 px wide, the thinned curve is off by less than 2 px.
CURVE_POINTS = 300
#: Points of a scatter plot (a seeded sample beyond that).
SCATTER_POINTS = 1500

_PALETTE = dict(zip(CLASS_NAMES, ("#4c72b0", "#dd8452", "#55a868", "#c44e52"), strict=True))


def _class_scale(labels) -> alt.Scale:
    names = ordered_classes(labels)
    return alt.Scale(domain=names, range=[_PALETTE.get(n, "#8c8c8c") for n in names])


def class_counts_chart(manifest: pd.DataFrame) -> alt.Chart:
    """Bar chart of usable images per class, one panel per split.

    Parameters
    ----------
    manifest : DataFrame
        Chapter 01's manifest (columns ``split``, ``label``, ``error``); unreadable files are left out.

    Returns
    -------
    altair.Chart
    """
    usable = manifest[manifest["error"] == ""]
    counts = usable.groupby(["split", "label"]).size().rename("images").reset_index()
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("label:N", title=None),
            y=alt.Y("images:Q", title="images"),
            color=alt.Color("label:N", scale=_class_scale(counts["label"]), legend=None),
            column=alt.Column("split:N", title=None, sort=["train", "test"]),
            tooltip=["split", "label", "images"],
        )
        .properties(width=220, height=200, title="Images per class")
    )


def thin_curve(x: np.ndarray, y: np.ndarray, max_points: int = CURVE_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` points spread evenly along a curve, both ends included.

    A ROC or precision-recall curve has a point per distinct score, so thousands on a
    real test split. Points picked at equal steps of path length keep its shape: the
    thinned polyline stays within ``path length / (max_points - 1)`` of the original.

    Parameters
    ----------
    x, y : ndarray of shape (n_points,)
        The curve's points, in drawing order.
    max_points : int, default=CURVE_POINTS
        At least 2.

    Returns
    -------
    ndarray of int, shape (n_kept,)
        Increasing indices into ``x`` and ``y``; all of them when ``n_points <= max_points``.

    Examples
    --------
    >>> x = np.linspace(0, 1, 1001)
    >>> kept = thin_curve(x, x**2, max_points=5)
    >>> kept[0], kept[-1], len(kept) <= 5
    (np.int64(0), np.int64(1000), True)
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    targets = np.linspace(0.0, along[-1], max_points)
    kept = np.searchsorted(along, targets, side="left").clip(0, n - 1)
    return np.unique(np.concatenate([[0], kept, [n - 1]]))


def _size_table(usable: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, int]:
    """Files per (width, height, mode), sides rounded to the smallest power-of-two step that fits."""
    step = 1
    while True:
        binned = usable.assign(
            width=(usable["width"] // step) * step, height=(usable["height"] // step) * step
        )
        sizes = binned.groupby(["width", "height", "mode"]).size().rename("files").reset_index()
        if len(sizes) <= max_rows:
            return sizes, step
        step *= 2


def size_chart(manifest: pd.DataFrame, *, max_points: int = SCATTER_POINTS) -> alt.Chart:
    """Stored image sizes (width x height), sized by how many files share each.

    With more distinct sizes than ``max_points``, sides are rounded down to a
    power-of-two step (stated in the title) so the chart stays small.

    Parameters
    ----------
    manifest : DataFrame
        Chapter 01's manifest (columns ``width``, ``height``, ``mode``, ``error``).
    max_points : int, default=SCATTER_POINTS
        Most distinct sizes drawn.

    Returns
    -------
    altair.Chart
    """
    usable = manifest[manifest["error"] == ""]
    sizes, step = _size_table(usable, max_points)
    title = "Image sizes and colour modes" + (f" (sides rounded down to {step} px)" if step > 1 else "")
    return (
        alt.Chart(sizes)
        .mark_circle(opacity=0.7)
        .encode(
            x=alt.X("width:Q", title="width (px)"),
            y=alt.Y("height:Q", title="height (px)"),
            size=alt.Size("files:Q", title="files"),
            color=alt.Color("mode:N", title="mode"),
            tooltip=["width", "height", "mode", "files"],
        )
        .properties(width=360, height=280, title=title)
        .interactive()
    )


def embedding_chart(
    coords: np.ndarray, labels, splits, paths, *, n_total: int | None = None, max_points: int = MAX_CHART_ROWS
) -> alt.Chart:
    """Scatter of a 2-D embedding, coloured by class; hover shows the file.

    Parameters
    ----------
    coords : ndarray of shape (n_images, 2)
    labels, splits, paths : sequences of length n_images
    n_total : int, optional
        How many images the embedded ones were sampled from; stated in the title.
    max_points : int, default=MAX_CHART_ROWS
        Beyond this many points, a seeded sample of them is drawn (and the title says so).

    Returns
    -------
    altair.Chart
    """
    keep = np.arange(len(coords))
    if len(keep) > max_points:
        keep = np.sort(np.random.default_rng(0).choice(len(keep), max_points, replace=False))
    n_total = max(n_total or len(coords), len(coords))
    title = "t-SNE map of the images" + (
        f" ({len(keep):,} of {n_total:,}, a random sample)" if len(keep) < n_total else ""
    )
    labels, splits, paths = (np.asarray(list(v), dtype=object)[keep] for v in (labels, splits, paths))
    coords = np.asarray(coords)[keep]
    frame = pd.DataFrame(
        {
            "x": coords[:, 0],
            "y": coords[:, 1],
            "label": list(labels),
            "split": list(splits),
            "file": [str(p).rsplit("/", 1)[-1] for p in paths],
        }
    )
    return (
        alt.Chart(frame)
        .mark_circle(size=18, opacity=0.7)
        .encode(
            x=alt.X("x:Q", axis=None),
            y=alt.Y("y:Q", axis=None),
            color=alt.Color("label:N", scale=_class_scale(frame["label"]), title="class"),
            shape=alt.Shape("split:N", title="split"),
            tooltip=["file", "label", "split"],
        )
        .properties(width=460, height=400, title=title)
        .interactive()
    )


def _nothing_to_show(what: str):
    """A small figure that says what is missing, so figure-level functions always return a Figure."""
    fig, ax = plt.subplots(figsize=(4, 0.6))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{what}: nothing to show", ha="center", va="center")
    return fig


def intensity_histograms(images: np.ndarray, labels, *, ax=None):
    """Per-class histogram of pixel intensities (density), the background excluded.

    Pixels darker than 10/255 are air outside the head; including them would
    hide every other difference behind one spike at zero.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    labels : sequence of str, length n
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    labels = np.asarray(labels)
    levels = np.arange(256)
    for label in ordered_classes(labels):
        counts = np.bincount(images[labels == label].ravel(), minlength=256).astype(float)
        counts[:10] = 0
        ax.step(
            levels,
            counts / counts.sum(),
            where="mid",
            color=_PALETTE.get(label),
            label=label,
            lw=1.2,
        )
    ax.set(
        xlabel="intensity (0-255)",
        ylabel="share of pixels",
        xlim=(0, 255),
        title="Pixel intensities by class (background excluded)",
    )
    ax.legend(title="class")
    return ax


def mean_images(images: np.ndarray, labels, *, axes=None):
    """The mean image of each class, on one shared grey scale.

    Parameters
    ----------
    images : ndarray of shape (n, side, side)
    labels : sequence of str, length n
    axes : sequence of matplotlib.axes.Axes, optional
        One per class; a new figure when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = np.asarray(labels)
    names = ordered_classes(labels)
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.8))
    axes = np.atleast_1d(axes)
    means = [images[labels == name].mean(axis=0) for name in names]
    vmax = max(float(m.max()) for m in means)
    for ax, name, mean in zip(axes, names, means, strict=True):
        ax.imshow(mean, cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"{name} (n={int((labels == name).sum())})", fontsize=9)
        ax.axis("off")
    axes[0].figure.suptitle("Mean image per class")
    return axes[0].figure


def image_grid(images: np.ndarray, labels, *, per_class: int = 6, seed: int = 0, titles=None):
    """A grid with ``per_class`` random images of each class in one row each.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    labels : sequence of str, length n
    per_class : int, default=6
    seed : int, default=0
        Which images are drawn.
    titles : sequence of length n, optional
        A title above each image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = np.asarray(labels)
    names = ordered_classes(labels)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(names), per_class, figsize=(1.6 * per_class, 1.7 * len(names)), squeeze=False
    )
    for row, name in zip(axes, names, strict=True):
        members = np.flatnonzero(labels == name)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col, ax in enumerate(row):
            ax.axis("off")
            if col < len(chosen):
                ax.imshow(images[chosen[col]], cmap="gray", vmin=0, vmax=255)
                if titles is not None:
                    ax.set_title(str(titles[chosen[col]]), fontsize=7)
        row[0].text(-0.08, 0.5, name, transform=row[0].transAxes, rotation=90, va="center", ha="right")
    fig.tight_layout()
    return fig


def image_pairs(left: np.ndarray, right: np.ndarray, *, captions=None, max_pairs: int = 6):
    """Pairs of images one above the other (e.g. a test image above its training duplicate).

    Parameters
    ----------
    left, right : ndarray of shape (n, side, side), uint8
        The top and bottom image of each pair.
    captions : sequence of str, optional
        One per pair, above it.
    max_pairs : int, default=6

    Returns
    -------
    matplotlib.figure.Figure
        A figure saying so when there is nothing to show.
    """
    n = min(len(left), max_pairs)
    if n == 0:
        return _nothing_to_show("no image pairs")
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0), squeeze=False)
    for k in range(n):
        for row, image in enumerate((left[k], right[k])):
            axes[row, k].imshow(image, cmap="gray", vmin=0, vmax=255)
            axes[row, k].axis("off")
        if captions is not None:
            axes[0, k].set_title(captions[k], fontsize=7)
    fig.tight_layout()
    return fig


def _long_history(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Histories of several variants as one long table: variant, epoch, metric, split, value."""
    frames = []
    for variant, history in histories.items():
        for metric in ("loss", "accuracy"):
            for split, column in (("train", metric), ("validation", f"val_{metric}")):
                frames.append(
                    pd.DataFrame(
                        {
                            "variant": variant,
                            "epoch": history["epoch"].to_numpy() + 1,
                            "metric": metric,
                            "split": split,
                            "value": history[column].to_numpy(),
                        }
                    )
                )
    return pd.concat(frames, ignore_index=True)


def history_chart(histories: dict[str, pd.DataFrame]) -> alt.Chart:
    """Interactive loss and accuracy per epoch, train against validation, one colour per variant.

    Parameters
    ----------
    histories : dict of str to DataFrame
        ``history.csv`` tables (columns ``epoch``, ``loss``, ``accuracy``,
        ``val_loss``, ``val_accuracy``) by variant name.

    Returns
    -------
    altair.FacetChart
    """
    data = _long_history(histories)
    pick = alt.selection_point(fields=["variant"], bind="legend")
    base = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            color=alt.Color("variant:N", title="variant"),
            strokeDash=alt.StrokeDash("split:N", title="split", sort=["train", "validation"]),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
            tooltip=["variant", "split", "epoch", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=300, height=220)
        .add_params(pick)
    )
    return base.facet(column=alt.Column("metric:N", title=None, sort=["loss", "accuracy"])).resolve_scale(
        y="independent"
    )


def history_figure(histories: dict[str, pd.DataFrame]):
    """The same history as :func:`history_chart`, as a static seaborn figure.

    Parameters
    ----------
    histories : dict of str to DataFrame
        ``history.csv`` tables by variant name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns

    grid = sns.relplot(
        data=_long_history(histories),
        x="epoch",
        y="value",
        hue="variant",
        style="split",
        col="metric",
        kind="line",
        markers=True,
        height=3.0,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    grid.set_titles("{col_name}")
    return grid.figure


def augmentation_grid(image: np.ndarray, augmentation=None, *, n: int = 11, seed: int = 0):
    """One image and ``n`` random augmentations of it, as the training pipeline makes them.

    Parameters
    ----------
    image : ndarray of shape (side, side), uint8
    augmentation : tumornb.pipeline.Augmentation, optional
        Default: chapter 03's.
    n : int, default=11
    seed : int, default=0

    Returns
    -------
    matplotlib.figure.Figure
    """
    import tensorflow as tf

    from tumornb.pipeline import Augmentation, augment_batch

    batch = tf.constant(np.repeat(image[None, ..., None], n, axis=0), tf.float32)
    warped = augment_batch(batch, tf.constant([seed, 0]), augmentation or Augmentation()).numpy()[..., 0]
    cols = (n + 2) // 2
    fig, axes = plt.subplots(2, cols, figsize=(1.6 * cols, 3.4), squeeze=False)
    for ax, picture, title in zip(axes.ravel(), [image, *warped], ["original"] + [""] * n, strict=False):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    return fig


def gan_loss_chart(history: pd.DataFrame, variant: str = "") -> alt.Chart:
    """Discriminator and generator hinge losses per epoch, one line per GAN (interactive).

    Parameters
    ----------
    history : DataFrame
        ``TrainedGAN.history``: columns ``epoch``, ``d_loss``, ``g_loss``, ``model``.

    Returns
    -------
    altair.Chart
    """
    data = history.melt(id_vars=["epoch", "model"], value_vars=["d_loss", "g_loss"], var_name="loss")
    data["epoch"] += 1
    data["loss"] = data["loss"].map({"d_loss": "discriminator", "g_loss": "generator"})
    return (
        alt.Chart(data, title=f"GAN losses{f' ({variant})' if variant else ''}")
        .mark_line()
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title="hinge loss"),
            color=alt.Color("model:N", title="GAN"),
            strokeDash=alt.StrokeDash("loss:N", title="network"),
            tooltip=["model", "loss", "epoch", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=420, height=220)
        .interactive()
    )


def grid_progression(grids: list[tuple[int, np.ndarray]], *, max_panels: int = 6):
    """The fixed noise grid at several epochs, left to right.

    Parameters
    ----------
    grids : list of (int, ndarray of shape (height, width))
        ``(epoch, grid image)`` pairs, from :func:`tumornb.synthesis.saved_grids`.
    max_panels : int, default=6
        Evenly spaced epochs, the last always included.

    Returns
    -------
    matplotlib.figure.Figure
        A figure saying so when there is nothing to show.
    """
    if not grids:
        return _nothing_to_show("no saved grids")
    picks = np.unique(np.linspace(0, len(grids) - 1, min(max_panels, len(grids))).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(2.6 * len(picks), 3.0), squeeze=False)
    for ax, i in zip(axes[0], picks, strict=True):
        epoch, image = grids[i]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"epoch {epoch}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def distance_histograms(synthetic: np.ndarray, fresh: np.ndarray, threshold: float, *, ax=None):
    """Distances to the nearest training image: synthetic images beside fresh real ones, and the copy line.

    Parameters
    ----------
    synthetic : ndarray of shape (n_synthetic,)
        Each synthetic image's distance to its nearest training image.
    fresh : ndarray of shape (n_fresh,)
        The same for real images the GAN never saw (the null, see :mod:`tumornb.quality`).
    threshold : float
        The near-copy distance.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.linspace(0, max(synthetic.max(initial=0), fresh.max(initial=0)) * 1.02 + 1e-9, 40)
    ax.hist(fresh, bins=bins, density=True, alpha=0.5, label="unseen real → nearest training image")
    ax.hist(synthetic, bins=bins, density=True, alpha=0.5, label="synthetic → nearest training image")
    ax.axvline(threshold, color="k", ls="--", lw=1, label="near-copy threshold")
    ax.set(xlabel="distance in feature space", ylabel="density", title="How close to a training image?")
    ax.legend(fontsize=8)
    return ax


def generator_budget_figure(
    table: pd.DataFrame, *, overall: float = TARGET_RATIO, max_fid_over_floor: float = REALISM_FID_RATIO
):
    """How a generator's numbers move with its training length: fidelity, realism and variety per step count.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`tumornb.fidelity.generator_table`: indexed by ``(generator, steps)``.
    overall : float, default=TARGET_RATIO
        The fidelity ratio target, drawn as a line.
    max_fid_over_floor : float, default=REALISM_FID_RATIO
        The realism bound, drawn as a line.

    Returns
    -------
    matplotlib Figure
        Three panels (fidelity ratio and lowest class ratio, FID over floor, recall), one
        line per generator.
    """
    panels = [
        (["fidelity ratio", "lowest class ratio"], overall, "fidelity / judge's ceiling"),
        (["FID / floor"], max_fid_over_floor, "FID / real floor, log scale (1 = unseen scans)"),
        (["recall"], None, "recall (variety)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, (columns, target, title) in zip(axes, panels, strict=True):
        for colour, (generator, runs) in enumerate(table.groupby(level="generator", sort=False)):
            steps = runs.index.get_level_values("steps")
            # One colour per generator in every panel; solid overall, dashed its lowest class.
            for column, style in zip(columns, ("-o", "--s"), strict=False):
                label = generator if len(columns) == 1 else f"{generator}: {column}"
                ax.plot(steps, runs[column], style, color=f"C{colour % 10}", label=label)
        if target is not None:
            ax.axhline(target, color="k", lw=1, ls=":", label="target" if len(columns) > 1 else "bound")
        ax.set(xlabel="generator steps", title=title)
        if "FID / floor" in columns:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
            low, high = ax.get_ylim()
            if high / low < 20:  # within about a decade the minor ticks are the only labels
                ax.yaxis.set_minor_formatter(mticker.FormatStrFormatter("%g"))
        else:
            ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrices(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], *, title: str = ""):
    """Confusion matrix as counts and row-normalised (recall on the diagonal), side by side.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,), int
        Class indices into ``class_names``.
    class_names : list of str
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure
    """
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(y_true, y_pred, labels=np.arange(len(class_names)))
    with np.errstate(invalid="ignore"):
        rates = counts / counts.sum(1, keepdims=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, data, fmt, name in (
        (axes[0], counts, "d", "counts"),
        (axes[1], rates, ".2f", "share of the true class"),
    ):
        sns.heatmap(
            data,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            cbar=False,
            ax=ax,
            xticklabels=class_names,
            yticklabels=class_names,
        )
        ax.set(xlabel="predicted", ylabel="true", title=f"{title} — {name}" if title else name)
    fig.tight_layout()
    return fig


def curves_chart(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], *, max_points: int = CURVE_POINTS
) -> alt.Chart:
    """One-vs-rest ROC and precision-recall curves per class, with the area in the legend (interactive).

    Parameters
    ----------
    y_true : ndarray of shape (n_images,)
        Class indices.
    probabilities : ndarray of shape (n_images, n_classes)
    class_names : list of str
    max_points : int, default=CURVE_POINTS
        Points drawn per curve (:func:`thin_curve`); the areas use every point.

    Returns
    -------
    altair.HConcatChart
    """
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    frames = []
    for i, name in enumerate(class_names):
        positive = np.asarray(y_true) == i
        fpr, tpr, _ = roc_curve(positive, probabilities[:, i])
        precision, recall, _ = precision_recall_curve(positive, probabilities[:, i])
        # One label per class for both panels, so one legend (and one click) serves both.
        label = f"{name} (AUC {auc(fpr, tpr):.3f}, AP {auc(recall, precision):.3f})"
        for curve, x, y in (("ROC", fpr, tpr), ("precision-recall", recall, precision)):
            kept = thin_curve(x, y, max_points)
            frames.append(pd.DataFrame({"curve": curve, "class": label, "x": x[kept], "y": y[kept]}))
    data = pd.concat(frames, ignore_index=True)
    pick = alt.selection_point(fields=["class"], bind="legend")

    def panel(curve: str, x_title: str, y_title: str) -> alt.Chart:
        return (
            alt.Chart(data[data["curve"] == curve], title=curve)
            .mark_line()  # straight segments between the points, as the trapezoidal areas assume
            .encode(
                x=alt.X("x:Q", title=x_title, scale=alt.Scale(domain=[0, 1])),
                y=alt.Y("y:Q", title=y_title, scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("class:N", title=None),
                opacity=alt.condition(pick, alt.value(1.0), alt.value(0.15)),
                tooltip=["class", alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".3f")],
            )
            .properties(width=280, height=250)
        )

    # The selection is defined once, in the first panel; the second reads it.
    return alt.hconcat(
        panel("ROC", "false positive rate", "true positive rate").add_params(pick),
        panel("precision-recall", "recall", "precision"),
    )


def reliability_diagram(tables: dict[str, pd.DataFrame], *, ax=None):
    """Accuracy against confidence per bin, one line per model; the diagonal is perfect calibration.

    Parameters
    ----------
    tables : dict of str to DataFrame
        :func:`tumornb.evaluation.reliability_table` results by name.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfectly calibrated")
    for name, table in tables.items():
        ax.plot(table["confidence"], table["accuracy"], marker="o", label=name)
    ax.set(xlabel="confidence (top class)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="Reliability")
    ax.legend(fontsize=8)
    return ax


def comparison_chart(table: pd.DataFrame) -> alt.Chart:
    """Differences with 95% intervals, one row per comparison: a dot and a bar across zero.

    Parameters
    ----------
    table : DataFrame
        Columns ``comparison``, ``metric``, ``difference``, ``low``, ``high`` (in points).

    Returns
    -------
    altair.LayerChart
    """
    base = alt.Chart(table).encode(
        y=alt.Y("comparison:N", title=None), color=alt.Color("metric:N"), yOffset="metric:N"
    )
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="difference (points)"), x2="high:Q")
    dots = base.mark_point(filled=True, size=60).encode(
        x="difference:Q", tooltip=["comparison", "metric", "difference", "low", "high"]
    )
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="0.5", strokeDash=[4, 3]).encode(x="x:Q")
    return (zero + bars + dots).properties(width=420, height=alt.Step(28))


RIGHT_COLOUR, WRONG_COLOUR = "#1a7f37", "#cf222e"


def prediction_grid(images: np.ndarray, true, predicted, confidence, *, columns: int = 6, title: str = ""):
    """Images with ``true / predicted (confidence)`` titles: green when right, red when wrong.

    Parameters
    ----------
    images : ndarray of shape (n, side, side)
    true, predicted : sequences of str
    confidence : sequence of float
        The predicted class's probability.
    columns : int, default=6

    Returns
    -------
    matplotlib.figure.Figure
        A figure saying so when there is nothing to show.
    """
    n = len(images)
    if n == 0:
        return _nothing_to_show("no images")
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        right = true[k] == predicted[k]
        ax.set_title(
            f"true: {true[k]}\npred: {predicted[k]} ({confidence[k]:.0%})",
            fontsize=7,
            color=RIGHT_COLOUR if right else WRONG_COLOUR,
        )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def cam_panels(
    images: np.ndarray, heat_maps: np.ndarray, captions, *, lesions: np.ndarray | None = None, title: str = ""
):
    """Each image above its Grad-CAM overlay; the lesion outlined in white when known.

    Parameters
    ----------
    images : ndarray of shape (n, side, side), uint8
    heat_maps : ndarray of shape (n, side, side)
        From :func:`tumornb.explain.grad_cam`, scaled to [0, 1].
    captions : sequence of str, length n
    lesions : ndarray of shape (n, side, side), bool, optional
    title : str, default=""

    Returns
    -------
    matplotlib.figure.Figure
        A figure saying so when there is nothing to show.
    """
    from tumornb.explain import overlay

    n = len(images)
    if n == 0:
        return _nothing_to_show("no images")
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.1), squeeze=False)
    for k in range(n):
        axes[0, k].imshow(images[k], cmap="gray", vmin=0, vmax=255)
        axes[1, k].imshow(overlay(images[k], heat_maps[k]))
        peak = np.unravel_index(np.argmax(heat_maps[k]), heat_maps[k].shape)
        axes[1, k].plot(peak[1], peak[0], marker="+", color="white", markersize=9, mew=1.5)
        if lesions is not None and lesions[k].any():
            axes[1, k].contour(lesions[k], levels=[0.5], colors="white", linewidths=0.8)
        axes[0, k].set_title(captions[k], fontsize=7)
        for ax in axes[:, k]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def pointing_chart(table: pd.DataFrame) -> alt.Chart:
    """Pointing-game score per class (bars, with bootstrap interval) against its chance level (ticks).

    Parameters
    ----------
    table : DataFrame
        :func:`tumornb.explain.pointing_summary` rows: ``class``, ``score``, ``low``, ``high``, ``chance``.

    Returns
    -------
    altair.Chart
    """
    base = alt.Chart(table).encode(y=alt.Y("class:N", title=None))
    bars = base.mark_bar(opacity=0.8).encode(
        x=alt.X("score:Q", title="share of heat-map peaks inside the lesion", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("class:N", scale=_class_scale(table["class"]), legend=None),
        tooltip=["class", alt.Tooltip("score:Q", format=".2f"), alt.Tooltip("chance:Q", format=".3f"), "n"],
    )
    interval = base.mark_rule(color="black").encode(x="low:Q", x2="high:Q")
    chance = base.mark_tick(color="black", thickness=2, size=18).encode(x="chance:Q")
    return (bars + interval + chance).properties(
        width=420, height=34 * len(table), title="Pointing game (tick: chance, a point dropped on the brain)"
    )


def real_synthetic_gallery(
    real: np.ndarray,
    real_labels,
    synthetic: np.ndarray,
    synthetic_labels,
    *,
    per_class: int = 4,
    seed: int = 0,
):
    """One row per class: ``per_class`` random real images, then as many synthetic ones.

    Parameters
    ----------
    real : ndarray of shape (n_real, side, side), uint8
    real_labels : sequence of str, length n_real
    synthetic : ndarray of shape (n_synthetic, side, side), uint8
    synthetic_labels : sequence of str, length n_synthetic
    per_class : int, default=4
    seed : int, default=0

    Returns
    -------
    matplotlib.figure.Figure
    """
    real_labels, synthetic_labels = np.asarray(real_labels), np.asarray(synthetic_labels)
    names = ordered_classes(real_labels)
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(names), 2 * per_class, figsize=(1.5 * 2 * per_class, 1.6 * len(names)), squeeze=False
    )
    for row, name in zip(axes, names, strict=True):
        for offset, (images, labels) in enumerate(((real, real_labels), (synthetic, synthetic_labels))):
            members = np.flatnonzero(labels == name)
            chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
            for col in range(per_class):
                ax = row[offset * per_class + col]
                ax.axis("off")
                if col < len(chosen):
                    ax.imshow(images[chosen[col]], cmap="gray", vmin=0, vmax=255)
        row[0].text(-0.08, 0.5, name, transform=row[0].transAxes, rotation=90, va="center", ha="right")
    axes[0, 0].set_title("real", loc="left", fontsize=9)
    axes[0, per_class].set_title("synthetic (chapter 02)", loc="left", fontsize=9)
    fig.tight_layout()
    return fig


def seed_chart(per_run: pd.DataFrame) -> alt.Chart:
    """Each training run's test metric as a dot, the mean over seeds as a tick, one row per variant.

    Parameters
    ----------
    per_run : DataFrame
        Long format: ``variant``, ``seed``, ``metric``, ``value``.

    Returns
    -------
    altair.FacetChart
    """
    base = alt.Chart(per_run).encode(y=alt.Y("variant:N", title=None, sort=None))
    dots = base.mark_circle(size=60, opacity=0.7).encode(
        x=alt.X("value:Q", title="on the test split", scale=alt.Scale(zero=False)),
        color=alt.Color("seed:N", title="seed"),
        tooltip=["variant", "seed", alt.Tooltip("value:Q", format=".3f")],
    )
    means = base.mark_tick(color="black", thickness=2, size=22).encode(x="mean(value):Q")
    return (
        (dots + means)
        .properties(width=300, height=alt.Step(30))
        .facet(column=alt.Column("metric:N", title=None))
    )
