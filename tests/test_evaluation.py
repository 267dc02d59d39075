"""`bionic evaluate`: a logged run's model rebuilt from MLflow and evaluated on any dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.data import load_dataset
from bionic_core.studies.evaluation import config_from_dict
from bionic_core.studies.tracked_run import run_tracked
from bionic_core.studies.tracking import Tracker

from .conftest import one_error_line, tiny_config

runner = CliRunner()



@pytest.fixture
def logged_run(store, catalogue):
    """One finished tiny run in the tmp MLflow store: (run_id, its final metrics)."""
    tracker = Tracker()
    config = tiny_config(experiment="evaluate", epochs=1, features=("layer_norm",),
                         hidden_sizes=(16, 16))
    result, run_id = run_tracked(config, catalogue, tracker)
    assert result.status == "finished"
    return run_id, tracker.get_run(run_id).data.metrics


def test_config_round_trips_through_its_logged_json():
    config = tiny_config(features=("conv_frontend", "layer_norm"),
                         params={"layer_norm": {"affine": False}}, seeds=(0, 1), seed=1)
    rebuilt = config_from_dict(json.loads(json.dumps(config.as_dict())))
    assert rebuilt == config and rebuilt.key() == config.key()
    assert config_from_dict({**config.as_dict(), "from_the_future": 1}) == config


def test_evaluate_reproduces_the_logged_test_metrics_and_logs_them(store, logged_run):
    run_id, metrics = logged_run
    result = runner.invoke(app, ["evaluate", run_id, "--data", "demo-small", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Same model, same test split: the metrics logged at the end of training.
    assert report["data"]["split"] == "test" and report["data"]["is_demo"] is True
    assert report["accuracy"] == pytest.approx(metrics["final_test_accuracy"], abs=1e-9)
    assert report["macro_f1"] == pytest.approx(metrics["final_test_macro_f1"], abs=1e-9)
    assert len(report["confusion"]) == 7 and set(report["per_class"]) >= {"Happy", "Disgust"}
    tracker = Tracker()
    run = tracker.get_run(run_id)
    name = report["evaluation"]
    assert run.data.metrics[f"eval_{name}_accuracy"] == pytest.approx(report["accuracy"])
    logged = {a.path for a in tracker.list_artifacts(run_id, "evaluations")}
    assert {f"evaluations/{name}.json", f"evaluations/{name}.png"} <= logged

    # The same images as a plain npz file: every image of the file is evaluated.
    test = load_dataset("demo-small").splits["test"]
    np.savez(store / "faces.npz", images=test.images, labels=test.labels)
    table = runner.invoke(app, ["evaluate", run_id, "--data", str(store / "faces.npz")])
    assert table.exit_code == 0, table.output
    assert f"{100 * metrics['final_test_accuracy']:.2f} %" in table.stdout
    assert "confusion matrix" in table.stdout




def test_evaluate_bad_input_is_one_line(store, logged_run):
    run_id, _ = logged_run
    wrong = store / "small.npz"
    np.savez(wrong, images=np.zeros((5, 32, 32), np.uint8), labels=np.zeros(5, np.int64))
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", str(wrong)]),
                    "small.npz", "(5, 32, 32)", "48, 48")
    one_error_line(runner.invoke(app, ["evaluate", "0" * 32, "--data", "demo-small"]),
                    "no such MLflow run")
    one_error_line(runner.invoke(app, ["evaluate", run_id]), "--data")
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", "demo-small",
                                        "--split", "holdout"]), "--split holdout")
