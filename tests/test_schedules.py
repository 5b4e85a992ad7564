"""The plateau learning-rate schedule: when it cools down, and the rate at each step."""

from __future__ import annotations

import pytest

from tumornb.schedules import Cooldown, cooldown_start, plateau_learning_rate


def test_a_plateau_starts_the_cooldown_after_patience_epochs_without_a_new_low():
    losses = [1.0, 0.8, 0.6, 0.61, 0.59, 0.6, 0.62, 0.63, 0.64]
    cooldown = cooldown_start(losses, [1.0] * len(losses), patience=3, fraction=0.2, max_epochs=100)
    # The last new low is epoch 5 (0.59); epochs 6, 7, 8 do not beat it.
    assert cooldown == Cooldown(start=8, length=2, reason="plateau")
    assert cooldown_start(losses[:7], [1.0] * 7, patience=3, max_epochs=100) is None


def test_the_cooldown_is_a_share_of_the_epochs_run_and_fits_the_epoch_budget():
    improving = [1.0 / (1 + n) for n in range(60)]
    cooldown = cooldown_start(improving, [1.0] * 60, fraction=0.25, max_epochs=50)
    # 40 epochs + a quarter of them = 50: the first epoch end where the budget says stop.
    assert cooldown == Cooldown(start=40, length=10, reason="epochs") and cooldown.end == 50
    tight = cooldown_start(improving, [1.0] * 60, fraction=0.25, max_epochs=3)
    assert tight.end == 3 and tight.length >= 1


def test_a_time_budget_starts_the_cooldown_so_that_it_ends_near_the_budget():
    improving = [1.0 / (1 + n) for n in range(100)]
    cooldown = cooldown_start(improving, [10.0] * 100, fraction=0.2, max_epochs=1000, time_budget_s=600)
    assert cooldown.reason == "time"
    assert 590 <= 10.0 * cooldown.end <= 610


def test_the_rate_warms_up_holds_and_falls_linearly_to_zero():
    cooldown = Cooldown(start=3, length=2, reason="plateau")
    rates = [plateau_learning_rate(s, peak=1.0, steps_per_epoch=4, cooldown=cooldown) for s in range(20)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]  # warm-up over the first epoch
    assert rates[4:12] == [1.0] * 8  # held until epoch 3 ends
    assert rates[12:20] == pytest.approx([1 - k / 8 for k in range(8)])  # 8 steps down to 1/8
    assert plateau_learning_rate(99, peak=1.0, steps_per_epoch=4, cooldown=None) == 1.0


def test_wrong_rule_parameters_are_refused():
    with pytest.raises(ValueError, match="patience must be at least 1"):
        cooldown_start([1.0], [1.0], patience=0, max_epochs=5)
