"""Training: the validation split, mixing synthetic images, artifacts, resuming after interruption."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tumornb.audit import audit_dataset  # noqa: E402
from tumornb.data import grouped_holdout, read_manifest  # noqa: E402
from tumornb.datasets import add_synthetic, real_training_set, select_synthetic  # noqa: E402
from tumornb.models import build_model  # noqa: E402
from tumornb.paths import RunDir  # noqa: E402
from tumornb.pipeline import NO_AUGMENTATION  # noqa: E402
from tumornb.training import TrainConfig, load_trained, train_classifier  # noqa: E402

SIDE = 32


@pytest.fixture(scope="module")
def eda_run(phantom_dir, tmp_path_factory):
    """A run directory after chapter 01, at 32 px."""
    run_dir = tmp_path_factory.mktemp("eda") / "run"
    audit_dataset(phantom_dir, run_dir, image_size=SIDE)
    return run_dir


def test_validation_split_is_stratified_seeded_and_keeps_groups_together():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], [60, 40, 20])
    groups = np.full(len(labels), -1)
    groups[rng.choice(len(labels), 40, replace=False)] = rng.integers(0, 12, 40)  # 12 duplicate groups
    held = grouped_holdout(labels, groups, fraction=0.2, seed=3)
    assert np.array_equal(held, grouped_holdout(labels, groups, fraction=0.2, seed=3))
    assert not np.array_equal(held, grouped_holdout(labels, groups, fraction=0.2, seed=4))
    for g in range(12):
        sides = set(held[groups == g])
        assert len(sides) <= 1, f"duplicate group {g} straddles the split"
    for label in "abc":
        share = held[labels == label].mean()
        assert 0.1 < share < 0.35, (label, share)


def test_real_training_set_never_contains_test_images(eda_run):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    manifest = read_manifest(RunDir(eda_run).manifest)
    test_paths = set(manifest.loc[manifest["split"] == "test", "path"])
    used = set(ts.train_rows["path"]) | set(ts.val_rows["path"])
    assert not used & test_paths
    assert used == set(manifest.loc[(manifest["split"] == "train") & (manifest["error"] == ""), "path"])
    assert ts.x_train.shape[1:] == (SIDE, SIDE) and len(ts.x_train) == len(ts.y_train) == len(ts.train_rows)
    assert ts.class_names == ["glioma", "meningioma", "notumor", "pituitary"]
    assert (ts.counts()["validation"] == 3).all()  # 12 per class, a quarter held out
    assert np.array_equal(ts.y_train, ts.train_rows["label"].map(ts.class_names.index).to_numpy())


def _synthetic_manifest(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{label}/{i}.png", label) for label, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["path", "label"])


def test_synthetic_selection_has_exact_counts_per_class():
    real = pd.Series(["glioma"] * 100 + ["notumor"] * 33 + ["pituitary"] * 7)
    synthetic = _synthetic_manifest({"glioma": 50, "notumor": 50, "pituitary": 50})
    chosen = select_synthetic(synthetic, real, fraction=0.3, seed=0)
    assert chosen["label"].value_counts().to_dict() == {"glioma": 30, "notumor": 10, "pituitary": 2}
    assert chosen["path"].is_unique
    again = select_synthetic(synthetic, real, fraction=0.3, seed=0)
    assert again.equals(chosen)
    assert len(select_synthetic(synthetic, real, fraction=0.0)) == 0


def test_too_few_synthetic_images_is_a_clear_error():
    real = pd.Series(["glioma"] * 100)
    with pytest.raises(
        ValueError, match="made 20 synthetic glioma images but synthetic_fraction=0.3 needs 30"
    ):
        select_synthetic(_synthetic_manifest({"glioma": 20}), real, fraction=0.3)


def test_add_synthetic_appends_to_training_only(eda_run, tmp_path):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    run = RunDir(eda_run)
    assert add_synthetic(ts, eda_run) is None  # no chapter 02 output yet
    rows = []
    for label in ts.class_names:
        (run.synthetic_dir / label).mkdir(parents=True, exist_ok=True)
        for i in range(5):
            cv2.imwrite(str(run.synthetic_dir / label / f"{i}.png"), np.full((48, 48), 100 + i, np.uint8))
            rows.append((f"{label}/{i}.png", label))
    try:
        pd.DataFrame(rows, columns=["path", "label"]).to_csv(run.synthetic_manifest, index=False)
        mixed = add_synthetic(ts, eda_run, fraction=0.5, seed=0)
    finally:
        import shutil

        shutil.rmtree(run.synthetic_dir)
    n_extra = mixed.counts()["train"] - ts.counts()["train"]
    assert n_extra.to_dict() == {name: round(0.5 * 9) for name in ts.class_names}
    assert np.array_equal(mixed.x_val, ts.x_val) and len(mixed.val_rows) == len(ts.val_rows)
    assert mixed.x_train.shape[1:] == (SIDE, SIDE)
    synthetic_part = mixed.x_train[len(ts.x_train) :]
    assert set(np.unique(synthetic_part)) <= {0, 100, 101, 102, 103, 104}  # letterboxed flat PNGs
    assert mixed.train_rows["synthetic"].sum() == n_extra.sum()


def _config(**kwargs) -> TrainConfig:
    return TrainConfig(model="tumornb_cnn", image_size=SIDE, batch_size=8, seed=1, **kwargs)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch: int):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt("simulated kill")


def test_training_writes_its_artifacts(eda_run, tmp_path):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    result = train_classifier(
        ts.x_train,
        ts.y_train,
        ts.x_val,
        ts.y_val,
        tmp_path / "m",
        _config(epochs=2),
        class_names=ts.class_names,
    )
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["history.csv", "model.keras", "train.json"]
    info = json.loads((tmp_path / "m" / "train.json").read_text())
    assert info["epochs_run"] == 2 and info["n_train"] == len(ts.x_train) and info["config"]["seed"] == 1
    assert info["class_names"] == ts.class_names and info["preprocessing"]["image_size"] == SIDE
    assert info["train_images_per_s"] > 0 and info["versions"]["keras"] == keras.__version__
    assert list(result.history["epoch"]) == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds", "learning_rate"} <= set(result.history)
    assert info["best_epoch"] == int(result.history["val_loss"].idxmin())
    loaded = load_trained(tmp_path / "m")
    np.testing.assert_allclose(
        loaded.model.predict(ts.x_val[..., None].astype("float32"), verbose=0),
        result.model.predict(ts.x_val[..., None].astype("float32"), verbose=0),
        rtol=1e-5,
    )


def test_interrupted_training_resumes_where_it_stopped(eda_run, tmp_path):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    args = (ts.x_train, ts.y_train, ts.x_val, ts.y_val)
    config = _config(epochs=4, augmentation=NO_AUGMENTATION)

    straight = train_classifier(*args, tmp_path / "straight", config, class_names=ts.class_names)

    with pytest.raises(KeyboardInterrupt):
        train_classifier(
            *args, tmp_path / "resumed", config, class_names=ts.class_names, callbacks=[_Interrupt(2)]
        )
    assert not (tmp_path / "resumed" / "train.json").exists()  # nothing marks the run finished
    with pytest.raises(FileNotFoundError, match="no finished training run"):
        load_trained(tmp_path / "resumed")
    assert len(pd.read_csv(tmp_path / "resumed" / "history.csv")) == 2

    resumed = train_classifier(*args, tmp_path / "resumed", config, class_names=ts.class_names)
    assert resumed.info["resumed_from_epoch"] == 2
    assert list(resumed.history["epoch"]) == [0, 1, 2, 3]
    assert not (tmp_path / "resumed" / "backup").exists()
    # Same weights, same optimiser state and same batches from epoch 2 on: the same run.
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-4)
    np.testing.assert_allclose(resumed.history["val_loss"], straight.history["val_loss"], rtol=1e-4)


def test_a_new_run_in_an_old_folder_starts_afresh(eda_run, tmp_path):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    args = (ts.x_train, ts.y_train, ts.x_val, ts.y_val, tmp_path / "m")
    train_classifier(*args, _config(epochs=3), class_names=ts.class_names)
    again = train_classifier(*args, _config(epochs=1), class_names=ts.class_names)
    assert again.info["resumed_from_epoch"] == 0 and list(again.history["epoch"]) == [0]


@pytest.mark.slow
def test_chapter_03_trains_both_variants_in_the_smoke_run(smoke_run):
    """Check chapter 03's artifacts after the smoke profile, with chapter 02's images mixed in."""
    run = RunDir(smoke_run)
    trained = load_trained(run.model_dir("real"))
    assert trained.info["config"]["epochs"] == 2 and trained.info["config"]["image_size"] == 64
    assert trained.info["epochs_run"] == 2 and list(trained.history["epoch"]) == [0, 1]
    assert trained.model.input_shape == (None, 64, 64, 1) and trained.model.output_shape == (None, 4)
    mixed = load_trained(run.model_dir("real+synthetic"))
    synthetic = pd.read_csv(run.synthetic_manifest)
    # Chapter 02 wrote more (for the ablation); chapter 03 took round(0.30 x real count) per class.
    assert abs(mixed.info["n_synthetic"] - 0.30 * trained.info["n_train"]) <= 2  # rounded per class
    assert len(synthetic) > mixed.info["n_synthetic"]
    assert mixed.info["n_train"] == trained.info["n_train"] + mixed.info["n_synthetic"]


def test_history_plots_take_every_variant(tmp_path):
    from tumornb.plots import _long_history, history_chart

    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "loss": [3, 2, 1],
            "accuracy": [0.3, 0.5, 0.7],
            "val_loss": [3, 2.5, 2],
            "val_accuracy": [0.25, 0.4, 0.6],
        }
    )
    long = _long_history({"real": history, "real+synthetic": history.assign(loss=[4, 3, 2])})
    assert len(long) == 2 * 2 * 2 * 3  # variants x metrics x splits x epochs
    assert long["epoch"].min() == 1  # shown counting from 1
    row = long[(long.variant == "real+synthetic") & (long.metric == "loss") & (long.split == "train")]
    assert row["value"].tolist() == [4, 3, 2]
    spec = history_chart({"real": history}).to_dict()
    assert spec["facet"]["column"]["field"] == "metric"


def test_mixed_precision_when_asked_and_float32_otherwise(eda_run, tmp_path, monkeypatch):
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    data = (ts.x_train[:16], ts.y_train[:16], ts.x_val, ts.y_val)
    mixed = train_classifier(
        *data, tmp_path / "mixed", _config(epochs=1, mixed_precision=True), class_names=ts.class_names
    )
    assert mixed.info["mixed_precision"] is True
    assert mixed.model.layers[2].compute_dtype == "float16" and mixed.model.output.dtype == "float32"
    assert np.isfinite(mixed.history["loss"]).all()
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaks to later models
    # The default follows the hardware: float16 only where TensorFlow sees a GPU.
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    plain = train_classifier(*data, tmp_path / "plain", _config(epochs=1), class_names=ts.class_names)
    assert plain.info["mixed_precision"] is False and plain.model.layers[2].compute_dtype == "float32"
    one_gpu = lambda kind=None: ["GPU:0"] if kind == "GPU" else []  # noqa: E731
    monkeypatch.setattr(tf.config, "list_physical_devices", one_gpu)
    on_gpu = train_classifier(*data, tmp_path / "gpu", _config(epochs=1), class_names=ts.class_names)
    assert on_gpu.info["mixed_precision"] is True and on_gpu.model.layers[2].compute_dtype == "float16"


def test_validation_split_written_by_chapter_03_is_read_back_exactly(eda_run):
    """Check that validation_set returns the recorded images, whatever parameters come later."""
    from tumornb.datasets import validation_set, write_validation_split

    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=3)
    write_validation_split(eda_run, ts)
    x_val, y_val = validation_set(eda_run, SIDE)
    np.testing.assert_array_equal(x_val, ts.x_val)
    np.testing.assert_array_equal(y_val, ts.y_val)
    other = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=4)
    assert set(other.val_rows["path"]) != set(ts.val_rows["path"])  # re-deriving would have differed


def test_validation_set_without_chapter_03_says_what_to_run(tmp_path):
    """Check the error when validation.csv is missing."""
    from tumornb.datasets import validation_set

    with pytest.raises(FileNotFoundError, match="run chapter 03 first"):
        validation_set(tmp_path, SIDE)


def test_a_budget_in_steps_trains_exactly_that_many(eda_run, tmp_path):
    """Check that steps=N takes N optimiser steps, the last epoch partial, and the schedule spans N."""
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    per_epoch = -(-len(ts.x_train) // 8)
    budget = per_epoch + 3  # one whole epoch and three batches of the next
    result = train_classifier(
        ts.x_train, ts.y_train, ts.x_val, ts.y_val, tmp_path / "m", _config(epochs=99, steps=budget),
        class_names=ts.class_names,
    )  # fmt: skip
    assert result.info["steps_run"] == budget and result.info["epochs_run"] == 2
    assert result.info["config"]["steps"] == budget
    # Cosine decay to zero at the budget: the last step's rate is near zero, not mid-schedule.
    assert result.history["learning_rate"].iloc[-1] < 0.05 * result.history["learning_rate"].max()
    with pytest.raises(ValueError, match="steps must be a positive"):
        _config(steps=0)


def test_mixing_and_width_are_recorded_and_checked(eda_run, tmp_path):
    """Check that a CutMix, wider training runs, records both, and that wrong values are refused."""
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    result = train_classifier(
        ts.x_train[:24], ts.y_train[:24], ts.x_val, ts.y_val, tmp_path / "m",
        _config(epochs=1, mixing="cutmix", width=0.5), class_names=ts.class_names,
    )  # fmt: skip
    assert result.info["config"]["mixing"] == "cutmix" and result.info["config"]["width"] == 0.5
    assert result.model.count_params() < build_model("tumornb_cnn", SIDE).count_params() / 2
    with pytest.raises(ValueError, match="mixing must be one of mixup, cutmix"):
        _config(mixing="mix")
    with pytest.raises(ValueError, match="width is a positive multiplier"):
        _config(width=0)


class _RawWeights(keras.callbacks.Callback):
    """The raw (not averaged) weights at each epoch's end."""

    def __init__(self):
        super().__init__()
        self.by_epoch = {}

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch[epoch] = [w.numpy().copy() for w in self.model.trainable_variables]


@pytest.mark.parametrize("ema", [None, 0.9])
def test_averaged_weights_are_saved_and_differ_from_the_raw_ones(eda_run, tmp_path, ema):
    """Check that with ema the saved model holds the average (not the raw weights), and loads for predict."""
    from tumornb.predict import load_predictor

    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    raw = _RawWeights()
    result = train_classifier(
        ts.x_train[:24], ts.y_train[:24], ts.x_val, ts.y_val, tmp_path / "m", _config(epochs=2, ema=ema),
        class_names=ts.class_names, callbacks=[raw],
    )  # fmt: skip
    saved = [w.numpy() for w in result.model.trainable_variables]
    best_raw = raw.by_epoch[result.info["best_epoch"]]
    largest = max(float(np.abs(a - b).max()) for a, b in zip(saved, best_raw, strict=True))
    assert (largest > 1e-4) if ema else (largest == 0.0)
    predictor = load_predictor(tmp_path / "m")
    np.testing.assert_allclose(
        predictor.predict_proba(ts.x_val),
        result.model.predict(ts.x_val[..., None].astype("float32"), verbose=0),
        atol=1e-5,
    )


def test_flip_tta_averages_an_image_and_its_mirror(eda_run, tmp_path):
    """Check that flip=True gives the mean of the probabilities of the images and of their mirrors."""
    from tumornb.evaluation import predict_proba

    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    result = train_classifier(
        ts.x_train, ts.y_train, ts.x_val, ts.y_val, tmp_path / "m", _config(epochs=1),
        class_names=ts.class_names,
    )  # fmt: skip
    images = ts.x_val
    plain, mirrored = predict_proba(result.model, images), predict_proba(result.model, images[:, :, ::-1])
    assert np.abs(plain - mirrored).max() > 1e-4  # the model is not symmetric: the test can fail
    averaged = predict_proba(result.model, images, flip=True)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-6)


def test_training_reports_one_line_per_epoch_when_followed(eda_run, tmp_path, monkeypatch):
    """Check that train_classifier writes each epoch to the progress file a runner follows."""
    from tumornb.progress import PROGRESS_ENV

    monkeypatch.setenv(PROGRESS_ENV, str(tmp_path / "progress"))
    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    train_classifier(
        ts.x_train[:16], ts.y_train[:16], ts.x_val, ts.y_val, tmp_path / "real", _config(epochs=2),
        class_names=ts.class_names,
    )  # fmt: skip
    lines = (tmp_path / "progress").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"classifier real: epoch {k}/2" for k in (1, 2)]
    assert "val_accuracy" in lines[0] and "min left" in lines[0] and "min left" not in lines[1]


def test_recipe_table_marks_the_best_on_validation_and_takes_median_times():
    """Check the benchmark table: mean and interval over seeds, median wall time, the validation choice."""
    from tumornb.training import recipe_table

    rows = pd.DataFrame(
        {
            "recipe": ["baseline"] * 3 + ["mixup"] * 3,
            "validation accuracy": [0.80, 0.82, 0.84, 0.70, 0.71, 0.72],
            "test accuracy": [0.9, 0.9, 0.9, 0.95, 0.95, 0.95],  # better on test: not the choice
            "test macro-F1": [0.9] * 6,
            "training wall (s)": [100.0, 300.0, 110.0, 120.0, 125.0, 130.0],  # one slowed baseline run
            "epochs run": [20, 20, 20, 31, 47, 40],
            "training images/s": [10.0] * 6,
            "prediction ms/image": [1.0] * 6,
        }
    )
    table = recipe_table(rows)
    assert list(table.index) == ["baseline", "mixup"]
    assert table.loc["baseline", "validation accuracy"].startswith("0.820 [")
    assert table.loc["baseline", "training wall (s)"] == 110 and table.loc["mixup", "wall / baseline"] == 1.14
    assert table["chosen on validation"].tolist() == ["<-", ""]
    assert table["epochs run"].tolist() == [20, 40]


def test_plateau_schedule_cools_down_ends_there_and_resumes_the_same(eda_run, tmp_path):
    """Check the plateau schedule's logged rates, its end at the cool-down's end, and a resumed run."""
    from tumornb.schedules import Cooldown, plateau_learning_rate

    ts = real_training_set(eda_run, SIDE, val_fraction=0.25, seed=0)
    args = (ts.x_train[:32], ts.y_train[:32], ts.x_val, ts.y_val)
    config = _config(
        epochs=7, schedule="plateau", plateau_patience=1, learning_rate=1e-3, augmentation=NO_AUGMENTATION
    )
    straight = train_classifier(*args, tmp_path / "straight", config, class_names=ts.class_names)
    cooldown = Cooldown(**straight.info["cooldown"])
    assert straight.info["epochs_run"] == cooldown.end <= 7
    assert straight.info["budget"]["epochs"] == 7
    per_epoch = 4  # 32 images in batches of 8
    last_steps = [per_epoch * (e + 1) - 1 for e in range(cooldown.end)]
    expected = [
        plateau_learning_rate(s, peak=1e-3, steps_per_epoch=per_epoch, cooldown=cooldown) for s in last_steps
    ]
    np.testing.assert_allclose(straight.history["learning_rate"], expected, rtol=1e-5)

    with pytest.raises(KeyboardInterrupt):
        train_classifier(
            *args, tmp_path / "resumed", config, class_names=ts.class_names, callbacks=[_Interrupt(2)]
        )
    resumed = train_classifier(*args, tmp_path / "resumed", config, class_names=ts.class_names)
    assert resumed.info["cooldown"] == straight.info["cooldown"]
    np.testing.assert_allclose(resumed.history["learning_rate"], straight.history["learning_rate"], rtol=1e-6)
    with pytest.raises(ValueError, match="schedule must be one of cosine, plateau"):
        _config(schedule="step")
    with pytest.raises(ValueError, match="-p schedule=cosine"):
        TrainConfig(model="seed_cnn", schedule="plateau")


@pytest.mark.parametrize(
    ("budget", "facts", "budget_words", "ending"),
    [
        ({"epochs": 30}, {"epochs_run": 30}, "30 epochs", "epochs"),
        ({"epochs": 30}, {"epochs_run": 17}, "30 epochs", "early stopping"),
        ({"epochs": 99, "steps": 50}, {"steps_run": 50}, "99 epochs, 50 steps", "step budget"),
        ({"epochs": 99, "seconds": 90}, {"wall_seconds": 91}, "99 epochs, 1.5 min", "time budget"),
        (
            {"epochs": 100, "seconds": 720},
            {"cooldown": {"start": 38, "length": 8, "reason": "plateau"}},
            "100 epochs, 12 min",
            "cool-down after epoch 38 (a plateau)",
        ),
    ],
)
def test_the_training_table_states_the_budget_and_what_ended_training(budget, facts, budget_words, ending):
    """Check the budget and 'ended by' words of chapter 03's table on hand-made train.json facts."""
    from tumornb.training import budget_text, ended_by

    info = {"config": {"epochs": budget["epochs"]}, "budget": budget, "epochs_run": 10, "steps_run": 10}
    info |= {"wall_seconds": 10.0, "cooldown": None} | facts
    assert budget_text(info) == budget_words
    assert ended_by(info) == ending
