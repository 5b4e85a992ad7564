"""One way to execute a notebook: papermill into a partial file, renamed only when it finished.

The chapters (:mod:`tumornb.runner`), the ablation's repetitions
(:mod:`tumornb.ablation`) and the sweep's points (:mod:`tumornb.sweep`) all
execute notebooks through :func:`execute_notebook`, so they share one rule for
what an interrupted or failed execution leaves behind:

- while it runs, papermill writes ``.NAME.partial.ipynb`` beside the target;
- when every cell ran, that file becomes ``NAME.ipynb``;
- when a cell raised, it becomes ``NAME.failed.ipynb`` and :class:`ExecutionFailed`
  names the notebook, the cell and the error;
- when the process is interrupted, no ``NAME.ipynb`` is left to look current.

Kernels talk to papermill over Unix-domain sockets (:data:`KERNEL_TRANSPORT`), so
notebooks executed at once, e.g. by two Dask workers, never race for TCP ports.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tumornb.progress import PROGRESS_ENV, follow

__all__ = [
    "KERNEL_ENV",
    "KERNEL_TRANSPORT",
    "ExecutionFailed",
    "declared_parameters",
    "execute_notebook",
    "failed_path",
    "kernel_environment",
]

# TensorFlow's C++ logging writes timestamps into cell output; keep kernels quiet. oneDNN stays
# on (its one start-up notice goes to stderr, which the book hides): here it trains CNNs ~1.4x faster.
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
# ipykernel warns at every start that a local kernel talks over TCP without encryption; a cell's
# error still reaches papermill, which reports it, so the kernel logs only its own errors.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
# Over TCP, jupyter_client picks a kernel's five ports by binding and releasing them before the kernel
# binds them itself, so kernels started at once by Dask workers or parallel tests can race for a port
# ("ZMQError: Address already in use"). Unix-domain sockets in a folder of the kernel's own cannot.
KERNEL_TRANSPORT = "tcp" if os.name == "nt" else "ipc"
IPC_PATH_LIMIT = 100


class ExecutionFailed(RuntimeError):
    """A cell raised; the message names the notebook, the cell and the error."""


@contextmanager
def kernel_environment(extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """Set :data:`KERNEL_ENV` for the kernels started inside the block, then restore the caller's values.

    A kernel inherits its environment from the process that starts it; papermill
    offers no other way to pass one, so the variables are set only while it runs.

    Parameters
    ----------
    extra : mapping of str to str, optional
        More variables for the kernel, e.g. the progress file (:mod:`tumornb.progress`).
    """
    variables = {**KERNEL_ENV, **(extra or {})}
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def declared_parameters(notebook: str | os.PathLike[str]) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``.

    Parameters
    ----------
    notebook : path-like

    Returns
    -------
    set of str
        The names assigned in its cell tagged ``parameters``.
    """
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def failed_path(output: str | os.PathLike[str]) -> Path:
    """Where a failed execution of ``output`` is kept: ``NAME.failed.ipynb`` beside it.

    Parameters
    ----------
    output : path-like
        Where the executed copy would go.

    Returns
    -------
    Path
        ``NAME.failed.ipynb`` beside it.
    """
    output = Path(output)
    return output.with_name(f"{output.stem}.failed.ipynb")


def execute_notebook(
    notebook: str | os.PathLike[str],
    output: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    *,
    cwd: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> Path:
    """Execute ``notebook`` with ``parameters`` into ``output``.

    Parameters
    ----------
    notebook : path-like
        The notebook to execute; it is not modified.
    output : path-like
        The executed copy, present only once every cell ran.
    parameters : mapping
        Values injected after the cell tagged ``parameters``. Names the notebook
        does not declare are dropped, so one profile can serve every notebook.
    cwd : path-like, optional
        The kernel's working directory (default: the notebook's folder).
    progress : bool, default=False
        Show papermill's per-cell progress bar, and below it each epoch that a training loop in
        the notebook reports (:mod:`tumornb.progress`).

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ExecutionFailed
        When a cell raises; the executed copy is kept as :func:`failed_path`.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook, output = Path(notebook), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial.ipynb")
    failed = failed_path(output)
    output.unlink(missing_ok=True)  # never leave an earlier execution's copy looking current
    failed.unlink(missing_ok=True)
    declared = declared_parameters(notebook)
    progress_file = output.with_name(f".{output.stem}.progress")
    progress_file.unlink(missing_ok=True)
    followed = {PROGRESS_ENV: str(progress_file)} if progress else {}
    try:
        with (
            kernel_environment(followed),
            _following(progress_file, progress),
            _kernel_config() as config,
        ):
            papermill.execute_notebook(
                str(notebook),
                str(partial),
                parameters={k: v for k, v in parameters.items() if k in declared},
                kernel_name="python3",
                cwd=str(cwd or notebook.parent),
                progress_bar=progress,
                log_output=False,
                extra_arguments=KERNEL_ARGUMENTS,
                config=config,
            )
    except PapermillExecutionError as exc:
        os.replace(partial, failed)
        raise ExecutionFailed(
            f"{notebook.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
            f"(executed copy: {failed})"
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        progress_file.unlink(missing_ok=True)
    os.replace(partial, output)
    return output


@contextmanager
def _kernel_config() -> Iterator[Any]:
    """The kernel manager's configuration: :data:`KERNEL_TRANSPORT`, with ipc sockets in a fresh folder.

    The folder is made in the temporary directory; where its path would be too long for
    a socket, the kernel talks over TCP instead.
    """
    from traitlets.config import Config

    if KERNEL_TRANSPORT != "ipc":
        yield Config()
        return
    with tempfile.TemporaryDirectory(prefix="tumornb-kernel-") as folder:
        sockets = os.path.join(folder, "kernel")
        # A socket's path holds at most 104 bytes (macOS; 108 on Linux), with "-5" after this one.
        if len(os.fsencode(sockets)) > IPC_PATH_LIMIT:
            yield Config()  # a long $TMPDIR: TCP, as on Windows
        else:
            yield Config({"KernelManager": {"transport": "ipc", "ip": sockets}})


@contextmanager
def _following(progress_file: Path, on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    from tqdm import tqdm

    with follow(progress_file, lambda line: tqdm.write(f"  {line}", file=sys.stderr)):
        yield
