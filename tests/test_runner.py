import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tumornb.cli import main
from tumornb.paths import RunDir
from tumornb.profiles import parse_override, profile_parameters
from tumornb.runner import (
    ChapterFailed,
    benchmark_records,
    chapter_notebooks,
    run_chapters,
    write_benchmark_record,
)

pytestmark = pytest.mark.slow


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("run_dir = None\nanswer = 1", metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)


def test_smoke_run_writes_the_chapter_artifacts(smoke_run):
    """Check that a smoke run leaves the manifest, summary, cache, executed notebook and run record."""
    run = RunDir(smoke_run)
    smoke = profile_parameters("smoke")
    manifest = pd.read_csv(run.manifest, keep_default_na=False)
    assert len(manifest) == 4 * (smoke["phantom_train_per_class"] + smoke["phantom_test_per_class"])
    summary = json.loads(run.eda_summary.read_text())
    assert summary["counts"]["train"]["glioma"] == smoke["phantom_train_per_class"]
    assert summary["n_unreadable"] == 0 and summary["image_size"] == smoke["image_size"]
    assert list(run.cache_dir.glob(f"images-{smoke['image_size']}px-*.npy"))
    # The profile's training budget reached chapter 03: the plateau schedule within its epochs.
    trained = json.loads((run.model_dir("real") / "train.json").read_text())
    assert trained["config"]["schedule"] == smoke["schedule"] == "plateau"
    assert trained["budget"]["epochs"] == trained["epochs_run"] == smoke["epochs"]
    assert trained["cooldown"]["reason"] == "epochs" and trained["cooldown"]["start"] < smoke["epochs"]
    executed = nbformat.read(run.notebooks_dir / "01_eda.ipynb", as_version=4)
    assert not [
        o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    info = json.loads(run.run_info.read_text())
    assert info["profile"] == "smoke" and info["chapters"]["01_eda"]["seconds"] > 0


def test_a_failing_cell_stops_the_run_and_names_notebook_and_error(tmp_path):
    """Check that a failing cell raises with the notebook, the cell and the error, and keeps a copy."""
    _notebook(tmp_path / "01_ok.ipynb", "x = answer + 1")
    _notebook(tmp_path / "02_bad.ipynb", "raise ValueError('the phantom is on fire')")
    _notebook(tmp_path / "03_never.ipynb", "x = 1")
    with pytest.raises(
        ChapterFailed, match=r"02_bad.ipynb failed in cell \d+: ValueError: the phantom is on fire"
    ):
        run_chapters(
            tmp_path / "run",
            profile="smoke",
            notebooks_dir=tmp_path,
            progress=False,
            log=lambda s: None,
        )
    executed = sorted(p.name for p in (tmp_path / "run" / "notebooks").iterdir())
    assert executed == ["01_ok.ipynb", "02_bad.failed.ipynb"]


def test_only_selected_chapters_run_with_declared_parameters(tmp_path):
    """Check --only by number, and that a chapter receives only the parameters it declares."""
    _notebook(tmp_path / "01_a.ipynb", "print(answer)")
    _notebook(tmp_path / "02_b.ipynb", "print(answer)")
    results = run_chapters(
        tmp_path / "run",
        profile="smoke",
        only=["02"],
        overrides={"answer": 42},
        notebooks_dir=tmp_path,
        progress=False,
        log=lambda s: None,
    )
    executed = nbformat.read(tmp_path / "run" / "notebooks" / "02_b.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0].text == "42\n"
    injected = next(c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "image_size" not in injected  # the profile's other parameters are not forced on it
    recorded = json.loads(RunDir(tmp_path / "run").run_info.read_text())["chapters"]
    assert {r.name: r.finished for r in results} == {n: c["finished"] for n, c in recorded.items()}
    assert not (tmp_path / "run" / "notebooks" / "01_a.ipynb").exists()
    with pytest.raises(ValueError, match="no chapter named 07"):
        run_chapters(tmp_path / "run", only=["07"], notebooks_dir=tmp_path, progress=False)


def test_chapters_are_found_in_book_order():
    """Check that the project's chapters are discovered and ordered by number."""
    names = list(chapter_notebooks())
    assert names == ["01_eda", "02_dgan", "03_cnn", "04_eval", "05_visualize_predictions"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("image_size=96", ("image_size", 96)),
        ("data_dir=/x/y", ("data_dir", "/x/y")),
        ("flag=True", ("flag", True)),
    ],
)
def test_parse_override(text, expected):
    """Check that -p values are parsed as Python literals when they are literals."""
    assert parse_override(text) == expected


def test_cli_wrong_data_dir_is_one_line_naming_the_path(tmp_path, capsys):
    """Check that a wrong --data-dir exits non-zero with one line that names the path."""
    missing = tmp_path / "no-such-download"
    status = main(["run", "--data-dir", str(missing), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert len(err.splitlines()) == 1 and str(missing) in err and "not found" in err


def test_cli_unknown_profile_and_bad_override(tmp_path, capsys):
    """Check that wrong parameters get a clear error, not a traceback."""
    with pytest.raises(SystemExit):
        main(["run", "--profile", "huge"])
    assert main(["run", "-p", "oops", "--run-dir", str(tmp_path)]) == 1
    assert "key=value" in capsys.readouterr().err


def test_cli_audit_of_a_messy_folder(tmp_path, capsys):
    """Check `tumornb audit` end to end: counts and the unreadable file listed."""
    from tumornb.phantom import write_phantom_dataset

    data = tmp_path / "data"
    write_phantom_dataset(data, n_train_per_class=3, n_test_per_class=2, size_range=(64, 64))
    (data / "Training" / "glioma" / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    assert main(["audit", str(data), "--run-dir", str(tmp_path / "run"), "--image-size", "32"]) == 0
    out = capsys.readouterr().out
    assert "files: 21, usable: 20, unreadable: 1" in out
    assert "broken.jpg: not an image file" in out or "broken.jpg: truncated JPEG" in out


def test_cli_resplit_bits_without_resplit_is_refused(tmp_path, capsys):
    """Check that a patient-proxy threshold without a re-split is an error, not silently ignored."""
    from tumornb.cli import main

    assert main(["run", "--run-dir", str(tmp_path), "--resplit-bits", "4"]) == 1
    assert "--resplit-bits needs --resplit grouped" in capsys.readouterr().err


def test_a_misspelt_parameter_is_refused_with_the_known_ones(tmp_path, capsys):
    """Check that -p imgae_size=96 stops the run before any kernel starts, listing image_size."""
    from tumornb.cli import main

    assert main(["run", "--run-dir", str(tmp_path / "run"), "-p", "imgae_size=96"]) == 1
    error = capsys.readouterr().err
    assert "no chapter declares the parameter imgae_size" in error and "image_size" in error
    assert not (tmp_path / "run").exists()


def test_running_a_chapter_leaves_the_callers_environment_as_it_was(tmp_path, monkeypatch):
    """Check that the kernels' quiet settings are not left behind in the calling process."""
    import os

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    _notebook(tmp_path / "01_a.ipynb", "import os", "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    run_chapters(tmp_path / "run", notebooks_dir=tmp_path, progress=False, log=lambda s: None)
    executed = nbformat.read(tmp_path / "run" / "notebooks" / "01_a.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0].text == "3\n"  # the kernel got the quiet setting
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ and os.environ["PYTHONWARNINGS"] == "default"


def test_a_chapter_run_prints_no_kernel_or_tensorflow_start_up_noise(tmp_path, capfd):
    """Check the terminal and the executed chapter: no TCP-encryption warning, no TensorFlow notices."""
    _notebook(tmp_path / "01_a.ipynb", "import tumornb.training", "print('trained nothing')")
    run_chapters(tmp_path / "run", notebooks_dir=tmp_path, progress=False, log=lambda s: None)
    terminal = capfd.readouterr().err
    executed = nbformat.read(tmp_path / "run" / "notebooks" / "01_a.ipynb", as_version=4)
    outputs = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert outputs.endswith("trained nothing\n")
    for noise in ("without encryption", "oneDNN", "absl::InitializeLog"):
        assert noise not in terminal and noise not in outputs, noise


def test_epoch_message_estimates_what_remains():
    """Check the line: epoch counted from 1, metrics, and the mean epoch time times the epochs left."""
    from tumornb.progress import epoch_message

    line = epoch_message("classifier real", 4, 30, [10.0, 14.0], val_accuracy=0.8123)
    assert line == "classifier real: epoch 5/30, val_accuracy 0.812, about 5.0 min left"
    assert epoch_message("GAN conditional", 29, 30, [3.0]) == "GAN conditional: epoch 30/30"


def test_a_chapter_reports_its_epochs_to_the_terminal(tmp_path, capfd):
    """Check that lines reported inside a running chapter reach the terminal, and only with progress."""
    from tumornb.execute import execute_notebook

    _notebook(tmp_path / "01_a.ipynb", "from tumornb.progress import report", "report('training: epoch 1/2')")
    execute_notebook(tmp_path / "01_a.ipynb", tmp_path / "run" / "01_a.ipynb", {}, progress=True)
    assert "training: epoch 1/2" in capfd.readouterr().err
    assert not list((tmp_path / "run").glob(".*progress"))  # the progress file is gone
    execute_notebook(tmp_path / "01_a.ipynb", tmp_path / "run" / "01_a.ipynb", {}, progress=False)
    assert "training: epoch 1/2" not in capfd.readouterr().err


@pytest.mark.skipif(os.name == "nt", reason="kernels talk over TCP on Windows, which has no ipc transport")
def test_a_chapter_kernel_talks_over_its_own_unix_sockets_and_leaves_none(tmp_path):
    """Check the kernel's transport is ipc (no TCP ports to race for) and its socket folder goes."""
    from tumornb.execute import execute_notebook

    connection = "from ipykernel import get_connection_info\nprint(get_connection_info())"
    _notebook(tmp_path / "01_a.ipynb", connection)
    executed = execute_notebook(tmp_path / "01_a.ipynb", tmp_path / "run" / "01_a.ipynb", {})
    info = json.loads(nbformat.read(executed, as_version=4).cells[-1].outputs[0]["text"])
    assert info["transport"] == "ipc"
    folder = Path(info["ip"]).parent
    assert folder.name.startswith("tumornb-kernel-") and not folder.exists()


def test_a_temporary_directory_too_long_for_a_socket_falls_back_to_tcp(tmp_path, monkeypatch):
    """Check the kernel configuration: ipc sockets under a short $TMPDIR, TCP under a long one."""
    from tumornb import execute

    def transport(temporary_dir: Path) -> str:
        monkeypatch.setattr(execute.tempfile, "tempdir", str(temporary_dir))
        with execute._kernel_config() as config:
            return config.get("KernelManager", {}).get("transport", "tcp")

    monkeypatch.setattr(execute, "KERNEL_TRANSPORT", "ipc")
    (tmp_path / ("x" * 100)).mkdir()
    assert transport(tmp_path / ("x" * 100)) == "tcp"
    short = Path("/tmp") if Path("/tmp").is_dir() else pytest.skip("no /tmp for a short temporary directory")
    assert transport(short) == "ipc"


def test_benchmark_records_are_read_by_name_in_order_and_none_is_empty(tmp_path):
    """Check matching records come back parsed and sorted; other names and a missing folder do not."""
    for name, value in [("bench_gan_b.json", 2), ("bench_gan_a.json", 1), ("bench_recipe.json", 3)]:
        (tmp_path / name).write_text(json.dumps({"value": value}))
    records = benchmark_records("bench_gan*.json", tmp_path)
    assert list(records) == ["bench_gan_a.json", "bench_gan_b.json"]
    assert [record["value"] for record in records.values()] == [1, 2]
    assert benchmark_records("bench_gan*.json", tmp_path / "missing") == {}
    assert "bench_recipe_budget.json" in benchmark_records("bench_recipe*.json")


def test_a_written_benchmark_record_reads_back_with_its_command_and_fields(tmp_path, monkeypatch):
    """Check the record holds the command as run, date, machine and fields, and replaces an old one."""
    monkeypatch.setattr("sys.argv", ["bench_gan.py", "--seeds", "0,1", "--json", "out dir/a.json"])
    (tmp_path / "bench_x.json").write_text("{}")
    target = tmp_path / "bench_x.json"
    write_benchmark_record(target, "benchmarks/bench_gan.py", rows=[{"a": 1}], image_size=64)
    record = benchmark_records("bench_x.json", tmp_path)["bench_x.json"]
    assert record["command"] == "python benchmarks/bench_gan.py --seeds 0,1 --json 'out dir/a.json'"
    assert list(record) == ["command", "finished", "machine", "rows", "image_size"]
    assert record["rows"] == [{"a": 1}] and record["image_size"] == 64
    assert "CPU cores" in record["machine"] and len(record["finished"]) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["bench_x.json"]


def test_a_benchmark_record_writes_missing_numbers_as_standard_json_null(tmp_path):
    rows = [{"t": float("nan")}]
    target = write_benchmark_record(tmp_path / "bench_y.json", "benchmarks/bench_gan.py", rows=rows)
    assert "NaN" not in target.read_text()
    assert json.loads(target.read_text())["rows"] == [{"t": None}]
