"""The classifiers of chapter 03, built with the Keras functional API.

Two models, chosen by name through :func:`build_model`:

``seed_cnn``
    The reference: the network of the typical public notebook for these Kaggle
    datasets (three conv + max-pool stages with 32, 64 and 128 filters, a dense
    layer of 128 units, dropout 0.5, softmax), trained with Adam at a constant
    learning rate and plain categorical cross-entropy. Shipped so the book can
    compare against it on equal terms.
``tumornb_cnn``
    The project's default. It spends its compute where a small CPU budget pays:
    a strided stem (a stride-2 convolution and a max-pool take 128 px to 32 px
    before the first 3x3 convolution), residual stages of two 3x3 convolutions,
    global average pooling instead of a large flatten-dense layer (so it has
    about a quarter of ``seed_cnn``'s parameters),
    label smoothing, and AdamW with a warm-up then cosine learning-rate
    schedule. Its normalisation layers are group normalisation, not batch
    normalisation: batch statistics of augmented training batches differ from
    those of clean validation images, and on a few thousand images that
    mismatch made batch-normalised models swing by 20 points from epoch to
    epoch (measured; see chapter 03).

Every model takes grey-level images of shape ``(image_size, image_size, 1)``
with values in [0, 255] and rescales them itself, so whoever calls
:meth:`keras.Model.predict` needs no preprocessing beyond
:func:`tumornb.data.preprocess`.
"""

from __future__ import annotations

from collections.abc import Callable

from tumornb.backend import keras, layers

__all__ = ["MODELS", "PEAK_LEARNING_RATE", "build_model", "compile_model", "seed_cnn", "tumornb_cnn"]

#: AdamW's peak learning rate for every model but ``seed_cnn`` when none is given.
PEAK_LEARNING_RATE = 2e-3


def seed_cnn(image_size: int = 128, n_classes: int = 4) -> keras.Model:
    """The seed project's CNN: conv 32/64/128 with max-pooling, dense 128, dropout 0.5.

    Parameters
    ----------
    image_size : int, default=128
        Side of the square grey-level input.
    n_classes : int, default=4

    Returns
    -------
    keras.Model
        Uncompiled; see :func:`compile_model`.
    """
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def _norm_relu(x, groups: int):
    x = layers.GroupNormalization(groups=groups)(x)
    return layers.Activation("relu")(x)


def _residual_stage(x, filters: int, groups: int, *, pool: bool = True):
    """Two 3x3 convolutions with a skip connection, then (optionally) 2x2 max-pooling."""
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False)(x)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    y = _norm_relu(y, groups)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.GroupNormalization(groups=groups)(y)
    x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    return layers.MaxPooling2D()(x) if pool else x


def tumornb_cnn(
    image_size: int = 128,
    n_classes: int = 4,
    *,
    stem: int = 24,
    widths: tuple[int, ...] = (32, 64, 128, 192),
    groups: int = 8,
    dropout: float = 0.3,
    width: float = 1.0,
) -> keras.Model:
    """The project's default classifier: strided stem, residual stages, global pooling.

    The stem (a strided 5x5 convolution, then max-pooling) takes a 128 px image
    to 32 px before any 3x3 convolution runs: on a CPU this is what makes the
    model about twice as fast per image as ``seed_cnn`` while being deeper.

    Parameters
    ----------
    image_size : int, default=128
        Side of the square grey-level input; a multiple of ``2 ** (len(widths) + 1)``.
    n_classes : int, default=4
    stem : int, default=24
        Filters of the stem convolution.
    widths : tuple of int, default=(32, 64, 128, 192)
        Filters of each residual stage; every stage but the last halves the resolution.
    groups : int, default=8
        Groups of the group-normalisation layers.
    dropout : float, default=0.3
        Dropout before the classifier.
    width : float, default=1.0
        Multiplies ``stem`` and ``widths``, each rounded to a multiple of ``groups``.

    Returns
    -------
    keras.Model
        Uncompiled; see :func:`compile_model`.
    """
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    divisor = 2 ** (len(widths) + 1)
    if image_size % divisor:
        raise ValueError(f"tumornb_cnn needs an image_size that is a multiple of {divisor}, got {image_size}")
    stem, *widths = (max(groups, groups * round(f * width / groups)) for f in (stem, *widths))
    x = layers.Conv2D(stem, 5, strides=2, padding="same", use_bias=False)(x)
    x = _norm_relu(x, groups)
    x = layers.MaxPooling2D()(x)
    for i, filters in enumerate(widths):
        x = _residual_stage(x, filters, groups, pool=i < len(widths) - 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="tumornb_cnn")


#: Model builders by name: ``build(image_size, n_classes) -> keras.Model``.
MODELS: dict[str, Callable[..., keras.Model]] = {"seed_cnn": seed_cnn, "tumornb_cnn": tumornb_cnn}


def build_model(name: str, image_size: int = 128, n_classes: int = 4, *, width: float = 1.0) -> keras.Model:
    """Build the model called ``name`` (a key of :data:`MODELS`).

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    image_size : int, default=128
    n_classes : int, default=4
    width : float, default=1.0
        Multiplies every layer's filters. Only ``tumornb_cnn`` has a width to change;
        ``seed_cnn`` is the seed project's network as it was.

    Returns
    -------
    keras.Model
        Uncompiled (see :func:`compile_model`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    if width == 1.0:
        return MODELS[name](image_size, n_classes)
    if name != "tumornb_cnn":
        raise ValueError(f"only tumornb_cnn has a width to change, not {name!r}")
    return tumornb_cnn(image_size, n_classes, width=width)


def compile_model(
    model: keras.Model,
    *,
    steps_per_epoch: int,
    epochs: int,
    learning_rate: float | None = None,
    jit_compile: bool | str = "auto",
    total_steps: int | None = None,
    ema: float | None = None,
    schedule: str = "cosine",
) -> keras.Model:
    """Compile ``model`` with the optimiser and loss that belong to it.

    ``seed_cnn`` gets the seed project's recipe: Adam at a constant 1e-3 and
    categorical cross-entropy. Every other model gets AdamW (weight decay 1e-4)
    with a linear warm-up over the first epoch then cosine decay to zero at
    ``epochs``, and cross-entropy with label smoothing 0.1.

    Parameters
    ----------
    model : keras.Model
    steps_per_epoch, epochs : int
        Length of training, for the learning-rate schedule.
    learning_rate : float, optional
        Peak learning rate; default 1e-3 for ``seed_cnn``, 2e-3 otherwise.
    jit_compile : bool or "auto", default="auto"
        Passed to :meth:`keras.Model.compile` (XLA). ``seed_cnn`` is always
        compiled without XLA, as Keras 2 did: on this project's 2-core CPU, XLA
        made it 40% slower (54 against 88 images/s), while it makes
        ``tumornb_cnn`` a little faster (164 against 156).
    total_steps : int, optional
        The schedule's length in steps when training has a budget in steps
        (default ``steps_per_epoch * epochs``).
    ema : float, optional
        Momentum of a moving average of the weights kept by the optimiser.
    schedule : {"cosine", "plateau"}, default="cosine"
        ``"plateau"`` compiles with a constant learning rate at the peak, for
        :class:`tumornb.schedules.PlateauSchedule` to drive during training.
    """
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    averaging = {"use_ema": ema is not None, "ema_momentum": ema or 0.99}
    if model.name == "seed_cnn":
        optimizer = keras.optimizers.Adam(learning_rate or 1e-3, **averaging)
        loss = keras.losses.CategoricalCrossentropy()
        jit_compile = False
    else:
        peak = learning_rate or PEAK_LEARNING_RATE
        if schedule == "plateau":
            rate = peak
        else:
            total = max(1, total_steps or steps_per_epoch * epochs)
            warmup = min(steps_per_epoch, total // 2)
            rate = keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=0.0, decay_steps=total - warmup, warmup_target=peak, warmup_steps=warmup
            )
        optimizer = keras.optimizers.AdamW(rate, weight_decay=1e-4, **averaging)
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)
    # Built now, not inside the first training step: an optimiser that creates its slots while
    # tf.function traces the step makes TensorFlow trace the whole step twice (seconds per model).
    model.optimizer.build(model.trainable_variables)
    return model
