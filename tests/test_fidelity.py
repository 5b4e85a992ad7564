"""Class fidelity: does a judge trained on real images find each synthetic image's class?"""

import numpy as np
import pandas as pd
import pytest

from tumornb.fidelity import choose_source, class_fidelity, keep_faithful, pick_faithful

NAMES = ["glioma", "meningioma", "notumor", "pituitary"]


def toy_images(labels: np.ndarray, rng: np.random.Generator, noise: float = 30.0) -> np.ndarray:
    """8x8 images whose brightness encodes the class (level 40, 90, 140, 190), with noise."""
    levels = 40.0 + 50.0 * labels
    pixels = levels[:, None, None] + noise * rng.normal(size=(len(labels), 8, 8))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def brightness_judge(images: np.ndarray) -> np.ndarray:
    """Probabilities from the distance of the mean brightness to each class level."""
    mean = images.reshape(len(images), -1).mean(1)
    logits = -(((mean[:, None] - (40.0 + 50.0 * np.arange(4))[None, :]) / 10.0) ** 2)
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


@pytest.fixture
def real():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 100)
    return toy_images(labels, rng), labels


def test_a_generator_that_returns_real_images_reaches_the_judges_ceiling(real):
    """Check that new real images of the right class score the judge's own accuracy (ratio about 1)."""
    images, labels = real
    rng = np.random.default_rng(1)
    drawn = np.repeat(np.arange(4), 200)
    found = class_fidelity(brightness_judge, images, labels, toy_images(drawn, rng), drawn, NAMES)
    assert found.overall_ratio == pytest.approx(1.0, abs=0.05)
    assert found.worst_class_ratio > 0.9
    assert found.verdict().startswith("The synthetic images carry their class")
    assert found.confusion.to_numpy().trace() == pytest.approx(found.table.loc["all", "synthetic"] * 800)


def test_a_class_shuffled_generator_sits_near_chance(real):
    """Check that images labelled with a random class score about 1/4 and the verdict says so."""
    images, labels = real
    rng = np.random.default_rng(2)
    looks_like = np.repeat(np.arange(4), 200)
    claimed = rng.permutation(looks_like)
    found = class_fidelity(brightness_judge, images, labels, toy_images(looks_like, rng), claimed, NAMES)
    assert found.table.loc["all", "synthetic"] == pytest.approx(0.25, abs=0.06)
    assert found.overall_ratio < 0.35
    assert "do not carry their class" in found.verdict()


def test_fidelity_table_counts_and_a_class_the_judge_confuses(real):
    """Check per-class counts, and that "meningioma" images that look like pituitary ones show."""
    images, labels = real
    rng = np.random.default_rng(3)
    drawn = np.repeat(np.arange(4), 50)
    looks_like = np.where(drawn == 1, 3, drawn)  # every "meningioma" looks like a pituitary scan
    found = class_fidelity(brightness_judge, images, labels, toy_images(looks_like, rng), drawn, NAMES)
    assert found.table.loc["meningioma", "synthetic"] < 0.05
    assert found.table["n_synthetic"].tolist() == [50, 50, 50, 50, 200]
    assert found.confusion.loc["meningioma", "pituitary"] >= 48
    assert "only in part" in found.verdict()


def test_keep_faithful_keeps_confident_images_of_their_own_class():
    """Check the filter: right class and confident kept; wrong class or unsure dropped."""
    probabilities = np.array(
        [[0.9, 0.1, 0, 0], [0.4, 0.35, 0.25, 0], [0.1, 0.8, 0.1, 0], [0.2, 0.2, 0.2, 0.4]]
    )
    intended = np.array([0, 0, 0, 3])
    assert keep_faithful(probabilities, intended, min_confidence=0.5).tolist() == [True, False, False, False]
    assert keep_faithful(probabilities, intended, min_confidence=0.3).tolist() == [True, True, False, True]
    with pytest.raises(ValueError, match="min_confidence"):
        keep_faithful(probabilities, intended, min_confidence=1.5)


def test_pick_faithful_keeps_the_most_confident_faithful_images_up_to_the_wanted_count():
    """Class 0: three faithful of four, two wanted, the two surest; class 1: one faithful, two wanted, one."""
    probabilities = np.array(
        [[0.6, 0.4], [0.95, 0.05], [0.3, 0.7], [0.8, 0.2], [0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]
    )
    intended = np.array([0, 0, 0, 0, 1, 1, 1])
    picked = pick_faithful(probabilities, intended, np.array([2, 2]))
    assert picked.tolist() == [1, 3, 5]
    assert pick_faithful(probabilities, intended, np.array([0, 0])).tolist() == []


@pytest.mark.slow
def test_choose_source_takes_the_named_variant_or_the_higher_cas_with_ties_to_the_default():
    """Check "best" picks the higher classification accuracy score, a tie the default, a name itself."""
    cas = {"conditional": {"accuracy": 0.30}, "per_class": {"accuracy": 0.45}}
    assert choose_source("best", cas) == "per_class"
    assert choose_source("best", {**cas, "per_class": {"accuracy": 0.20}}) == "conditional"
    tied = {"per_class": {"accuracy": 0.4}, "conditional": {"accuracy": 0.4}}
    assert choose_source("best", tied) == "conditional"
    assert choose_source("best", tied, default="per_class") == "per_class"
    assert choose_source("conditional", cas) == "conditional"
    assert choose_source("best", {"conditional": {"accuracy": 0.1}}) == "conditional"


@pytest.mark.parametrize(
    ("requested", "message"), [("per_class", "compare_per_class=True"), ("biggest", "must be one of")]
)
def test_choose_source_says_what_to_change_for_a_variant_it_cannot_write(requested, message):
    """Check an untrained or unknown variant is a one-line error naming the fix."""
    with pytest.raises(ValueError, match=message):
        choose_source(requested, {"conditional": {"accuracy": 0.3}})


def test_chapter_02_writes_the_fidelity_checks_in_the_smoke_run(smoke_run):
    """Check fidelity.json: both GANs judged, the judge trained on real images only, CAS, filter."""
    import json

    import pandas as pd

    from tumornb.paths import RunDir
    from tumornb.profiles import profile_parameters

    run = RunDir(smoke_run)
    saved = json.loads(run.fidelity_json.read_text())
    conditional = json.loads((run.gan_dir("conditional") / "gan.json").read_text())
    assert saved["judge"]["n_train"] == sum(conditional["n_train"].values())
    judge_info = json.loads((run.fidelity_dir("judge") / "train.json").read_text())
    assert judge_info["n_val"] > 0 and judge_info["role"].startswith("judge")
    for variant in ("conditional", "per_class"):
        overall = saved["fidelity"][variant]["all"]
        assert 0 <= overall["synthetic"] <= 1 and overall["n_synthetic"] == saved["judge"]["n_train"]
        assert overall["ratio"] == pytest.approx(overall["synthetic"] / overall["real"])
        assert 0 <= saved["classification_accuracy_score"][variant]["accuracy"] <= 1
        rows = [row for row in saved["quality"] if row["variant"] == variant]
        fid, floor = (np.mean([row[key] for row in rows]) for key in ("FID", "FID floor"))
        assert saved["realism_fid_over_floor"][variant] == pytest.approx(fid / floor)
    assert 0 <= saved["filter"]["kept"] <= saved["filter"]["of"] == saved["judge"]["n_train"]
    assert 0 < saved["memorisation"]["expected_false_flag_rate"] < 0.05
    # The written images measured again at chapter 03's input size (the smoke profile's GAN draws at 32 px).
    at_size = saved["quality_at_classifier_size"]
    gan_size = conditional["config"]["image_size"]
    assert at_size["image_size"] == profile_parameters("smoke")["image_size"] != gan_size
    fid, floor = (np.mean([row[key] for row in at_size["table"]]) for key in ("FID", "FID floor"))
    assert at_size["realism_fid_over_floor"] == pytest.approx(fid / floor)
    written = pd.read_csv(run.synthetic_manifest)
    assert sum(row["n"] for row in at_size["table"]) <= len(written)
    # The smoke profile lets the higher classification accuracy score choose the written GAN.
    source = saved["synthetic_source"]
    assert source["requested"] == profile_parameters("smoke")["synthetic_source"] == "best"
    scores = {variant: s["accuracy"] for variant, s in saved["classification_accuracy_score"].items()}
    assert scores[source["written"]] == max(scores.values())
    assert set(written["variant"]) == {source["written"]}


@pytest.mark.slow
def test_the_judge_is_reused_when_finished_and_retrained_when_its_settings_change(tmp_path):
    """Check that a second call with the same settings loads the judge, and other epochs retrain it."""
    from tumornb.datasets import TrainingSet
    from tumornb.fidelity import train_judge

    rng = np.random.default_rng(4)
    y_train, y_val = np.repeat(np.arange(4), 8), np.repeat(np.arange(4), 2)
    real = TrainingSet(
        x_train=rng.integers(0, 256, (32, 32, 32), dtype=np.uint8),
        y_train=y_train,
        x_val=rng.integers(0, 256, (8, 32, 32), dtype=np.uint8),
        y_val=y_val,
        class_names=NAMES,
        train_rows=None,
        val_rows=None,
    )
    first = train_judge(real, tmp_path / "judge", epochs=1)
    stamp = (tmp_path / "judge" / "train.json").stat().st_mtime_ns
    again = train_judge(real, tmp_path / "judge", epochs=1)
    assert (tmp_path / "judge" / "train.json").stat().st_mtime_ns == stamp
    assert again.info == first.info
    longer = train_judge(real, tmp_path / "judge", epochs=2)
    assert longer.info["epochs_run"] == 2 and longer.info["role"].startswith("judge")


def test_a_generator_that_fools_the_judge_with_unreal_images_is_not_said_to_carry_its_class(real):
    """Flat images at each class's brightness fool the brightness judge, but have none of the scans' texture.

    In features that see the texture (mean and spread of the pixels), their FID lies far above
    the floor that new real images reach, and the verdict says the judge was fooled.
    """
    from tumornb.fidelity import realism_ratio
    from tumornb.quality import quality_table

    def features(images):
        flat = images.reshape(len(images), -1).astype(float)
        return np.stack([flat.mean(1), flat.std(1)], axis=1)

    images, labels = real
    rng = np.random.default_rng(4)
    drawn = np.repeat(np.arange(4), 100)
    flat = np.repeat((40 + 50 * drawn).astype(np.uint8)[:, None, None], 8, 1).repeat(8, 2)
    train = toy_images(drawn, rng)
    names = np.asarray(NAMES)
    honest = toy_images(drawn, rng)
    scores = {
        kind: quality_table(
            features(train), names[drawn], features(fake), names[drawn], features(images), names[labels]
        )
        for kind, fake in {"honest": honest, "flat": flat}.items()
    }
    assert realism_ratio(scores["honest"]) < 2.0 < realism_ratio(scores["flat"])
    fooled = class_fidelity(brightness_judge, images, labels, flat, drawn, NAMES)
    assert fooled.overall_ratio > 0.95
    verdict = fooled.verdict(fid_over_floor=realism_ratio(scores["flat"]))
    assert verdict.startswith("The judge assigns the synthetic images to their class, but they do not look")
    honest_found = class_fidelity(brightness_judge, images, labels, honest, drawn, NAMES)
    assert honest_found.verdict(fid_over_floor=realism_ratio(scores["honest"])).startswith(
        "The synthetic images carry their class"
    )


def benchmark_rows() -> pd.DataFrame:
    """bench_gan rows: generator a at 100 and 200 steps over two seeds, generator b once."""
    common = {"CAS": 0.5, "FID floor": 0.1, "images/s": 30.0}
    return pd.DataFrame(
        [
            {"generator": "a", "seed": 0, "steps": 100, "ratio": 0.5, "lowest class ratio": 0.2,
             "FID": 0.4, "recall": 0.1, **common},
            {"generator": "a", "seed": 1, "steps": 100, "ratio": 0.7, "lowest class ratio": 0.4,
             "FID": 0.6, "recall": 0.3, **common},
            {"generator": "a", "seed": 0, "steps": 200, "ratio": 0.95, "lowest class ratio": 0.85,
             "FID": 0.15, "recall": 0.5, **common},
            {"generator": "b", "seed": 0, "steps": 200, "ratio": 0.95, "lowest class ratio": 0.9,
             "FID": 0.5, "recall": 0.5, **common},
        ]
    )  # fmt: skip


def test_generator_table_averages_seeds_per_length_and_checks_every_target():
    """Check means over seeds per (generator, steps), FID over its floor, and the three targets together."""
    from tumornb.fidelity import generator_table

    table = generator_table(benchmark_rows())
    assert list(table.index) == [("a", 100), ("a", 200), ("b", 200)]
    assert table.loc[("a", 100), "fidelity ratio"] == pytest.approx(0.6)
    assert table.loc[("a", 100), "FID / floor"] == pytest.approx(5.0)
    assert table.loc[("a", 100), "seeds"] == 2
    # a at 200 steps meets all three; b meets fidelity but its FID is five times the floor.
    assert table["carries its class"].tolist() == [False, True, False]
    older = generator_table(benchmark_rows().drop(columns="steps").iloc[3:])
    assert list(older.index) == [("b", 0)]


def test_generator_budget_figure_draws_one_line_per_generator_and_measure():
    """Check the figure's panels hold each generator's values at its step counts, and the target lines."""
    import matplotlib.pyplot as plt

    from tumornb.fidelity import generator_table
    from tumornb.plots import generator_budget_figure

    fig = generator_budget_figure(generator_table(benchmark_rows()))
    fidelity_panel, realism_panel, recall_panel = fig.axes
    lines = {line.get_label(): line for line in fidelity_panel.get_lines()}
    assert lines["a: fidelity ratio"].get_xdata().tolist() == [100, 200]
    assert lines["a: fidelity ratio"].get_ydata() == pytest.approx([0.6, 0.95])
    assert lines["b: lowest class ratio"].get_ydata() == pytest.approx([0.9])
    assert lines["a: lowest class ratio"].get_color() == lines["a: fidelity ratio"].get_color()
    assert lines["b: fidelity ratio"].get_color() != lines["a: fidelity ratio"].get_color()
    assert lines["target"].get_ydata()[0] == 0.9
    realism = {line.get_label(): line for line in realism_panel.get_lines()}
    assert realism["a"].get_ydata() == pytest.approx([5.0, 1.5])
    assert [line.get_label() for line in recall_panel.get_lines()] == ["a", "b"]
    plt.close(fig)
