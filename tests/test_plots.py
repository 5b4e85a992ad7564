"""Charts whose embedded data does not grow with the dataset (Altair refuses more than 5,000 rows)."""

import numpy as np
import pandas as pd
import pytest

from tumornb import plots
from tumornb.labels import CLASS_NAMES


def chart_rows(chart) -> list[int]:
    """Row count of every dataset a chart embeds (``to_dict`` raises ``MaxRowsError`` past 5,000)."""
    spec = chart.to_dict()
    return [len(rows) for rows in spec.get("datasets", {}).values()]


def test_thin_curve_keeps_both_ends_and_the_shape():
    """Check that a 10,000-point curve thins to at most 300 points within one step of path length."""
    x = np.sort(np.random.default_rng(0).random(10_000))
    y = np.sqrt(x)
    kept = plots.thin_curve(x, y, max_points=300)
    assert kept[0] == 0 and kept[-1] == len(x) - 1
    assert len(kept) <= 300 and np.all(np.diff(kept) > 0)
    path = np.hypot(np.diff(x), np.diff(y)).sum()
    redrawn = np.interp(x, x[kept], y[kept])
    assert np.abs(redrawn - y).max() <= path / 299


def test_thin_curve_leaves_a_short_curve_alone_and_refuses_fewer_than_two_points():
    """Check that a curve already under the limit is kept whole, and max_points=1 is refused."""
    assert plots.thin_curve(np.arange(5.0), np.arange(5.0), max_points=10).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="at least 2"):
        plots.thin_curve(np.arange(5.0), np.arange(5.0), max_points=1)


def test_curves_chart_of_a_large_test_split_stays_small():
    """Check ROC/PR curves of 8,000 test images: no MaxRowsError, at most CURVE_POINTS per curve."""
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, 8000)
    logits = rng.normal(size=(8000, 4)) + 2.0 * np.eye(4)[y_true]
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rows = chart_rows(plots.curves_chart(y_true, probabilities, list(CLASS_NAMES)))
    assert rows and max(rows) <= 4 * plots.CURVE_POINTS <= plots.MAX_CHART_ROWS


def test_curves_chart_keeps_the_areas_of_the_full_curves():
    """Check that the legend's AUC is computed from every point, not from the thinned curve."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, 6000)
    probabilities = rng.dirichlet(np.ones(4), 6000) + 0.3 * np.eye(4)[y_true]
    probabilities /= probabilities.sum(1, keepdims=True)
    spec = plots.curves_chart(y_true, probabilities, list(CLASS_NAMES)).to_dict()
    legend = {row["class"] for rows in spec["datasets"].values() for row in rows}
    expected = roc_auc_score(y_true == 0, probabilities[:, 0])
    assert any(label.startswith(f"glioma (AUC {expected:.3f}, AP ") for label in legend)


def test_size_chart_rounds_sizes_when_there_are_too_many():
    """Check that 6,000 distinct image sizes chart as at most SCATTER_POINTS rows, with the step named."""
    rng = np.random.default_rng(3)
    manifest = pd.DataFrame(
        {
            "width": rng.integers(150, 1500, 6000),
            "height": rng.integers(150, 1500, 6000),
            "mode": rng.choice(["L", "RGB"], 6000),
            "error": "",
        }
    )
    chart = plots.size_chart(manifest)
    rows = chart_rows(chart)
    assert max(rows) <= plots.SCATTER_POINTS
    assert "rounded down to" in chart.to_dict()["title"]
    spec = chart.to_dict()
    assert sum(r["files"] for r in next(iter(spec["datasets"].values()))) == 6000


def test_size_chart_keeps_exact_sizes_when_few():
    """Check that a handful of sizes is charted exactly, without a rounding note."""
    manifest = pd.DataFrame({"width": [512, 512, 256], "height": [512, 512, 300], "mode": "L", "error": ""})
    spec = plots.size_chart(manifest).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert sorted((r["width"], r["height"], r["files"]) for r in rows) == [(256, 300, 1), (512, 512, 2)]
    assert spec["title"] == "Image sizes and colour modes"


def test_embedding_chart_samples_beyond_its_limit_and_says_so():
    """Check that 7,000 points chart as max_points rows and the title states the sample size."""
    n = 7000
    coords = np.random.default_rng(4).normal(size=(n, 2))
    labels = np.resize(np.array(CLASS_NAMES), n)
    chart = plots.embedding_chart(coords, labels, ["train"] * n, [f"f{i}.jpg" for i in range(n)])
    assert chart_rows(chart) == [plots.MAX_CHART_ROWS]
    assert f"{plots.MAX_CHART_ROWS:,} of 7,000" in chart.to_dict()["title"]


def test_plot_functions_follow_one_calling_convention():
    """Check docs and return types: axes-level return their Axes, figure-level a Figure even when empty."""
    import inspect

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    for name in plots.__all__:
        function = getattr(plots, name)
        if callable(function):
            doc = inspect.getdoc(function)
            assert "Parameters\n----------" in doc and "Returns\n-------" in doc, name
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 16, 16)).astype(np.uint8)
    labels = np.repeat(["glioma", "notumor"], 4)
    _, ax = plt.subplots()
    assert plots.intensity_histograms(images, labels, ax=ax) is ax
    history = pd.DataFrame(
        {
            "epoch": [0, 1],
            "loss": [1.0, 0.5],
            "accuracy": [0.5, 0.7],
            "val_loss": [1.1, 0.6],
            "val_accuracy": [0.4, 0.6],
        }
    )
    empty = np.empty((0, 16, 16), np.uint8)
    figures = [
        plots.mean_images(images, labels),
        plots.history_figure({"real": history}),
        plots.image_pairs(empty, empty),
        plots.grid_progression([]),
        plots.prediction_grid(empty, [], [], []),
        plots.cam_panels(empty, empty.astype(float), []),
    ]
    assert all(isinstance(figure, Figure) for figure in figures)
    plt.close("all")
