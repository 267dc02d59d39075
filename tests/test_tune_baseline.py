"""`bionic tune baseline` is `bionic tune paper`'s fair counterpart: the same budget and the
same ranges for the parameters they share, tuned on the validation holdout of Training."""

from __future__ import annotations

import json

from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.experiments import ExperimentFile
from bionic_core.studies.tuning import tune_options

from .conftest import REPO

BUDGET = ("trials", "epochs", "sampler", "pruner", "metric")


def test_baseline_and_paper_share_the_tuning_budget():
    file = ExperimentFile.load(REPO / "experiments.toml")
    baseline, paper = file.config("baseline"), file.config("paper")
    where = "experiments.toml"
    assert tune_options(baseline, where) == tune_options(paper, where)
    assert all(key in baseline.tune for key in BUDGET)
    assert baseline.tune["metric"].startswith("val_")  # the holdout of Training, not a test split
    shared = set(baseline.tune["search"])
    assert shared < set(paper.tune["search"])
    for section in ("ranges", "choices"):
        for name, value in baseline.tune[section].items():
            assert paper.tune[section][name] == value, name
    # every searched parameter belongs to the baseline's features or the core
    for name in shared:
        assert "." not in name or name.split(".")[0] in baseline.features, name


def test_tune_baseline_runs(store):
    result = CliRunner().invoke(app, ["tune", "baseline", "--trials", "1", "--epochs", "1",
                                      "--data", "demo-small", "--device", "cpu", "--storage",
                                      f"sqlite:///{store / 'optuna.db'}", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["metric"] == "val_accuracy" and summary["counts"] == {"complete": 1}
    assert set(summary["best"]["params"]) == {"lr", "batch_size", "label_smoothing.epsilon",
                                              "weight_decay.decay", "augmentation.erase",
                                              "augmentation.degrees"}
