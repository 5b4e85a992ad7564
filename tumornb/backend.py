"""TensorFlow and Keras, imported in one place with their start-up notices silenced.

Importing TensorFlow writes two lines straight to the process's standard error from C++
("All log messages before absl::InitializeLog() ..." and the oneDNN notice), which neither
``TF_CPP_MIN_LOG_LEVEL`` nor Python's warning filters reach. They carry no information a
reader of this book can act on, yet they land in every terminal and every executed chapter.
Every module of the package that needs either library imports it from here::

    from tumornb.backend import keras, layers, tf
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keras", "layers", "tf"]


@contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send file descriptor 2 to the null device for the block, then restore it.

    Python exceptions raised in the block are printed after it ends, so they are not lost.
    """
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with silenced_stderr():
    import keras
    import tensorflow as tf
    from keras import layers
