"""The audit on the real Kaggle dataset, when the shared copy is present (read-only)."""

import json

import pytest

from tumornb.paths import RunDir
from tumornb.runner import run_chapters

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

# From ../shared/data/README.md
EXPECTED = {
    "train": {"glioma": 826, "meningioma": 822, "notumor": 395, "pituitary": 827},
    "test": {"glioma": 100, "meningioma": 115, "notumor": 105, "pituitary": 74},
}


def test_smoke_run_audits_the_real_dataset(real_data, tmp_path):
    """Check counts, readability and the known train/test duplicates of the Kaggle (Sartaj) data."""
    run_dir = tmp_path / "real"
    run_chapters(
        run_dir,
        profile="smoke",
        data_dir=real_data,
        only=["01_eda"],
        progress=False,
        log=lambda s: None,
    )
    summary = json.loads(RunDir(run_dir).eda_summary.read_text())
    assert summary["counts"] == EXPECTED
    assert summary["n_unreadable"] == 0
    assert summary["split_source"] == "folders"
    # 88 no_tumor test images are byte-identical to training images (measured 2026-11-23)
    assert summary["n_test_leaked"] >= 88
    assert summary["n_exact_copies"] >= 2 * 88
    print(json.dumps({k: v for k, v in summary.items() if k not in ("unreadable", "counts")}, indent=1))
