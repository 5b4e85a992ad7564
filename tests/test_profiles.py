import pytest

from tumornb.profiles import PROFILES, epochs_within

# The default profile's phantom after chapter 03's validation split, as chapter 02 prints it.
DEFAULT_PHANTOM_TRAINING_IMAGES = 1_028


@pytest.mark.parametrize(
    ("epochs", "n_images", "budget", "expected"),
    [
        (30, 1_028, 31_000, 30),  # the phantom: the budget does not bind
        (30, 2_460, 31_000, 12),  # the Sartaj download
        (30, 5_700, 31_000, 5),  # the largest download
        (30, 5_700, None, 30),  # no budget
        (30, 50_000, 31_000, 1),  # never below one epoch
        (3, 10, 1_000, 3),  # never above the epochs
    ],
)
def test_an_image_budget_trains_the_epochs_that_fit_it(epochs, n_images, budget, expected):
    """Check that the epochs shown fit the budget, at least one and at most ``epochs``."""
    assert epochs_within(epochs, n_images, budget) == expected
    if budget is not None and expected > 1:
        assert expected * n_images <= budget


@pytest.mark.parametrize(("epochs", "n_images", "budget"), [(0, 10, 100), (5, 0, 100), (5, 10, 0)])
def test_a_budget_or_size_below_one_is_a_clear_error(epochs, n_images, budget):
    """Check that nonsense sizes are refused rather than turned into zero epochs."""
    with pytest.raises(ValueError, match="at least 1"):
        epochs_within(epochs, n_images, budget)


def test_the_default_profile_budgets_leave_the_phantom_its_epochs():
    """Check that the default book trains the epochs it did before the budgets, and a large download fewer."""
    default = PROFILES["default"]
    for network in ("gan", "judge"):
        epochs, budget = default[f"{network}_epochs"], default[f"{network}_image_budget"]
        assert epochs_within(epochs, DEFAULT_PHANTOM_TRAINING_IMAGES, budget) == epochs
        assert epochs_within(epochs, 5_700, budget) < epochs / 4
    for profile in PROFILES.values():
        assert "gan_image_budget" in profile and "judge_image_budget" in profile
