"""The classifiers: forward pass, parameter counts, compile recipes, safe saving."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tumornb.models import MODELS, build_model, compile_model  # noqa: E402


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_pass_gives_class_probabilities(name):
    model = build_model(name, image_size=64, n_classes=4)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 1)).astype(np.float32)
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities >= 0).all()


def test_seed_cnn_is_the_seed_projects_network():
    model = build_model("seed_cnn", image_size=128)
    # conv 32/64/128 (3x3, valid) + max-pool leaves 14x14x128 = 25,088 features for Dense(128).
    conv = (9 * 1 + 1) * 32 + (9 * 32 + 1) * 64 + (9 * 64 + 1) * 128
    dense = (14 * 14 * 128 + 1) * 128 + (128 + 1) * 4
    assert model.count_params() == conv + dense == 3_304_580
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 3 and kinds.count("MaxPooling2D") == 3 and kinds.count("Dropout") == 1


def test_default_model_is_small_and_size_independent():
    small, large = build_model("tumornb_cnn", 64), build_model("tumornb_cnn", 128)
    # Global pooling: the parameter count does not grow with the image.
    assert small.count_params() == large.count_params()
    assert large.count_params() < build_model("seed_cnn", 128).count_params() / 3


def test_width_multiplies_the_filters_of_the_default_model_only():
    wide = build_model("tumornb_cnn", 64, width=2.0)
    filters = [layer.filters for layer in wide.layers if layer.__class__.__name__ == "Conv2D"]
    assert filters[0] == 48 and max(filters) == 384  # 24 and 192, doubled
    assert wide.count_params() > 2 * build_model("tumornb_cnn", 64).count_params()
    with pytest.raises(ValueError, match="only tumornb_cnn has a width"):
        build_model("seed_cnn", 64, width=2.0)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet'.*seed_cnn"):
        build_model("resnet")


def test_each_model_gets_its_own_recipe():
    seed = compile_model(build_model("seed_cnn", 64), steps_per_epoch=10, epochs=5)
    default = compile_model(build_model("tumornb_cnn", 64), steps_per_epoch=10, epochs=5)
    assert type(seed.optimizer).__name__ == "Adam"
    assert float(seed.optimizer.learning_rate) == pytest.approx(1e-3)
    assert type(default.optimizer).__name__ == "AdamW"
    assert default.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    schedule = (
        default.optimizer._learning_rate
    )  # warm-up from 0 to the peak over the first epoch, then cosine
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(10)) == pytest.approx(2e-3)
    assert float(schedule(50)) == pytest.approx(0.0, abs=1e-9)


def test_the_training_step_is_traced_once():
    """Check that fit traces train_step once: the optimiser's slots exist before the first step."""
    import tensorflow as tf

    model = compile_model(build_model("tumornb_cnn", 32), steps_per_epoch=2, epochs=1)
    traced = []
    step = model.train_step

    def counted_step(data):
        traced.append(data)  # runs once per trace, not per batch
        return step(data)

    model.train_step = counted_step
    x = np.zeros((4, 32, 32, 1), "float32")
    y = tf.one_hot([0, 1, 2, 3], 4)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert len(traced) == 1


def test_models_reload_in_safe_mode_with_identical_predictions(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 1)).astype(np.float32)
    for name in MODELS:
        model = build_model(name, 64)
        model.save(tmp_path / f"{name}.keras")
        again = keras.models.load_model(tmp_path / f"{name}.keras", safe_mode=True)
        np.testing.assert_allclose(
            again.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5
        )
