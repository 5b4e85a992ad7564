"""Epoch progress from inside a chapter's kernel, shown in the terminal that runs the chapters.

A kernel's output goes into the executed notebook; the terminal running ``tumornb run`` sees only
papermill's per-cell bar, which stands still through a ten-minute training cell. So training
loops append one line per epoch to the file that ``$TUMORNB_PROGRESS_FILE`` names, when it is set
(:func:`report`), and the runner prints each new line of that file while a chapter runs
(:func:`follow`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PROGRESS_ENV", "epoch_message", "follow", "report"]

#: The environment variable naming the progress file of the chapter being run.
PROGRESS_ENV = "TUMORNB_PROGRESS_FILE"


def report(message: str) -> None:
    """Append ``message`` as one line to the progress file, if a runner follows one.

    Parameters
    ----------
    message : str
        One line, e.g. from :func:`epoch_message`.
    """
    path = os.environ.get(PROGRESS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(message.replace("\n", " ") + "\n")


def epoch_message(what: str, epoch: int, total: int, epoch_seconds: list[float], **values: float) -> str:
    """One line on a finished epoch, with an estimate of what remains.

    Parameters
    ----------
    what : str
        What is training, e.g. ``"classifier real"``.
    epoch : int
        The finished epoch, counting from 0.
    total : int
        Epochs planned (early stopping may end sooner).
    epoch_seconds : list of float
        The durations of the epochs run so far in this call; their mean times the epochs left
        is the estimate.
    **values : float
        Metrics to show, e.g. ``val_accuracy=0.81``.

    Returns
    -------
    str
    """
    shown = "".join(f", {name} {value:.3f}" for name, value in values.items())
    left = total - epoch - 1
    seconds = left * sum(epoch_seconds) / max(len(epoch_seconds), 1)
    remaining = f", about {seconds / 60:.1f} min left" if left > 0 and epoch_seconds else ""
    return f"{what}: epoch {epoch + 1}/{total}{shown}{remaining}"


@contextmanager
def follow(
    path: str | os.PathLike[str], emit: Callable[[str], None], *, interval: float = 0.5
) -> Iterator[None]:
    """Call ``emit`` with each line appended to ``path`` while the block runs, and with the rest after.

    Parameters
    ----------
    path : path-like
        The progress file; it need not exist yet.
    emit : callable
        Shows one line, e.g. ``tqdm.write``.
    interval : float, default=0.5
        Seconds between looks at the file.
    """
    path, done, position = Path(path), threading.Event(), 0

    def read_new() -> None:
        nonlocal position
        if not path.exists():
            return
        with path.open(encoding="utf-8") as file:
            file.seek(position)
            for line in file:
                if line.endswith("\n"):
                    emit(line.rstrip("\n"))
                    position += len(line.encode("utf-8"))

    def watch() -> None:
        while not done.wait(interval):
            read_new()

    watcher = threading.Thread(target=watch, name="tumornb-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        read_new()
