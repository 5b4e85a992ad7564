"""Learning-rate schedules whose length the data decides: warm up, hold, cool down on a plateau.

A cosine schedule must know the length of training before it starts, so a profile that states
30 epochs gives a small data set and a large one the same number of passes, and the large one
stops while it is still learning. The **plateau** schedule (warm-up, stable, decay: WSD) needs
no length in advance:

1. *warm-up*: the learning rate rises linearly from 0 to its peak over the first epoch;
2. *stable*: it holds the peak while the validation loss keeps improving;
3. *cool-down*: once the validation loss has not improved for ``patience`` epochs, or when the
   budget (most epochs, or seconds on this machine) would otherwise run out, it falls linearly to
   0 over ``fraction`` of the epochs run so far (at least 2), and training ends there.

Decaying from a constant learning rate whenever training is stopped matches a cosine schedule
of the same length (Hägele et al., *Scaling Laws and Compute-Optimal Training Beyond Fixed
Training Durations*, NeurIPS 2024), which is what lets the data choose the length.

:func:`cooldown_start` and :func:`plateau_learning_rate` are pure functions of the validation
history and the step, so an interrupted run that resumes replays the same decisions;
:class:`PlateauSchedule` applies them to a Keras optimiser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tumornb.backend import keras

__all__ = ["SCHEDULES", "Cooldown", "PlateauSchedule", "cooldown_start", "plateau_learning_rate"]

#: The learning-rate schedules a :class:`tumornb.training.TrainConfig` accepts.
SCHEDULES = ("cosine", "plateau")


@dataclass(frozen=True)
class Cooldown:
    """When the cool-down starts and how long it lasts, in epochs.

    Parameters
    ----------
    start : int
        Epochs run at the peak (warm-up included) before the cool-down's first epoch.
    length : int
        Epochs of cool-down; training ends after epoch ``start + length``.
    reason : {"plateau", "epochs", "time"}
        What started it: the validation loss stopped improving, or a budget.
    """

    start: int
    length: int
    reason: str

    @property
    def end(self) -> int:
        """Epochs in all once the cool-down is over."""
        return self.start + self.length


def cooldown_start(
    val_losses: Sequence[float],
    epoch_seconds: Sequence[float],
    *,
    patience: int = 8,
    fraction: float = 0.2,
    max_epochs: int,
    time_budget_s: float | None = None,
) -> Cooldown | None:
    """The first epoch end at which the plateau schedule starts to cool down, or None.

    Parameters
    ----------
    val_losses : sequence of float
        Validation loss after each epoch run so far.
    epoch_seconds : sequence of float
        Wall time of each of those epochs.
    patience : int, default=8
        Epochs without a new lowest validation loss that count as a plateau.
    fraction : float, default=0.2
        Length of the cool-down as a share of the epochs run before it (at least 2 epochs).
    max_epochs : int
        The budget in epochs: the cool-down starts early enough to end by then.
    time_budget_s : float, optional
        The budget in seconds: the cool-down starts when the epochs it needs, at the mean epoch
        time so far, would reach it.

    Returns
    -------
    Cooldown or None
        None while the learning rate should stay at its peak.

    Examples
    --------
    >>> cooldown_start([1.0, 0.8, 0.7, 0.71, 0.72], [1.0] * 5, patience=2, max_epochs=100)
    Cooldown(start=5, length=2, reason='plateau')
    >>> cooldown_start([1.0, 0.8, 0.7], [1.0] * 3, max_epochs=5)
    Cooldown(start=3, length=2, reason='epochs')
    """
    if patience < 1 or not 0 < fraction < 1:
        raise ValueError(f"patience must be at least 1 and fraction in (0, 1), got {patience} and {fraction}")
    best, waited, spent = math.inf, 0, 0.0
    for done, (loss, seconds) in enumerate(zip(val_losses, epoch_seconds, strict=True), start=1):
        best, waited = (loss, 0) if loss < best else (best, waited + 1)
        spent += seconds
        length = max(2, math.ceil(fraction * done))
        if waited >= patience:
            reason = "plateau"
        elif done + length >= max_epochs:
            reason = "epochs"
        elif time_budget_s is not None and spent + length * spent / done >= time_budget_s:
            reason = "time"
        else:
            continue
        return Cooldown(done, max(0, min(length, max_epochs - done)), reason)
    return None


def plateau_learning_rate(
    step: int, *, peak: float, steps_per_epoch: int, cooldown: Cooldown | None
) -> float:
    """The plateau schedule's learning rate for optimiser step ``step`` (counted from 0).

    Parameters
    ----------
    step : int
    peak : float
        The learning rate held between warm-up and cool-down.
    steps_per_epoch : int
    cooldown : Cooldown or None
        From :func:`cooldown_start`; None while there is none.

    Returns
    -------
    float

    Examples
    --------
    >>> [plateau_learning_rate(s, peak=1.0, steps_per_epoch=2, cooldown=Cooldown(2, 1, "plateau"))
    ...  for s in range(6)]
    [0.5, 1.0, 1.0, 1.0, 1.0, 0.5]
    """
    if step < steps_per_epoch:
        return peak * (step + 1) / steps_per_epoch
    if cooldown is None or cooldown.length == 0:
        return peak
    begin, end = cooldown.start * steps_per_epoch, cooldown.end * steps_per_epoch
    if step < begin:
        return peak
    return peak * max(0.0, (end - step) / (end - begin))


class PlateauSchedule(keras.callbacks.Callback):
    """Drive an optimiser's learning rate by the plateau schedule and stop when it has cooled down.

    Must come after the callback that writes ``seconds`` into each epoch's logs.

    Parameters
    ----------
    peak : float
    steps_per_epoch : int
    max_epochs : int
    patience : int, default=8
    fraction : float, default=0.2
    time_budget_s : float, optional
    val_losses, epoch_seconds : sequence of float
        The epochs an interrupted run already ran, so its decisions are replayed.
    """

    def __init__(
        self,
        peak: float,
        steps_per_epoch: int,
        *,
        max_epochs: int,
        patience: int = 8,
        fraction: float = 0.2,
        time_budget_s: float | None = None,
        val_losses: Sequence[float] = (),
        epoch_seconds: Sequence[float] = (),
    ):
        super().__init__()
        self.peak, self.steps_per_epoch = peak, steps_per_epoch
        self.rule = dict(
            patience=patience, fraction=fraction, max_epochs=max_epochs, time_budget_s=time_budget_s
        )
        self.val_losses, self.epoch_seconds = list(val_losses), list(epoch_seconds)
        self.cooldown = cooldown_start(self.val_losses, self.epoch_seconds, **self.rule)

    def on_train_begin(self, logs=None):
        """Count steps from where the optimiser is (after a resumption, not 0)."""
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None):
        """Set this step's learning rate."""
        self.model.optimizer.learning_rate = plateau_learning_rate(
            self.step, peak=self.peak, steps_per_epoch=self.steps_per_epoch, cooldown=self.cooldown
        )
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        """Decide on the cool-down, and stop once it is over."""
        self.val_losses.append(float(logs["val_loss"]))
        self.epoch_seconds.append(float(logs["seconds"]))
        if self.cooldown is None:
            self.cooldown = cooldown_start(self.val_losses, self.epoch_seconds, **self.rule)
        if self.cooldown is not None and len(self.val_losses) >= self.cooldown.end:
            self.model.stop_training = True
