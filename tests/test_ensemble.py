"""`bionic evaluate RUN RUN ...`: several models evaluated as one ensemble (mean softmax)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.data import load_dataset
from bionic_core.studies.saved_models import load_logged_model
from bionic_core.studies.tracked_run import run_tracked
from bionic_core.studies.tracking import Tracker

from .conftest import one_error_line, tiny_config

runner = CliRunner()


@pytest.fixture
def two_runs(store, catalogue):
    """Two finished tiny runs of one configuration, seeds 0 and 1, in the tmp MLflow store."""
    tracker = Tracker()
    ids = []
    for seed in (0, 1):
        config = tiny_config(experiment="ensemble", epochs=1, features=("layer_norm",),
                             hidden_sizes=(16, 16), seed=seed, seeds=(seed,))
        result, run_id = run_tracked(config, catalogue, tracker)
        assert result.status == "finished"
        ids.append(run_id)
    return ids


def _probabilities(run_id, catalogue, images):
    _, model, _ = load_logged_model(Tracker(), run_id, catalogue, "cpu")
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
        return torch.softmax(model(x).float(), dim=1)


def test_an_ensemble_is_its_members_mean_probability(two_runs, catalogue):
    result = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small", "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    tracker = Tracker()
    logged = [tracker.get_run(r).data.metrics for r in two_runs]
    # each member scores as its own run did at the end of training, on the same images
    assert [m["run_id"] for m in report["members"]] == two_runs
    for member, metrics in zip(report["members"], logged, strict=True):
        assert member["accuracy"] == pytest.approx(metrics["final_test_accuracy"], abs=1e-9)
    assert report["n_parameters"] == sum(m["final_n_parameters"] for m in logged) > 0
    # the ensemble's prediction is the argmax of the mean of the members' softmax
    test = load_dataset("demo-small").splits["test"]
    probs = [_probabilities(r, catalogue, test.images) for r in two_runs]
    predicted = torch.stack(probs).mean(0).argmax(1).numpy()
    assert report["accuracy"] == pytest.approx(float((predicted == test.labels).mean()))
    members_predicted = [p.argmax(1).numpy() for p in probs]
    for own, metrics in zip(members_predicted, logged, strict=True):  # the reference is right
        assert float((own == test.labels).mean()) == pytest.approx(metrics["final_test_accuracy"])
    assert not np.array_equal(*members_predicted)  # two different models, so a real vote
    assert report["data"]["n"] == len(test.labels) and report["data"]["trained_on"] == 0
    # an ensemble belongs to no run: nothing is logged to either member
    for r in two_runs:
        assert not any(k.startswith("eval_") for k in tracker.get_run(r).data.metrics)


def test_an_ensemble_table_names_members_and_parameters(two_runs):
    result = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small"])
    assert result.exit_code == 0, result.output
    assert "an ensemble of 2 models" in result.stdout
    assert "all members" in result.stdout and "seed 1" in result.stdout


def test_a_model_folder_joins_an_ensemble(two_runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tiny-s0"
    written = runner.invoke(app, ["results", "model", two_runs[0], "--out", str(folder)])
    assert written.exit_code == 0, written.output
    by_ids = json.loads(runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small",
                                            "--json"]).stdout)
    mixed = runner.invoke(app, ["evaluate", str(folder), two_runs[1], "--data", "demo-small",
                                "--json"])
    assert mixed.exit_code == 0, mixed.output
    [report] = json.loads(mixed.stdout)
    assert report["accuracy"] == by_ids[0]["accuracy"]
    assert report["members"][0]["run_id"] == two_runs[0]


def test_an_ensemble_refuses_what_a_member_trained_on(two_runs):
    line = one_error_line(runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small",
                                              "--split", "train"]),
                          "demo-small: train: 700 of 700 images", "--allow-train-overlap")
    assert two_runs[0][:12] in line and two_runs[1][:12] in line
    dropped = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small", "--split",
                                  "all", "--drop-train-overlap", "--json"])
    assert dropped.exit_code == 0, dropped.output
    [report] = json.loads(dropped.stdout)
    assert report["data"]["n"] == 300 and "without its 700 pixel copies" in report["data"][
        "origin"]


def test_an_ensemble_bad_input_is_one_line(two_runs):
    one_error_line(runner.invoke(app, ["evaluate", two_runs[0], two_runs[0], "--data",
                                       "demo-small"]), two_runs[0], "given twice")
    one_error_line(runner.invoke(app, ["evaluate", two_runs[0], "0" * 32, "--data",
                                       "demo-small"]), "no such MLflow run")


def test_mirror_reaches_every_member(two_runs):
    plain = json.loads(runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small",
                                           "--json"]).stdout)[0]
    result = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small", "--mirror",
                                 "--json"])
    assert result.exit_code == 0, result.output
    [mirrored] = json.loads(result.stdout)
    single = [json.loads(runner.invoke(app, ["evaluate", r, "--data", "demo-small", "--mirror",
                                             "--json", "--no-log"]).stdout)[0]
              for r in two_runs]
    assert [m["accuracy"] for m in mirrored["members"]] == [s["accuracy"] for s in single]
    assert mirrored["mirror"] is True and "mirror" in mirrored["combined_by"]
    assert mirrored["per_image"] != plain["per_image"]


def test_shift_reaches_every_member(two_runs):
    result = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small", "--shift", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    [shifted] = json.loads(result.stdout)
    single = [json.loads(runner.invoke(app, ["evaluate", r, "--data", "demo-small", "--shift",
                                             "1", "--json", "--no-log"]).stdout)[0]
              for r in two_runs]
    assert [m["accuracy"] for m in shifted["members"]] == [s["accuracy"] for s in single]
    assert (shifted["mirror"], shifted["shift"]) == (False, 1)
    assert "5 views" in shifted["combined_by"] and "moved 1 px" in shifted["combined_by"]


def test_an_ensemble_refuses_a_validation_split_its_members_do_not_share(two_runs, catalogue):
    config = tiny_config(experiment="ensemble", epochs=1, features=("layer_norm",),
                         hidden_sizes=(16, 16), val_seed=5)
    result, other = run_tracked(config, catalogue, Tracker())
    assert result.status == "finished"
    one_error_line(runner.invoke(app, ["evaluate", two_runs[0], other, "--data", "demo-small",
                                       "--split", "val"]),
                   "--split val", "hold out different images", "val_seed 5 against 0")
    shared = runner.invoke(app, ["evaluate", *two_runs, "--data", "demo-small", "--split", "val",
                                 "--json"])
    assert shared.exit_code == 0, shared.output
