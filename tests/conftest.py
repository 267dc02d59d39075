"""Shared fixtures: the feature catalogue, a test-plugin registrar, an isolated working dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bionic_core.contract.features import Feature
from bionic_core.contract.hookspecs import hookimpl

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIONIC_SHARED_DATA", REPO.parent / "shared" / "data"))
FER2013_DIR = SHARED / "fer2013"
MICRONS_DIR = SHARED / "microns"

needs_fer2013 = pytest.mark.skipif(
    not (FER2013_DIR / "fer2013_train.npz").is_file(),
    reason=f"real FER-2013 npz files not found in {FER2013_DIR} (set BIONIC_SHARED_DATA)")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny test models gain nothing from a second intra-op thread, and it spins on a busy
    machine (measured: 43 s with two threads, 3.7 s with one for the functional tests)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def catalogue():
    """The built-in features only (third-party entry points are not loaded in tests)."""
    from bionic_core.host import load_catalogue

    return load_catalogue(third_party=False)


@pytest.fixture
def register_plugin(catalogue) -> Iterator:
    """``register_plugin(obj)`` adds a test plugin under its feature name; removed afterwards."""
    added: list[str] = []

    def register(plugin: object, source: str = "tests") -> str:
        feature = catalogue.add(plugin, source=source)
        added.append(feature.name)
        return feature.name

    yield register
    for name in added:
        catalogue.remove(name)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Run in an empty directory with its own MLflow store and experiments file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("BIONIC_EXPERIMENTS", str(REPO / "experiments.toml"))
    monkeypatch.setenv("BIONIC_DISABLE_PLUGINS", "1")
    return tmp_path


def empty_store(tmp_path_factory) -> Path:
    """An empty MLflow SQLite database, made once per session (creating the schema takes
    seconds; copying it does not)."""
    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.getbasetemp() / "mlflow-empty.db"
    if not template.exists():
        MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    return template


@pytest.fixture
def store(in_tmp, tmp_path_factory) -> Path:
    """``in_tmp`` with its MLflow database copied from the empty template."""
    import shutil

    shutil.copy(empty_store(tmp_path_factory), in_tmp / "mlflow.db")
    return in_tmp


class MaskPlugin:
    """A test feature that gives every hidden layer after the first a fixed random mask
    (30 % density)."""

    @staticmethod
    @hookimpl
    def bionic_feature():
        return Feature(name="test_mask", group="structural", help="random masks for tests")

    @staticmethod
    @hookimpl
    def bionic_connectivity(plan):
        rng = np.random.default_rng(1)
        layers, prev = [], None
        for spec in plan.layers:
            mask = None if prev is None else (rng.random((spec.size, prev)) < 0.3).astype(
                np.float32)
            layers.append(spec.with_masks(mask, None))
            prev = spec.size
        return layers


TINY_EXPERIMENTS = """
[experiments.tiny]
dataset = "demo-small"
features = ["layer_norm"]
hidden_sizes = [16, 16]
batch_size = 64
epochs = 1
patience = 0
seeds = [0, 1]
device = "cpu"
"""


def one_error_line(result, *fragments: str) -> str:
    """Assert a CLI result is a user error: exit 2, one ``bionic: error:`` line on stderr that
    contains every fragment, no traceback; return that line."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bionic: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def tiny_config(**changes):
    """A seconds-long run on the tiny demonstration set."""
    from bionic_core.config import RunConfig

    base = RunConfig(experiment="tiny", dataset="demo-small", features=(), epochs=2,
                     patience=0, hidden_sizes=(32, 32), batch_size=64, seeds=(0,), seed=0,
                     device="cpu")
    return base.replace(**changes)
