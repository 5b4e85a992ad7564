"""Execute the numbered chapter notebooks with papermill, in order.

Every chapter is a notebook ``notebooks/NN_name.ipynb`` with a cell tagged
``parameters``. A run passes each one the profile's parameters that it
declares, plus ``run_dir`` and ``data_dir``, and saves the executed copy in
``RUN_DIR/notebooks/``. A chapter's executed notebook appears there only when
it ran to the end; a failure leaves ``NN_name.failed.ipynb`` to inspect.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumornb.execute import ExecutionFailed, declared_parameters, execute_notebook
from tumornb.paths import RunDir, atomic_path
from tumornb.profiles import PROFILES, profile_parameters

__all__ = [
    "ChapterFailed",
    "benchmark_records",
    "write_benchmark_record",
    "chapter_notebooks",
    "check_overrides",
    "project_root",
    "run_chapters",
]

#: Kept under its old name: a chapter that fails raises the shared executor's error.
ChapterFailed = ExecutionFailed


@dataclass(frozen=True)
class ChapterResult:
    name: str
    notebook: Path
    seconds: float
    finished: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))


def project_root() -> Path:
    """The repository root (where ``_config.yml``, ``book/`` and ``notebooks/`` are)."""
    return Path(__file__).resolve().parents[1]


def benchmark_records(
    pattern: str, folder: str | os.PathLike[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The JSON records a benchmark wrote (``--json``), by file name in sorted order.

    Parameters
    ----------
    pattern : str
        A glob pattern of file names, e.g. ``"bench_gan*.json"``.
    folder : path-like, optional
        Default: the project's ``benchmarks/results``.

    Returns
    -------
    dict of str to dict
        Empty when none matches (or the folder is missing, as in an installed package).
    """
    folder = Path(folder) if folder is not None else project_root() / "benchmarks" / "results"
    return {path.name: json.loads(path.read_text()) for path in sorted(folder.glob(pattern))}


def write_benchmark_record(path: str | os.PathLike[str], script: str, **fields: Any) -> Path:
    """Write a benchmark's record: its command line, date and machine, then ``fields``.

    Parameters
    ----------
    path : path-like
        The JSON file; replaced whole, so an interrupted write leaves the old record.
    script : str
        The benchmark as run from the repository root, e.g. ``"benchmarks/bench_gan.py"``;
        the command is it with this process's arguments.
    **fields
        JSON-serialisable values, e.g. ``rows``; NaN is written as null
        (:func:`~tumornb.evaluation.json_safe`).

    Returns
    -------
    Path
    """
    from tumornb.evaluation import json_safe

    record = {
        "command": shlex.join(["python", script, *sys.argv[1:]]),
        "finished": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        **fields,
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(record), indent=1))
    return Path(path)


def chapter_notebooks(notebooks_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Chapter name -> notebook path, in book order (``01_eda``, ``02_dgan``, ...).

    Parameters
    ----------
    notebooks_dir : path-like, optional
        Default: the project's ``notebooks/``.

    Returns
    -------
    dict of str to Path
        By name, in book order.
    """
    folder = Path(notebooks_dir) if notebooks_dir else project_root() / "notebooks"
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    return {path.stem: path for path in found}


def check_overrides(overrides: dict[str, Any], notebooks_dir: str | os.PathLike[str] | None = None) -> None:
    """Refuse parameter names that no chapter, no ablation training and no profile declares.

    A misspelt ``-p imgae_size=96`` would otherwise be dropped without a word.

    Parameters
    ----------
    overrides : dict
        ``-p`` values by name.
    notebooks_dir : path-like, optional

    Raises
    ------
    ValueError
        Naming the unknown parameters and listing the known ones.
    """
    from tumornb.ablation import TEMPLATE

    known = set(PROFILES["default"]) | {"run_dir", "data_dir"} | declared_parameters(TEMPLATE)
    for notebook in chapter_notebooks(notebooks_dir).values():
        known |= declared_parameters(notebook)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"no chapter declares the parameter {', '.join(unknown)}; "
            f"known parameters: {', '.join(sorted(known))}"
        )


def run_chapters(
    run_dir: str | os.PathLike[str],
    *,
    profile: str = "default",
    data_dir: str | os.PathLike[str] | None = None,
    only: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    notebooks_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    ablate: bool | None = None,
    log=print,
) -> list[ChapterResult]:
    """Execute the chapters into ``run_dir``.

    Parameters
    ----------
    run_dir : path-like
        Where executed notebooks and artifacts go; created if missing.
    profile : {"smoke", "default", "full"}
        Parameter set, see :mod:`tumornb.profiles`.
    data_dir : path-like, optional
        A folder-per-class dataset; the embedded phantom data when omitted.
    only : list of str, optional
        Chapter names (``"01_eda"``) or numbers (``"01"``) to run.
    overrides : dict, optional
        Parameters that replace the profile's.
    notebooks_dir : path-like, optional
        Where the chapter notebooks are; the project's ``notebooks/`` by default.
    progress : bool, default=True
        Show papermill's per-cell progress bar.
    ablate : bool, optional
        Before chapter 04, train the ablation's repetitions (the profile's
        ``ablation_seeds``, see :mod:`tumornb.ablation`) that are not trained yet.
        Default: the profile's ``ablate_in_run`` (on for smoke and full; off for
        default, where it would triple the run's time: use ``tumornb ablate``).
    log : callable
        Receives one line per chapter started and finished.

    Returns
    -------
    list of ChapterResult

    Raises
    ------
    ChapterFailed
        When a cell raises; earlier chapters' results stay in place.
    """
    chapters = chapter_notebooks(notebooks_dir)
    if only:
        wanted = {name.strip() for name in only if name.strip()}
        unknown = {w for w in wanted if not any(c == w or c.split("_")[0] == w for c in chapters)}
        if unknown:
            raise ValueError(
                f"no chapter named {', '.join(sorted(unknown))}; chapters: {', '.join(chapters)}"
            )
        chapters = {c: p for c, p in chapters.items() if c in wanted or c.split("_")[0] in wanted}

    check_overrides(overrides or {}, notebooks_dir)
    run = RunDir(run_dir)
    run.notebooks_dir.mkdir(parents=True, exist_ok=True)
    parameters = profile_parameters(profile) | dict(overrides or {})
    parameters["run_dir"] = str(run.root)
    parameters["data_dir"] = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    if data_dir:
        from tumornb.data import scan_dataset

        scan_dataset(data_dir)  # fail fast, before starting a kernel, on a wrong path
    if ablate is None:
        ablate = bool(parameters.get("ablate_in_run", False))

    results = []
    for index, (name, notebook) in enumerate(chapters.items(), start=1):
        final = run.notebooks_dir / f"{name}.ipynb"
        if ablate and name.startswith("04"):
            from tumornb.ablation import VARIANTS, run_ablation

            start = time.perf_counter()
            run_ablation(
                run.root,
                seeds=parameters.get("ablation_seeds", [0]),
                variants=parameters.get("ablation_variants") or VARIANTS,
                parameters=parameters,
                log=log,
            )
            results.append(ChapterResult("ablation", run.root / "ablation", time.perf_counter() - start))
        log(f"[{index}/{len(chapters)}] {name} ({profile} profile)")
        start = time.perf_counter()
        execute_notebook(notebook, final, parameters, progress=progress)
        seconds = time.perf_counter() - start
        log(f"[{index}/{len(chapters)}] {name} done in {seconds:.0f} s -> {final}")
        results.append(ChapterResult(name, final, seconds))
    _record_run(run, profile, parameters, results)
    return results


def _record_run(run: RunDir, profile: str, parameters: dict, results: list[ChapterResult]) -> None:
    info = json.loads(run.run_info.read_text()) if run.run_info.exists() else {"chapters": {}}
    info.update(
        profile=profile,
        parameters=parameters,
        python=sys.version.split()[0],
        platform=platform.platform(),
    )
    for result in results:
        info["chapters"][result.name] = {
            "seconds": round(result.seconds, 1),
            "finished": result.finished,
        }
    with atomic_path(run.run_info) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
