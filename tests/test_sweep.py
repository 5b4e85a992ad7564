"""Parameter sweeps: the grid, the point folders, and a sweep of chapters 03-04 on a local Dask cluster."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tumornb.cluster import read_record
from tumornb.sweep import grid_points, parse_grid, point_name, sweep_tasks


def test_parse_grid_reads_lists_and_single_values():
    """Check that a list is an axis and a single value an axis of one."""
    grid = parse_grid(["learning_rate=[5e-4,1e-3]", "image_size=96", "model=tumornb_cnn"])
    assert grid == {"learning_rate": [5e-4, 1e-3], "image_size": [96], "model": ["tumornb_cnn"]}


@pytest.mark.parametrize(
    ("items", "message"),
    [(["a=[]"], "empty list"), (["a=1", "a=2"], "given twice"), (["a"], "key=value")],
)
def test_parse_grid_refuses_what_it_cannot_sweep(items, message):
    """Check the errors for an empty axis, a repeated key and a missing value."""
    with pytest.raises(ValueError, match=message):
        parse_grid(items)


def test_grid_points_is_the_product_with_the_first_key_slowest():
    """Check the order and number of points of a 2 x 3 grid."""
    points = grid_points({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[:4] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}, {"a": 2, "b": "x"}]


def test_point_names_are_distinct_and_safe_folder_names():
    """Check that every point of a grid gets its own folder name without path separators."""
    points = grid_points({"learning_rate": [5e-4, 1e-3], "data": ["a/b", "c d"], "seeds": [[0, 1]]})
    names = [point_name(p) for p in points]
    assert len(set(names)) == len(names)
    assert all("/" not in n and " " not in n for n in names)
    assert names[0] == "learning_rate=0.0005__data=a_b__seeds=_0,1_"


def test_a_sweep_of_later_chapters_needs_a_base_run(tmp_path):
    """Check that --only 03 without --base-run says what is missing."""
    with pytest.raises(ValueError, match="pass --base-run"):
        sweep_tasks(tmp_path / "sweep", {"epochs": [1]}, only=["03"])
    with pytest.raises(FileNotFoundError, match="has no manifest.csv"):
        sweep_tasks(tmp_path / "sweep", {"epochs": [1]}, only=["03"], base_run=tmp_path / "nothing")


@pytest.mark.slow
def test_sweep_of_chapters_03_04_gives_one_run_per_point_and_a_summary(smoke_run, tmp_path, capsys):
    """Check `tumornb sweep` over two learning rates from a copy of the smoke run, on two local workers."""
    from tumornb.cli import main

    base = tmp_path / "base"
    shutil.copytree(smoke_run, base, ignore=shutil.ignore_patterns("ablation", "_build"))
    before = {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()}
    sweep_dir = tmp_path / "sweep"
    argv = ["sweep", "--profile", "smoke", "--only", "03,04", "--base-run", str(base)]
    argv += [
        "--sweep-dir",
        str(sweep_dir),
        "-p",
        "learning_rate=[5e-4,2e-3]",
        "-p",
        "epochs=1",
        "--jobs",
        "2",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    names = ["learning_rate=0.0005__epochs=1", "learning_rate=0.002__epochs=1"]
    for name in names:
        point = sweep_dir / name
        trained = json.loads((point / "models" / "real" / "train.json").read_text())
        assert trained["config"]["epochs"] == 1
        assert (point / "metrics.json").exists() and (point / "notebooks" / "04_eval.ipynb").exists()
        assert not (point / "notebooks" / "01_eda.ipynb").exists()  # taken from the base, not re-run
        assert read_record(sweep_dir / ".tasks" / name)["status"] == "finished"
    rates = {
        json.loads((sweep_dir / n / "models" / "real" / "train.json").read_text())["config"]["learning_rate"]
        for n in names
    }
    assert rates == {5e-4, 2e-3}
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert sorted(summary["learning_rate"]) == [5e-4, 2e-3]
    accuracy = summary["real accuracy"].str.extract(r"^([\d.]+) \[([\d.]+), ([\d.]+)\]$").astype(float)
    assert ((accuracy[1] <= accuracy[0]) & (accuracy[0] <= accuracy[2])).all()
    assert "real accuracy" in printed
    # The base run is read, never written.
    assert {p: p.stat().st_mtime_ns for p in base.rglob("*") if p.is_file()} == before
    assert main(argv) == 0
    assert "2 already done" in capsys.readouterr().out
