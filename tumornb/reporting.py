"""The book's reporting page: what a reviewer asks (CLAIM 2024), answered from the run's own files.

:func:`reporting_page` reads what the chapters wrote (``eda_summary.json``,
``validation.csv``, ``train.json``, ``fidelity.json``, ``metrics.json``,
``run.json``) and writes one Markdown table: each checklist item, the number
this run computed for it, and a link to the section of the chapter that shows
it. Nothing on the page is typed by hand, and an item whose chapter did not
run says so instead of linking to a page that is not in the book.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from tumornb.paths import RunDir

__all__ = ["checklist", "reporting_page"]


def _read(path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _link(chapter: str, anchor: str, text: str, executed: set[str]) -> str:
    # Raw HTML: Sphinx would treat a Markdown link to a page anchor as a cross-reference to resolve.
    if chapter not in executed:
        return f"{text} (chapter {chapter[:2]} did not run)"
    return f'<a href="notebooks/{chapter}.html#{anchor}">{text}</a>'


def _estimate(e: dict[str, float]) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"


def checklist(run_dir: str | os.PathLike[str], executed: set[str]) -> pd.DataFrame:
    """The reporting checklist of a run: item, what the run found, where the book shows it.

    Parameters
    ----------
    run_dir : path-like
    executed : set of str
        The chapters in the book (``"04_eval"``, ...), to link only to pages that exist.

    Returns
    -------
    DataFrame
        Columns ``item`` (the CLAIM 2024 topic), ``this run`` and ``shown in``.
    """
    run = RunDir(run_dir)
    eda, info = _read(run.eda_summary), _read(run.run_info) or {}
    saved, fidelity = _read(run.metrics), _read(run.fidelity_json)
    parameters = info.get("parameters", {})
    rows = []

    def add(item: str, found: str, chapter: str, anchor: str, section: str) -> None:
        rows.append({"item": item, "this run": found, "shown in": _link(chapter, anchor, section, executed)})

    if eda:
        source = (
            eda["data_dir"]
            if parameters.get("data_dir")
            else f"the embedded phantom data (seed {eda['seed']})"
        )
        counts = {split: sum(by_class.values()) for split, by_class in eda["counts"].items()}
        add(
            "Data source and size",
            f"{source}; {counts.get('train', 0)} training and {counts.get('test', 0)} test images in "
            f"{len(eda['counts'].get('train', {}))} classes; split taken from the {eda['split_source']}",
            "01_eda",
            "class-balance",
            "chapter 01, class balance",
        )
        add(
            "Data excluded",
            f"{eda['n_unreadable']} of {eda['n_files']} files unreadable and skipped",
            "01_eda",
            "files-that-could-not-be-read",
            "chapter 01, unreadable files",
        )
        add(
            "Leakage between splits",
            f"{eda['n_test_leaked']} of {eda['n_test']} test images have an exact or near copy in training "
            f"(perceptual hash within {eda['near_duplicate_bits']} bits)",
            "01_eda",
            "duplicates-and-leakage",
            "chapter 01, leakage",
        )
    if run.validation_split.exists():
        validation = pd.read_csv(run.validation_split)
        add(
            "Validation data and model selection",
            f"{len(validation)} training images held out, duplicate groups on one side; every epoch and "
            "temperature chosen on them, the test split read only in chapter 04",
            "03_cnn",
            "training-and-validation-images",
            "chapter 03, validation images",
        )
    trained = _read(run.model_dir("real") / "train.json")
    if trained:
        config = trained["config"]
        add(
            "Model and training",
            f"{config['model']}, {trained['n_train']} training images at {config['image_size']} px, "
            f"{trained['epochs_run']} epochs (best {trained['best_epoch'] + 1}), seed {config['seed']}",
            "03_cnn",
            "training-the-variants",
            "chapter 03, training",
        )
    if fidelity:
        add(
            "Synthetic data",
            "; ".join(
                f"{variant}: class fidelity {v['all']['ratio']:.2f} of the judge's accuracy on real images"
                for variant, v in fidelity.get("fidelity", {}).items()
                if v.get("all", {}).get("ratio") is not None
            )
            or "see the chapter",
            "02_dgan",
            "do-the-images-carry-their-class",
            "chapter 02, class fidelity",
        )
    if saved:
        first = saved["first_subset"]
        for subset, by_variant in saved["headline"].items():
            real = by_variant.get("real", {})
            if real:
                n_images = saved["subsets"][subset]["images"]
                add(
                    "Performance with uncertainty" if subset == first else "… on every test image",
                    f"{subset} ({n_images}): accuracy {_estimate(real['accuracy'])}, "
                    f"macro-F1 {_estimate(real['macro-F1'])}, model `real`"
                    + (f"; {saved['interval']}" if subset == first else ""),
                    "04_eval",
                    "headline-metrics",
                    "chapter 04, headline metrics",
                )
        calibration = saved.get("calibration", {}).get("real")
        if calibration:
            add(
                "Calibration",
                f"ECE on the {first} {calibration[f'ECE before ({first})']:.3f}, after temperature scaling "
                f"{calibration[f'ECE after ({first})']:.3f}",
                "04_eval",
                "calibration",
                "chapter 04, calibration",
            )
        ablation = saved.get("ablation")
        comparisons = [c for c in (ablation or {}).get("comparisons", []) if c["test images"] == first]
        add(
            "Comparison of methods",
            "; ".join(
                f"{c['comparison']}, {c['metric']}: {c['difference']:+.1f} points "
                f"[{c['low']:+.1f}, {c['high']:+.1f}] over {c['seeds']} seeds, "
                f"Holm-adjusted p = {c['p (Holm)']:.3f}"
                for c in comparisons
            )
            or "no ablation in this run (one training run per variant cannot separate the method from noise)",
            "04_eval",
            "repeated-over-training-seeds-the-ablation",
            "chapter 04, ablation",
        )
    add(
        "Failure analysis",
        "the most confident mistakes, the most confused class pairs and Grad-CAM maps",
        "05_visualize_predictions",
        "the-most-confident-mistakes",
        "chapter 05",
    )
    if info:
        add(
            "Reproducibility",
            f"profile `{info.get('profile')}`, seed {parameters.get('seed')}, ablation seeds "
            f"{parameters.get('ablation_seeds')}; Python {info.get('python')} on {info.get('platform')}; "
            "every parameter in run.json",
            "01_eda",
            "imports-and-seed",
            "each chapter's parameters",
        )
    return pd.DataFrame(rows, columns=["item", "this run", "shown in"])


def reporting_page(run_dir: str | os.PathLike[str], executed: set[str]) -> str:
    """The Markdown of the book's reporting page for a run (see :func:`checklist`).

    Parameters
    ----------
    run_dir : path-like
    executed : set of str
        The chapters the book holds; links go only to those.

    Returns
    -------
    str
        The page's Markdown.
    """
    table = checklist(run_dir, executed)
    lines = [
        "# Reporting checklist",
        "",
        "The items of the Checklist for Artificial Intelligence in Medical Imaging (CLAIM 2024) that",
        "this project can answer, each with the number this run computed and the section that shows it.",
        "The page is generated from the run's files when the book is built.",
        "",
        "| item | this run | shown in |",
        "|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        cells = [str(value).replace("|", "\\|").replace("\n", " ") for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
