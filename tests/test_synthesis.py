"""Training the D-GAN resumably and writing its images with a manifest."""

import json

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from tumornb import synthesis  # noqa: E402
from tumornb.phantom import make_slice  # noqa: E402
from tumornb.synthesis import GANConfig, class_counts, train_gan, write_synthetic  # noqa: E402

SIDE = 32
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture(scope="module")
def phantom_images():
    images, labels = [], []
    for c, label in enumerate(CLASSES):
        for i in range(8):
            images.append(make_slice(label, rng=np.random.default_rng([c, i]), height=SIDE, width=SIDE).image)
            labels.append(c)
    return np.stack(images), np.array(labels)


def _config(**changes):
    return GANConfig(
        **{"image_size": SIDE, "epochs": 3, "batch_size": 8, "latent_dim": 16, "width": 8, "grid_every": 2}
        | changes
    )


def test_training_writes_its_artifacts_and_a_second_call_reuses_them(phantom_images, tmp_path):
    images, labels = phantom_images
    gan = train_gan(images, labels, tmp_path, _config(), class_names=CLASSES)
    assert gan.history["epoch"].tolist() == [0, 1, 2]
    assert np.isfinite(gan.history[["d_loss", "g_loss"]].to_numpy()).all()
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["epoch_0002.png", "epoch_0003.png"]
    info = json.loads((tmp_path / "gan.json").read_text())
    assert info["n_train"] == dict.fromkeys(CLASSES, 8) and len(info["generator_sha256"]["all"]) == 64
    again = train_gan(images, labels, tmp_path, _config(), class_names=CLASSES)
    np.testing.assert_array_equal(again.generate("glioma", 4, seed=1), gan.generate("glioma", 4, seed=1))
    with pytest.raises(FileExistsError, match="other settings"):
        train_gan(images, labels, tmp_path, _config(epochs=5), class_names=CLASSES)


def test_an_interrupted_run_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(
    phantom_images, tmp_path, monkeypatch
):
    images, labels = phantom_images
    whole = train_gan(images, labels, tmp_path / "whole", _config(), class_names=CLASSES)

    original = synthesis._NoiseGrid.on_epoch_end

    def killed_in_epoch_two(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")
        original(self, epoch, logs)

    monkeypatch.setattr(synthesis._NoiseGrid, "on_epoch_end", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train_gan(images, labels, tmp_path / "cut", _config(), class_names=CLASSES)
    assert (
        not (tmp_path / "cut" / "gan.json").exists()
        and not (tmp_path / "cut" / "generator.weights.h5").exists()
    )
    monkeypatch.setattr(synthesis._NoiseGrid, "on_epoch_end", original)
    resumed = train_gan(images, labels, tmp_path / "cut", _config(), class_names=CLASSES)
    assert resumed.history["epoch"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(
        resumed.history[["d_loss", "g_loss"]].to_numpy(),
        whole.history[["d_loss", "g_loss"]].to_numpy(),
        rtol=1e-4,
    )
    resumed_weights = resumed.models["all"].ema_generator.get_weights()
    for a, b in zip(resumed_weights, whole.models["all"].ema_generator.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_per_class_variant_trains_one_gan_per_class(phantom_images, tmp_path):
    images, labels = phantom_images
    gan = train_gan(images, labels, tmp_path, _config(variant="per_class", epochs=1), class_names=CLASSES)
    assert sorted(gan.models) == sorted(CLASSES)
    assert sorted(gan.history["model"].unique()) == sorted(CLASSES)
    assert all((tmp_path / name / "generator.weights.h5").exists() for name in CLASSES)
    assert gan.generate("pituitary", 3).shape == (3, SIDE, SIDE)


def test_class_counts_round_the_fraction_per_class():
    assert class_counts({"a": 257, "b": 10, "c": 0}, 0.30) == {"a": 77, "b": 3, "c": 0}
    with pytest.raises(ValueError, match="at least 0"):
        class_counts({"a": 1}, -0.1)


def test_write_synthetic_writes_the_requested_counts_and_replaces_an_earlier_set(phantom_images, tmp_path):
    images, labels = phantom_images
    gan = train_gan(images, labels, tmp_path / "gan", _config(epochs=1), class_names=CLASSES)
    out = tmp_path / "synthetic"
    write_synthetic(gan, {"glioma": 5, "meningioma": 5, "notumor": 5, "pituitary": 5}, out, seed=0)
    manifest = write_synthetic(gan, {"glioma": 3, "meningioma": 0, "notumor": 2, "pituitary": 1}, out, seed=1)
    on_disk = pd.read_csv(out / "manifest.csv")
    pd.testing.assert_frame_equal(on_disk, manifest)
    assert manifest["label"].value_counts().to_dict() == {"glioma": 3, "notumor": 2, "pituitary": 1}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(manifest["path"])
    assert set(manifest["generator_sha256"]) == {gan.info["generator_sha256"]["all"]}
    assert not list(tmp_path.glob(".synthetic*"))


@pytest.mark.slow
def test_chapter_02_writes_both_gans_and_the_requested_counts_in_the_smoke_run(smoke_run):
    """Check chapter 02's artifacts after the smoke profile."""
    from tumornb.paths import RunDir
    from tumornb.profiles import profile_parameters

    run = RunDir(smoke_run)
    smoke = profile_parameters("smoke")
    conditional = json.loads((run.gan_dir("conditional") / "gan.json").read_text())
    assert conditional["config"]["epochs"] == smoke["gan_epochs"]
    assert conditional["config"]["image_size"] == smoke["gan_image_size"]
    per_class = json.loads((run.gan_dir("per_class") / "gan.json").read_text())
    assert sorted(per_class["generator_sha256"]) == CLASSES
    manifest = pd.read_csv(run.synthetic_manifest)
    from tumornb.ablation import extreme_synthetic_count

    # Enough for chapter 03's +30% and for the ablation's 10% real + 90% synthetic variant.
    expected = {
        name: max(round(0.30 * n), extreme_synthetic_count(n)) for name, n in conditional["n_train"].items()
    }
    assert manifest.groupby("label").size().to_dict() == expected
    # Every image names the generator that drew it: the one GAN, or its class's GAN.
    written = json.loads(run.fidelity_json.read_text())["synthetic_source"]["written"]
    hashes = json.loads((run.gan_dir(written) / "gan.json").read_text())["generator_sha256"]
    drew = manifest["label"].map(lambda label: hashes["all" if written == "conditional" else label])
    assert (manifest["variant"] == written).all() and (manifest["generator_sha256"] == drew).all()
    assert all((run.synthetic_dir / path).is_file() for path in manifest["path"])


def test_a_conditional_norm_gan_reloads_with_its_architecture_and_learning_rate(phantom_images, tmp_path):
    images, labels = phantom_images
    config = _config(epochs=1, conditional_norm=True, learning_rate=1e-3)
    gan = train_gan(images, labels, tmp_path, config, class_names=CLASSES)
    model = gan.models["all"]
    assert float(keras.ops.convert_to_numpy(model.g_optimizer.learning_rate)) == pytest.approx(1e-3)
    assert any(layer.name == "stage1_gain" for layer in model.ema_generator.layers)
    again = train_gan(images, labels, tmp_path, config, class_names=CLASSES)
    np.testing.assert_array_equal(again.generate("notumor", 4, seed=2), gan.generate("notumor", 4, seed=2))
    assert json.loads((tmp_path / "gan.json").read_text())["config"]["conditional_norm"] is True
