"""Independent executions as Dask tasks: on this machine, or on any ``dask.distributed`` cluster.

The ablation (:mod:`tumornb.ablation`) and the sweep (:mod:`tumornb.sweep`) are
sets of independent executions: a notebook per (variant, seed), a run of some
chapters per parameter point. Each is a :class:`Task`; :func:`run_tasks`
submits those not finished yet to a Dask client and waits for them all.

Where they run
    :func:`dask_client` connects to the scheduler at ``scheduler`` (or at
    ``$TUMORNB_SCHEDULER``) when one is given: a ``dask scheduler`` started by
    hand, by dask-jobqueue on SLURM/PBS, or on Kubernetes. Otherwise it starts a
    ``LocalCluster`` of ``workers`` processes on this machine.
What a worker needs
    The project installed (``pip install -e .`` in the same environment as
    the scheduler's client), and the run directory at the same path as the
    client sees it (a shared filesystem). A worker that cannot see it fails
    the task with :class:`RunDirNotVisible`, in one sentence.
What each task leaves
    ``FOLDER/task.json``: its key, configuration and its hash, the worker's
    address, host and process, start and end times, the number of attempts and
    its status (``running``, ``finished`` or ``failed``). The task's own
    outputs are written atomically (see :mod:`tumornb.execute`), and a task
    counts as finished only through its ``done`` file, so an execution cut
    short by a killed worker leaves nothing a later run trusts. The scheduler
    gives a task whose worker died to another worker (Dask's
    ``distributed.scheduler.allowed-failures``, 3 by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tumornb.paths import atomic_path

__all__ = [
    "SCHEDULER_ENV",
    "RunDirNotVisible",
    "Task",
    "TaskReport",
    "config_hash",
    "dask_client",
    "read_record",
    "run_tasks",
]

#: Environment variable naming a scheduler address, used when no ``scheduler`` is passed.
SCHEDULER_ENV = "TUMORNB_SCHEDULER"

RECORD_NAME = "task.json"


class RunDirNotVisible(RuntimeError):
    """A worker cannot see a path the task needs (no shared filesystem at the same path)."""


def config_hash(config: dict[str, Any]) -> str:
    """A short, order-independent hash of a JSON-serialisable configuration.

    Parameters
    ----------
    config : dict
        JSON-serialisable.

    Returns
    -------
    str

    Examples
    --------
    >>> config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    True
    """
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    """One independent execution.

    Parameters
    ----------
    key : str
        A readable name, unique within one call of :func:`run_tasks`
        (``"real/seed1"``).
    folder : Path
        Where the task writes; its record goes to ``folder/task.json``.
    done : Path
        The file whose presence means the task finished (written last and
        atomically by the action).
    must_see : Path
        A path every worker must see at the same location (the run directory).
    action : callable
        Called with no arguments on the worker; must be picklable (a
        module-level function, or a :func:`functools.partial` of one).
    config : dict
        What decides the result; stored with its :func:`config_hash`.
    """

    key: str
    folder: Path
    done: Path
    must_see: Path
    action: Callable[[], Any]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def record(self) -> Path:
        """The task's ``task.json``: who ran it, when, with what configuration."""
        return self.folder / RECORD_NAME

    def is_done(self) -> bool:
        """Whether the task's result is already there (it is then skipped)."""
        return self.done.exists()


@dataclass
class TaskReport:
    """What one call of :func:`run_tasks` did.

    Parameters
    ----------
    skipped, finished : list of str
        Task keys.
    failed : dict of str to str
        Task key to its error.
    workers : dict of str to str
        Task key to the worker that finished it.
    """

    skipped: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    workers: dict[str, str] = field(default_factory=dict)  # key -> worker address that finished it

    @property
    def ok(self) -> bool:
        """Whether no task failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: how many ran, were skipped and failed, and on how many workers."""
        line = (
            f"{len(self.finished)} finished on {len(set(self.workers.values()))} worker(s), "
            f"{len(self.skipped)} already done, {len(self.failed)} failed"
        )
        if self.failed:
            line += ": " + "; ".join(f"{key}: {error}" for key, error in self.failed.items())
        return line


def read_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The task record in ``folder``, or None when there is none.

    Parameters
    ----------
    folder : path-like
        A task's folder.

    Returns
    -------
    dict or None
        ``task.json``'s content, None when there is none.
    """
    path = Path(folder) / RECORD_NAME
    return json.loads(path.read_text()) if path.exists() else None


def _write_record(path: Path, record: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not inside a Dask worker: called directly
        return "local"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def execute_task(task: Task) -> str:
    """Run one task where it is called (on a Dask worker), recording where and how.

    Returns
    -------
    str
        The address of the worker that ran it.

    Raises
    ------
    RunDirNotVisible
        When this worker cannot see ``task.must_see``.
    """
    host, worker = socket.gethostname(), _worker_address()
    if not task.must_see.exists():
        raise RunDirNotVisible(
            f"worker {worker} on host {host} cannot see {task.must_see}: "
            "workers need the run directory at the same path as the client (a shared filesystem)"
        )
    task.folder.mkdir(parents=True, exist_ok=True)
    previous = read_record(task.folder) or {}
    attempts = previous.get("attempts", 0) + 1 if previous.get("status") == "running" else 1
    record = {
        "key": task.key,
        "status": "running",
        "attempts": attempts,
        "worker": worker,
        "host": host,
        "pid": os.getpid(),
        "started": _now(),
        "config_hash": config_hash(task.config),
        "config": task.config,
    }
    if attempts > 1:  # the record of an attempt that never ended: its worker died
        record["interrupted"] = {k: previous.get(k) for k in ("worker", "host", "started")}
    _write_record(task.record, record)
    start = time.perf_counter()
    try:
        task.action()
    except BaseException as exc:
        record.update(status="failed", ended=_now(), seconds=round(time.perf_counter() - start, 1))
        record["error"] = f"{type(exc).__name__}: {exc}"
        _write_record(task.record, record)
        raise
    record.update(status="finished", ended=_now(), seconds=round(time.perf_counter() - start, 1))
    _write_record(task.record, record)
    return worker


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 1) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler``, to ``$TUMORNB_SCHEDULER``, or to a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        A scheduler address such as ``tcp://10.0.0.5:8786``.
    workers : int, default=1
        Worker processes of the ``LocalCluster`` started when no scheduler is
        given (one thread each: every task starts its own kernel, which uses
        the machine's cores itself).

    Yields
    ------
    distributed.Client
    """
    from distributed import Client, LocalCluster

    address = scheduler or os.environ.get(SCHEDULER_ENV)
    if address:
        try:
            client = Client(address, timeout="20s")
        except OSError as exc:
            raise RuntimeError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        with client:
            yield client
        return
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # The scheduler serves health checks over HTTP even with no dashboard, on port 8787
            # unless told otherwise; a second cluster on the machine would then fail to start.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,  # a task's error is reported once, by run_tasks
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_tasks(
    tasks: Sequence[Task],
    client: Any,
    *,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> TaskReport:
    """Submit every task not done yet to ``client`` and wait for all of them.

    A failed task does not stop the others; the report lists it with its error.

    Parameters
    ----------
    tasks : sequence of Task
    client : distributed.Client
    log : callable
        Receives one line per task finished or failed.
    progress : bool, default=False
        A tqdm bar over the tasks.

    Returns
    -------
    TaskReport
    """
    from distributed import as_completed

    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be unique, got {keys}")
    report = TaskReport(skipped=[task.key for task in tasks if task.is_done()])
    todo = [task for task in tasks if not task.is_done()]
    n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    log(f"{len(report.skipped)} already done, {len(todo)} to run on {n_workers} Dask worker(s)")
    futures = {
        client.submit(execute_task, task, key=f"tumornb-{task.key}-{time.time_ns()}", pure=False): task
        for task in todo
    }
    bar = None
    if progress and futures:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(futures), desc="tasks", unit="task")
    for future in as_completed(futures):
        task = futures[future]
        try:
            worker = future.result()
        except Exception as exc:  # one task's failure is reported, the others go on
            report.failed[task.key] = f"{type(exc).__name__}: {exc}"
            log(f"{task.key}: failed: {report.failed[task.key]}")
        else:
            report.finished.append(task.key)
            report.workers[task.key] = worker
            log(f"{task.key}: finished on {worker}")
        if bar is not None:
            bar.update()
        future.release()
    if bar is not None:
        bar.close()
    return report
