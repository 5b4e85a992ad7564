"""Parameter sweeps: the same chapters run once per point of a parameter grid, as Dask tasks.

``tumornb sweep -p learning_rate=[5e-4,1e-3] -p image_size=[96,128]`` makes a
grid of four points. Each point is its own run directory under the sweep folder
(``SWEEP_DIR/learning_rate=0.0005__image_size=96/``), where the chosen chapters
run with the profile's parameters and the point's values. Points are
independent tasks of :mod:`tumornb.cluster`, so they run on a local cluster or
on any Dask cluster, and a finished point (``point.json`` present) is skipped.

A sweep over later chapters only (``--only 03,04``) starts each point from a
copy of an existing run (``--base-run``) that the point's chapters then
overwrite in the copy, never in the base run.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from tumornb.cluster import Task, TaskReport, dask_client, read_record, run_tasks
from tumornb.execute import ExecutionFailed
from tumornb.paths import RunDir, atomic_path
from tumornb.profiles import parse_override

__all__ = [
    "grid_points",
    "parse_grid",
    "point_name",
    "run_point",
    "run_sweep",
    "sweep_summary",
    "sweep_tasks",
]

POINT_RECORD = "point.json"
# What a point never takes from its base run: what its own chapters and records write anew.
_NOT_COPIED = ("notebooks", "ablation", "_build", "run.json", "task.json", POINT_RECORD)


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """Turn ``key=[v1,v2]`` (or ``key=v``, a one-value axis) strings into a grid.

    Parameters
    ----------
    items : sequence of str
        ``key=[v1,v2]`` (or ``key=v``) per parameter.

    Returns
    -------
    dict of str to list

    Examples
    --------
    >>> parse_grid(["learning_rate=[5e-4,1e-3]", "epochs=5"])
    {'learning_rate': [0.0005, 0.001], 'epochs': [5]}
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, value = parse_override(item)
        if key in grid:
            raise ValueError(f"parameter {key} is given twice; put all its values in one list")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"parameter {key} has an empty list of values")
        grid[key] = values
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest.

    Parameters
    ----------
    grid : dict of str to list
        Values per parameter.

    Returns
    -------
    list of dict
        Every combination, the first parameter varying slowest.
    """
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def point_name(point: dict[str, Any]) -> str:
    """A folder name for a point: ``key=value`` pairs joined by ``__``, safe on every filesystem.

    Parameters
    ----------
    point : dict

    Returns
    -------
    str
        A folder name, e.g. ``learning_rate=0.001``.

    Examples
    --------
    >>> point_name({"learning_rate": 0.001, "image_size": 96})
    'learning_rate=0.001__image_size=96'
    """
    if not point:
        return "base"
    parts = [
        f"{k}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}" for k, v in point.items()
    ]
    return "__".join(re.sub(r"[^A-Za-z0-9._=+,-]", "_", part) for part in parts)


def _copy_base(base_run: Path, point_dir: Path) -> None:
    """Copy ``base_run`` into ``point_dir`` through a temporary folder, renamed when complete."""
    tmp = point_dir.with_name(f".{point_dir.name}.copying")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(base_run, tmp, ignore=lambda folder, names: [n for n in names if n in _NOT_COPIED])
    os.replace(tmp, point_dir)


def run_point(
    point_dir: str | os.PathLike[str],
    point: dict[str, Any],
    *,
    profile: str = "default",
    data_dir: str | None = None,
    only: list[str] | None = None,
    base_run: str | None = None,
) -> dict[str, Any]:
    """Run the chapters of one sweep point into ``point_dir``; write ``point.json`` last.

    Parameters
    ----------
    point_dir : path-like
    point : dict
        Parameter values of this point.
    profile : str, default="default"
    data_dir : str, optional
    only : list of str, optional
        Chapters to run.
    base_run : str, optional
        A run to start from when the chapters do not start at 01 (only read).

    Returns
    -------
    dict
        What ``point.json`` holds: the point, the chapters' seconds.
    """
    from tumornb.runner import run_chapters

    point_dir = Path(point_dir)
    if base_run and not RunDir(point_dir).manifest.exists():
        point_dir.parent.mkdir(parents=True, exist_ok=True)
        if point_dir.exists():  # a copy cut short, or a folder of an earlier failed attempt
            shutil.rmtree(point_dir)
        _copy_base(Path(base_run), point_dir)
    results = run_chapters(
        point_dir,
        profile=profile,
        data_dir=data_dir,
        only=only,
        overrides=point,
        progress=False,
        ablate=False,
        log=lambda line: None,
    )
    info = {
        "point": point,
        "profile": profile,
        "base_run": base_run,
        "chapters": {r.name: round(r.seconds, 1) for r in results},
    }
    with atomic_path(point_dir / POINT_RECORD) as tmp:
        tmp.write_text(json.dumps(info, indent=2, default=str))
    return info


def sweep_tasks(
    sweep_dir: str | os.PathLike[str],
    grid: dict[str, list[Any]],
    *,
    profile: str = "default",
    data_dir: str | os.PathLike[str] | None = None,
    only: list[str] | None = None,
    base_run: str | os.PathLike[str] | None = None,
) -> list[Task]:
    """One :class:`tumornb.cluster.Task` per grid point, keyed by :func:`point_name`.

    Parameters
    ----------
    sweep_dir : path-like
    grid : dict of str to list
    profile : str, default="default"
    data_dir : path-like, optional
    only : list of str, optional
    base_run : path-like, optional

    Returns
    -------
    list of Task
        One per grid point.
    """
    sweep_dir = Path(sweep_dir).expanduser().resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    data = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    base = str(RunDir(base_run).root) if base_run else None
    if base and not RunDir(base).manifest.exists():
        raise FileNotFoundError(f"base run {base} has no manifest.csv: run its chapters first")
    if only and not base and not any(c.strip().startswith("01") for c in only):
        raise ValueError(
            f"chapters {','.join(only)} need the outputs of earlier ones: pass --base-run RUN_DIR"
        )
    tasks = []
    for point in grid_points(grid):
        name = point_name(point)
        folder = sweep_dir / name
        config = {"point": point, "profile": profile, "data_dir": data, "only": only, "base_run": base}
        action = partial(run_point, folder, point, profile=profile, data_dir=data, only=only, base_run=base)
        # The record sits beside the point's folder: copying a base run may replace the folder.
        task = Task(name, sweep_dir / ".tasks" / name, folder / POINT_RECORD, sweep_dir, action, config)
        tasks.append(task)
    return tasks


def sweep_summary(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per finished point: its values, where it ran, and its headline from ``metrics.json``.

    Parameters
    ----------
    sweep_dir : path-like

    Returns
    -------
    DataFrame
        Columns: the grid's parameters, ``worker``, ``seconds``, then
        ``<variant> accuracy`` and ``<variant> macro-F1`` as ``value [low, high]``
        text, on the test images with no duplicate in training (empty when the
        point did not run chapter 04).
    """
    sweep_dir = Path(sweep_dir)
    rows = []
    for info_path in sorted(sweep_dir.glob(f"*/{POINT_RECORD}")):
        info = json.loads(info_path.read_text())
        record = read_record(sweep_dir / ".tasks" / info_path.parent.name) or {}
        row = dict(info["point"]) | {
            "worker": record.get("worker", ""),
            "seconds": sum(info["chapters"].values()),
        }
        metrics_path = info_path.parent / "metrics.json"
        if metrics_path.exists():
            saved = json.loads(metrics_path.read_text())
            first = saved.get("first_subset")  # the leak-free test images (chapter 04 reports them first)
            headline = saved.get("headline", {}).get(first, {})
            for variant, summary in headline.items():
                for metric in ("accuracy", "macro-F1"):
                    if metric in summary:
                        e = summary[metric]
                        row[f"{variant} {metric}"] = f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def run_sweep(
    sweep_dir: str | os.PathLike[str],
    grid: dict[str, list[Any]],
    *,
    profile: str = "default",
    data_dir: str | os.PathLike[str] | None = None,
    only: list[str] | None = None,
    base_run: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[TaskReport, pd.DataFrame]:
    """Run every point of ``grid`` not finished yet, and summarise the sweep.

    Parameters
    ----------
    sweep_dir : path-like
        One run directory per point goes here, and ``summary.csv``.
    grid : dict
        Parameter name -> list of values (see :func:`parse_grid`).
    profile, data_dir, only
        As for :func:`tumornb.runner.run_chapters`.
    base_run : path-like, optional
        A run each point starts from a copy of (needed when ``only`` skips chapter 01).
    jobs : int, default=1
        Worker processes of the local Dask cluster (ignored with ``scheduler``).
    scheduler : str, optional
        A running Dask scheduler's address (default ``$TUMORNB_SCHEDULER``).
    progress : bool, default=False
    log : callable

    Returns
    -------
    (TaskReport, DataFrame)
        What ran, and :func:`sweep_summary`.

    Raises
    ------
    tumornb.execute.ExecutionFailed
        After every point has ended, when any failed.
    """
    tasks = sweep_tasks(sweep_dir, grid, profile=profile, data_dir=data_dir, only=only, base_run=base_run)
    with dask_client(scheduler, workers=jobs) as client:
        report = run_tasks(tasks, client, log=lambda line: log(f"sweep: {line}"), progress=progress)
    summary = sweep_summary(sweep_dir)
    with atomic_path(Path(sweep_dir) / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    log(f"sweep: {report.summary()}")
    if not report.ok:
        raise ExecutionFailed(f"sweep: {report.summary()}")
    return report, summary
