"""``tumornb predict``: same preprocessing as training, known outputs, one bad file among good ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tumornb.cli import main  # noqa: E402
from tumornb.data import build_manifest, load_images  # noqa: E402
from tumornb.evaluation import predict_proba  # noqa: E402
from tumornb.labels import CLASS_NAMES  # noqa: E402
from tumornb.predict import find_images, load_predictor  # noqa: E402
from tumornb.training import TrainConfig, train_classifier  # noqa: E402

SIDE = 32


@pytest.fixture(scope="module")
def trained(phantom_dir, tmp_path_factory):
    """A model trained for one epoch on the phantom fixture, and the arrays it was trained on."""
    manifest, images = build_manifest(phantom_dir, image_size=SIDE)
    usable = manifest[manifest["error"] == ""].reset_index(drop=True)
    labels = usable["label"].map(CLASS_NAMES.index).to_numpy()
    out = tmp_path_factory.mktemp("model") / "real"
    config = TrainConfig(image_size=SIDE, epochs=1, seed=0)
    train_classifier(images, labels, images, labels, out, config, class_names=list(CLASS_NAMES))
    return out, usable, images


def _copy_with_info(model_dir: Path, copy: Path, edit) -> Path:
    """A copy of a trained model's folder whose ``train.json`` was changed in place by ``edit(info)``."""
    copy.mkdir()
    (copy / "model.keras").write_bytes((model_dir / "model.keras").read_bytes())
    info = json.loads((model_dir / "train.json").read_text())
    edit(info)
    (copy / "train.json").write_text(json.dumps(info))
    return copy


def test_predict_preprocesses_exactly_as_training(trained):
    """Check that predict's pixels and probabilities equal those of the training cache."""
    out, usable, images = trained
    predictor = load_predictor(out)
    result = predictor.predict_files(usable["path"])
    assert result.errors.empty
    np.testing.assert_array_equal(result.images, images)
    np.testing.assert_array_equal(result.images, load_images(usable, SIDE))
    expected = predict_proba(predictor.model, images)
    np.testing.assert_allclose(result.table[[f"p_{c}" for c in CLASS_NAMES]], expected, atol=1e-5)
    assert result.table["predicted"].tolist() == [CLASS_NAMES[i] for i in expected.argmax(1)]
    np.testing.assert_allclose(result.table["confidence"], expected.max(1), atol=1e-6)


def test_cli_reports_an_unreadable_file_and_goes_on(trained, tmp_path, capsys):
    """Check the JSON lines, the one error line and the exit status with a broken file in the middle."""
    out, usable, images = trained
    good = usable.loc[usable["format"] == "JPEG", "path"].iloc[:2].tolist()
    broken = tmp_path / "broken.jpg"
    data = Path(good[0]).read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # an interrupted download
    status = main(["predict", good[0], str(broken), good[1], "--model", str(out / "model.keras"), "--json"])
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert status == 1
    assert [r["path"] for r in rows] == good
    assert set(rows[0]["probabilities"]) == set(CLASS_NAMES)
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1 and str(broken) in errors[0] and "truncated JPEG" in errors[0]


def test_cli_table_and_heat_maps_for_a_folder(trained, phantom_dir, tmp_path, capsys):
    """Check a folder run: every scan classified (masks are not scans), overlays written, status 0."""
    out, _, _ = trained
    folder = phantom_dir / "Testing" / "glioma"
    status = main(["predict", str(folder), "--model", str(out), "--cam", str(tmp_path / "cams")])
    captured = capsys.readouterr()
    assert status == 0
    lines = captured.out.splitlines()
    assert lines[0].split()[:3] == ["path", "predicted", "confidence"]
    assert len(lines) == 1 + len(list(folder.iterdir()))
    assert len(list((tmp_path / "cams").glob("*.cam.png"))) == len(lines) - 1


def test_a_model_with_other_preprocessing_is_refused(trained, tmp_path):
    """Check that a stored preprocessing unlike the current one stops predict with a clear error."""
    out, _, _ = trained
    copy = _copy_with_info(out, tmp_path / "copy", lambda info: info["preprocessing"].update(letterbox=False))
    with pytest.raises(ValueError, match="retrain it"):
        load_predictor(copy)
    (copy / "train.json").unlink()
    with pytest.raises(FileNotFoundError, match="train.json"):
        load_predictor(copy)


def test_a_model_that_carries_python_code_is_not_loaded(trained, tmp_path):
    """Check safe loading: a Lambda layer (arbitrary code) in the file is refused."""
    out, _, _ = trained
    inputs = keras.Input((SIDE, SIDE, 1))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probabilities")(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "model.keras")
    (tmp_path / "train.json").write_text((out / "train.json").read_text())
    with pytest.raises(ValueError, match="(?i)lambda|unsafe|safe_mode"):
        load_predictor(tmp_path)


def test_find_images_takes_image_files_from_folders_and_any_named_file(tmp_path):
    """Check which files a folder contributes, and the error for a missing path."""
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "b.PNG", "notes.txt", "sub/c.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_images([tmp_path])] == ["a.jpg", "b.PNG", "c.jpeg"]
    assert [p.name for p in find_images([tmp_path / "notes.txt"])] == ["notes.txt"]
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_images([tmp_path / "missing"])


def test_an_ensemble_predicts_the_mean_of_its_members(trained, tmp_path, capsys):
    """Check two models averaged: the mean of their probabilities, by the API and by the command."""
    from tumornb.predict import EnsemblePredictor, load_ensemble

    out, usable, images = trained
    other = tmp_path / "other"
    config = TrainConfig(image_size=SIDE, epochs=1, seed=1)
    labels = usable["label"].map(CLASS_NAMES.index).to_numpy()
    train_classifier(images, labels, images, labels, other, config, class_names=list(CLASS_NAMES))
    ensemble = load_ensemble([out, other])
    assert isinstance(ensemble, EnsemblePredictor) and isinstance(
        load_ensemble([out]), type(load_predictor(out))
    )
    members = [load_predictor(p).predict_proba(images[:6]) for p in (out, other)]
    np.testing.assert_allclose(ensemble.predict_proba(images[:6]), np.mean(members, axis=0), atol=1e-6)
    path = str(usable["path"].iloc[0])
    assert main(["predict", path, "--model", str(out), "--model", str(other), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = np.mean(members, axis=0)[0]
    assert [printed["probabilities"][n] for n in CLASS_NAMES] == pytest.approx(expected.tolist(), abs=1e-5)
    assert main(["predict", path, "--model", str(out), "--model", str(other), "--cam", str(tmp_path)]) == 1
    assert "Grad-CAM explains one model" in capsys.readouterr().err


def test_an_ensemble_of_models_for_other_classes_is_refused(trained, tmp_path):
    """Check that models with different class names cannot be averaged."""
    from tumornb.predict import load_ensemble

    out, _, _ = trained
    copy = _copy_with_info(out, tmp_path / "copy", lambda info: info["class_names"].reverse())
    with pytest.raises(ValueError, match="an ensemble needs the same classes and size"):
        load_ensemble([out, copy])
