"""A killed sweep resumes to the same table: SIGKILL `bionic ablate` in the middle of a run or
between runs, rerun the same command, and `bionic compare` prints byte for byte the table of a
sweep that ran straight through (its training-time column aside) — no duplicate or missing
cells. A rerun on other data under the
same path refuses to mix the two, in one line."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import empty_store

EXPERIMENTS = """
[experiments.tiny]
dataset = "demo-small"
features = ["layer_norm", "augmentation"]
hidden_sizes = [16, 16]
batch_size = 64
epochs = 2
patience = 0
seeds = [0, 1]
device = "cpu"
"""


def bionic(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bionic_cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def prepared(folder: Path, tmp_path_factory, text: str = EXPERIMENTS) -> Path:
    folder.mkdir()
    shutil.copy(empty_store(tmp_path_factory), folder / "mlflow.db")
    (folder / "exp.toml").write_text(text)
    return folder


def finished_seed_runs(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("select count(*) from runs r join tags t on r.run_uuid = t.run_uuid"
                               " where t.key = 'bionic.kind' and t.value = 'run'"
                               " and r.status = 'FINISHED'").fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_when(folder: Path, ready) -> None:
    """Start `bionic ablate`, SIGKILL it once ``ready(folder)`` holds, wait for it to die."""
    process = subprocess.Popen([sys.executable, "-m", "bionic_cli", "ablate", "tiny",
                                "--experiments", "exp.toml"], cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ready(folder) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def table(folder: Path) -> str:
    """The comparison as CSV without its one wall-clock column (training seconds)."""
    done = bionic("compare", "tiny", "--format", "csv", cwd=folder)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    drop = rows[0].index("train_seconds")
    return "\n".join(",".join(r[:drop] + r[drop + 1:]) for r in rows if r)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("BIONIC_DISABLE_PLUGINS", "1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.delenv("BIONIC_EXPERIMENTS", raising=False)


def test_sigkilled_sweep_resumes_to_the_table_of_a_straight_run(tmp_path, tmp_path_factory,
                                                                  env):
    straight = prepared(tmp_path / "straight", tmp_path_factory)
    done = bionic("ablate", "tiny", "--experiments", "exp.toml", cwd=straight)
    assert done.returncode == 0, done.stderr
    expected = table(straight)
    assert expected.count("\n") >= 3  # a reference and its leave-one-out rows

    checkpoints = ".bionic/checkpoints"
    points = {
        "mid-run": lambda f: any((f / checkpoints).glob("*.pt")),
        "between runs": lambda f: finished_seed_runs(f / "mlflow.db") >= 1,
    }
    for name, ready in points.items():
        folder = prepared(tmp_path / name.replace(" ", "_"), tmp_path_factory)
        kill_when(folder, ready)
        resumed = bionic("ablate", "tiny", "--experiments", "exp.toml", cwd=folder)
        assert resumed.returncode == 0, resumed.stderr
        assert table(folder) == expected, name
        # Every planned run once: 3 configurations × 2 seeds finished, none twice.
        assert finished_seed_runs(folder / "mlflow.db") == 6, name


def test_rerun_on_changed_data_refuses_to_mix(tmp_path, tmp_path_factory, env):
    data = tmp_path / "faces.npz"
    rng = np.random.default_rng(0)
    np.savez(data, images=rng.integers(0, 255, (140, 48, 48), dtype=np.uint8),
             labels=np.arange(140) % 7)
    text = EXPERIMENTS.replace('dataset = "demo-small"', f'dataset = "{data}"').replace(
        "epochs = 2", "epochs = 1").replace("seeds = [0, 1]", "seeds = [0]")
    folder = prepared(tmp_path / "changing", tmp_path_factory, text)
    first = bionic("ablate", "tiny", "--experiments", "exp.toml", cwd=folder)
    assert first.returncode == 0, first.stderr
    np.savez(data, images=rng.integers(0, 255, (140, 48, 48), dtype=np.uint8),
             labels=np.arange(140) % 7)
    for cache in tmp_path.glob("*.cache*"):
        cache.unlink()
    again = bionic("ablate", "tiny", "--experiments", "exp.toml", cwd=folder)
    assert again.returncode == 2, again.stdout + again.stderr
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bionic: error: sweep tiny-")
    assert "refusing to mix them" in lines[0] and "Traceback" not in again.stderr
