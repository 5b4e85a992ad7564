"""`make test` runs two pytest-xdist workers: work that shares state must stay on one."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: A plugin that writes each collected test's xdist group to the file $GROUPS_OUT names.
GROUPS_PLUGIN = """
import json, os
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    groups = {item.nodeid: [m.args[0] for m in item.iter_markers("xdist_group")] for item in items}
    with open(os.environ["GROUPS_OUT"], "w") as out:
        json.dump(groups, out)
"""


def _pytest(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_chapters_share_one_group_and_so_do_the_smoke_run_readers(tmp_path):
    """Check the groups (the chapters, the smoke-run readers, other tests by file) and their order."""
    (tmp_path / "groups_plugin.py").write_text(GROUPS_PLUGIN)
    out = tmp_path / "groups.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "GROUPS_OUT": str(out)}
    done = _pytest(
        "--collect-only",
        "-q",
        "-p",
        "groups_plugin",
        "notebooks",
        "tests/test_book.py",
        "tests/test_sweep.py",
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    groups = json.loads(out.read_text())
    cells = {node: g for node, g in groups.items() if node.startswith("notebooks/")}
    assert len(cells) > 50 and all(g == ["notebooks"] for g in cells.values())
    assert all(g == ["smoke_run"] for node, g in groups.items() if node.startswith("tests/test_book.py"))
    sweep = {node.split("::")[1].split("[")[0]: g for node, g in groups.items() if "test_sweep.py" in node}
    assert sweep["test_sweep_of_chapters_03_04_gives_one_run_per_point_and_a_summary"] == ["smoke_run"]
    assert sweep["test_parse_grid_reads_lists_and_single_values"] == ["test_sweep.py"]
    # The two longest groups start first, one on each worker.
    assert list(dict.fromkeys(g[0] for g in groups.values()))[:3] == [
        "smoke_run",
        "notebooks",
        "test_sweep.py",
    ]


def test_a_group_runs_on_one_worker():
    """Check that pytest-xdist honours the groups (with pytest 9.2's node ids it ran them on both)."""
    done = _pytest("-n", "2", "-v", "tests/test_paths.py")
    assert done.returncode == 0, done.stdout[-2000:]
    passed = [line.split() for line in done.stdout.splitlines() if " PASSED " in line]
    assert len(passed) == 2
    assert all(words[-1].endswith("@test_paths.py") for words in passed)
    assert len({words[0] for words in passed}) == 1  # "[gw0]" or "[gw1]", the same for both
