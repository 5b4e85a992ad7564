"""Tasks on Dask: records, failures, skipping; a real scheduler with two workers, one killed mid-ablation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from tumornb import ablation
from tumornb.cluster import (
    RunDirNotVisible,
    Task,
    config_hash,
    dask_client,
    execute_task,
    read_record,
    run_tasks,
)


def _write_task(folder: Path, key: str, text: str = "done") -> Task:
    out = folder / key / "out.txt"
    return Task(key, folder / key, out, folder, partial(Path.write_text, out, text), {"text": text})


def test_execute_task_records_where_and_how_it_ran(tmp_path):
    """Check the record of a task run outside Dask: finished, its configuration and hash, one attempt."""
    task = _write_task(tmp_path, "a", "hello")
    assert execute_task(task) == "local"
    record = read_record(task.folder)
    assert record["status"] == "finished" and record["attempts"] == 1 and record["worker"] == "local"
    assert record["config"] == {"text": "hello"} and record["config_hash"] == config_hash({"text": "hello"})
    assert record["pid"] == os.getpid() and record["seconds"] >= 0
    assert (tmp_path / "a" / "out.txt").read_text() == "hello"


def test_an_attempt_that_never_ended_is_counted_and_named(tmp_path):
    """Check that a record left 'running' (its worker died) makes the next attempt the second."""
    task = _write_task(tmp_path, "a")
    task.folder.mkdir()
    task.record.write_text(json.dumps({"status": "running", "attempts": 1, "worker": "tcp://dead:1"}))
    execute_task(task)
    record = read_record(task.folder)
    assert record["attempts"] == 2 and record["interrupted"]["worker"] == "tcp://dead:1"


def test_a_worker_that_cannot_see_the_run_directory_says_so(tmp_path):
    """Check the one-sentence error when the run directory is not on the worker's filesystem."""
    missing = tmp_path / "elsewhere"
    task = Task("a", tmp_path / "a", tmp_path / "a" / "x", missing, partial(print, "never"))
    with pytest.raises(RunDirNotVisible, match=r"cannot see .*elsewhere: workers need the run directory"):
        execute_task(task)


def test_config_hash_depends_on_values_not_order():
    """Check that the configuration hash ignores key order and sees a changed value."""
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_local_cluster_runs_tasks_reports_a_failure_and_skips_finished_ones(tmp_path):
    """Check two local workers: the failing task is reported, the others finish, a re-run skips them."""
    tasks = [_write_task(tmp_path, f"t{i}", str(i)) for i in range(4)]
    missing = tmp_path / "no-such-file"
    bad = Task("bad", tmp_path / "bad", tmp_path / "bad" / "x", tmp_path, partial(Path.read_text, missing))
    lines = []
    with dask_client(workers=2) as client:
        report = run_tasks([*tasks, bad], client, log=lines.append)
        assert sorted(report.finished) == ["t0", "t1", "t2", "t3"]
        assert list(report.failed) == ["bad"] and "FileNotFoundError" in report.failed["bad"]
        assert read_record(tmp_path / "bad")["status"] == "failed"
        assert [(tmp_path / f"t{i}" / "out.txt").read_text() for i in range(4)] == ["0", "1", "2", "3"]
        assert "4 finished" in report.summary() and "1 failed" in report.summary()
        again = run_tasks([*tasks, bad], client, log=lines.append)
    assert sorted(again.skipped) == ["t0", "t1", "t2", "t3"] and again.finished == []
    assert lines[0].endswith("to run on 2 Dask worker(s)")


def test_a_local_cluster_starts_while_another_holds_the_default_http_port(tmp_path):
    """Check a second cluster on the machine (a parallel test, another user) does not block ours."""
    import socket

    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("", 8787))  # Dask's default port for the scheduler's HTTP server
            holder.listen()
        except OSError:
            pass  # already held by another process: the same situation
        task = _write_task(tmp_path, "a", "ran")
        with dask_client(workers=1) as client:
            assert run_tasks([task], client, log=lambda line: None).finished == ["a"]
    assert (tmp_path / "a" / "out.txt").read_text() == "ran"


def test_task_keys_must_be_unique(tmp_path):
    """Check that two tasks with one key are refused before anything is submitted."""
    task = _write_task(tmp_path, "a")
    with pytest.raises(ValueError, match="unique"):
        run_tasks([task, task], client=None)


# --- a real cluster: `dask scheduler` and two `dask worker` processes on 127.0.0.1 ----------------


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.fixture
def dask_cluster(tmp_path):
    """A scheduler and two single-thread workers without nannies (a killed worker stays dead)."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    processes = {
        "scheduler": _start(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            tmp_path / "scheduler.log",
        )
    }
    deadline = time.time() + 60
    while not scheduler_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    for name in ("w1", "w2"):
        processes[name] = _start(
            [
                "distributed.cli.dask_worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                name,
                "--host",
                "127.0.0.1",
            ],
            tmp_path / f"{name}.log",
        )
    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        workers = {
            info["name"]: addr for addr, info in client.scheduler_info(n_workers=-1)["workers"].items()
        }
    try:
        yield address, workers, processes
    finally:
        for process in processes.values():
            process.kill()
            process.wait()


@pytest.fixture
def run_before_ablation(smoke_run, tmp_path):
    """A copy of the smoke run without its ablation: chapters 01-03 done, nothing ablated."""
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir, ignore=shutil.ignore_patterns("ablation", "_build"))
    return run_dir


# Two repetitions, one per worker: the fewest that show both workers used and one taking over.
ABLATE = ["--profile", "smoke", "--seeds", "1", "--variants", "real,real+synthetic", "-p", "epochs=1"]
EXPECTED = {("real", 1), ("real+synthetic", 1)}


def _ablated(run_dir: Path) -> set[tuple[str, int]]:
    table = ablation.trained_repetitions(run_dir)
    return {(r.variant, r.seed) for r in table.itertuples() if r.seed != 0}


@pytest.mark.slow
def test_ablation_on_a_real_scheduler_uses_both_workers_and_skips_on_rerun(
    dask_cluster, run_before_ablation, capsys
):
    """Check `tumornb ablate --scheduler`: both workers trained, every result landed, a re-run skips all."""
    from tumornb.cli import main

    address, workers, _ = dask_cluster
    assert main(["ablate", "--run-dir", str(run_before_ablation), "--scheduler", address, *ABLATE]) == 0
    assert _ablated(run_before_ablation) == EXPECTED
    records = [read_record(ablation.ablation_dir(run_before_ablation, v, s)) for v, s in EXPECTED]
    assert {r["status"] for r in records} == {"finished"}
    assert {r["worker"] for r in records} == set(workers.values())
    assert {r["config"]["epochs"] for r in records} == {1}
    capsys.readouterr()
    assert main(["ablate", "--run-dir", str(run_before_ablation), "--scheduler", address, *ABLATE]) == 0
    assert "every repetition is trained already" in capsys.readouterr().out
    again = [read_record(ablation.ablation_dir(run_before_ablation, v, s)) for v, s in EXPECTED]
    assert again == records


@pytest.mark.slow
def test_a_worker_killed_mid_ablation_leaves_the_rest_to_the_other(dask_cluster, run_before_ablation):
    """Kill worker w1 while it trains: the ablation completes on w2 and every result is whole."""
    from tumornb.training import load_trained

    address, workers, processes = dask_cluster
    ablate = subprocess.Popen(
        [sys.executable, "-m", "tumornb.cli", "ablate", "--run-dir", str(run_before_ablation)]
        + ["--scheduler", address, *ABLATE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed_in = None
    deadline = time.time() + 300
    while killed_in is None and time.time() < deadline and ablate.poll() is None:
        for variant, seed in EXPECTED:
            folder = ablation.ablation_dir(run_before_ablation, variant, seed)
            record = read_record(folder) if (folder / "task.json").exists() else None
            if (
                record
                and record["status"] == "running"
                and record["worker"] == workers["w1"]
                and (folder / ".ablation_train.partial.ipynb").exists()
            ):
                processes["w1"].send_signal(signal.SIGKILL)
                killed_in = folder
                break
        time.sleep(0.2)
    output, _ = ablate.communicate(timeout=600)
    assert killed_in is not None, f"w1 never started a task:\n{output}"
    assert ablate.returncode == 0, output
    assert _ablated(run_before_ablation) == EXPECTED
    record = read_record(killed_in)
    assert record["status"] == "finished" and record["worker"] == workers["w2"]
    assert record["attempts"] == 2 and record["interrupted"]["worker"] == workers["w1"]
    for variant, seed in EXPECTED:
        folder = ablation.ablation_dir(run_before_ablation, variant, seed)
        assert not (folder / ".ablation_train.partial.ipynb").exists()
        trained = load_trained(folder)
        assert trained.info["config"]["seed"] == seed and trained.model.count_params() > 0
