"""`bionic evaluate`: a logged run's model rebuilt from MLflow and evaluated on any dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.data import load_dataset
from bionic_core.studies.saved_models import config_from_dict
from bionic_core.studies.tracked_run import run_tracked
from bionic_core.studies.tracking import Tracker

from .conftest import one_error_line, tiny_config
from .fer_fixture import write_fer_dir

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
    [report] = json.loads(result.stdout)
    # Same model, same test split: the metrics logged at the end of training.
    assert report["data"]["split"] == "test" and report["data"]["is_demo"] is True
    assert report["data"]["trained_on"] == 0
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
    assert "confusion matrix" in table.stdout and "split all" in table.stdout


def test_evaluate_refuses_the_runs_training_images(store, logged_run):
    run_id, _ = logged_run
    line = one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", "demo-small",
                                              "--split", "train"]),
                          "demo-small: train: 700 of 700 images", "--allow-train-overlap")
    assert run_id in line
    # a union holding the train part is refused too, named or as a file of its own
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", "demo-small",
                                       "--split", "all"]), "all:", "700 of 1000 images")
    train = load_dataset("demo-small").splits["train"]
    np.savez(store / "mine.npz", images=train.images[:50], labels=train.labels[:50])
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", str(store / "mine.npz")]),
                   "mine.npz: all: 50 of 50 images")
    allowed = runner.invoke(app, ["evaluate", run_id, "--data", "demo-small", "--split",
                                  "train", "--allow-train-overlap", "--json", "--no-log"])
    assert allowed.exit_code == 0, allowed.output
    [report] = json.loads(allowed.stdout)
    assert report["data"]["trained_on"] == report["data"]["n"] == 700


def test_evaluate_needs_the_record_of_training_images(store, logged_run, monkeypatch):
    from bionic_core.studies import evaluation

    run_id, _ = logged_run
    monkeypatch.setattr(evaluation, "logged_training_images", lambda tracker, run: None)
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", "demo-small"]),
                   "has no record of its training images", "--allow-train-overlap")


@pytest.fixture
def fer_run(store, catalogue):
    """A tiny run on a FER-2013-like npz directory (PublicTest repeats Training images) with a
    20 % holdout of seed 3: (run_id, final metrics, its config, the fixture directory)."""
    data = write_fer_dir(store / "fer")
    config = tiny_config(experiment="evaluate", epochs=1, features=("layer_norm",),
                         hidden_sizes=(16, 16), dataset=str(data), val_fraction=0.2,
                         val_seed=3)
    result, run_id = run_tracked(config, catalogue, Tracker())
    assert result.status == "finished"
    return run_id, Tracker().get_run(run_id).data.metrics, config, data


def test_a_run_evaluates_and_logs_each_test_split(fer_run):
    run_id, metrics, _, _ = fer_run
    for split in ("val", "test", "test_public", "test_private"):
        assert f"final_{split}_accuracy" in metrics and f"final_{split}_macro_f1" in metrics
    assert metrics["final_test_accuracy"] == metrics["final_test_private_accuracy"]
    run = Tracker().get_run(run_id)
    assert run.data.tags["bionic.primary_test_split"] == "test_private"
    assert run.data.params["val_fraction"] == "0.2" and run.data.params["val_seed"] == "3"
    artifacts = {a.path for a in Tracker().list_artifacts(run_id)}
    assert {"confusion_val.png", "confusion_test_public.png",
            "confusion_test_private.png"} <= artifacts
    assert "data/train_image_hashes.npy" in {a.path for a in Tracker().list_artifacts(run_id,
                                                                                        "data")}


def test_evaluate_each_test_split_and_refuse_training_copies(fer_run):
    run_id, metrics, config, data = fer_run
    dataset = load_dataset(data, val_fraction=0.2, val_seed=3)
    copies = int(np.isin(dataset.splits["test_public"].hashes(),
                         dataset.splits["train"].hashes()).sum())
    assert copies > 0  # PublicTest repeats Training images, as FER-2013 does
    one_error_line(runner.invoke(app, ["evaluate", run_id, "--data", str(data)]),
                   f"test_public: {copies} of 14 images", "dedupe = true")
    # the PrivateTest file alone holds no training image: evaluated whole
    private = runner.invoke(app, ["evaluate", run_id, "--data",
                                  str(data / "fer2013_privatetest.npz"), "--json"])
    assert private.exit_code == 0, private.output
    assert json.loads(private.stdout)[0]["accuracy"] == pytest.approx(
        metrics["final_test_private_accuracy"], abs=1e-9)
    both = runner.invoke(app, ["evaluate", run_id, "--data", str(data), "--json",
                               "--allow-train-overlap"])
    assert both.exit_code == 0, both.output
    reports = json.loads(both.stdout)
    assert [r["data"]["split"] for r in reports] == ["test_public", "test_private"]
    for r in reports:
        assert r["accuracy"] == pytest.approx(metrics[f"final_{r['data']['split']}_accuracy"],
                                              abs=1e-9)
    assert reports[0]["data"]["trained_on"] == copies and "publictest" in reports[0]["data"][
        "origin"]


def test_evaluate_val_is_the_runs_own_holdout(fer_run):
    run_id, metrics, _, data = fer_run
    result = runner.invoke(app, ["evaluate", run_id, "--data", str(data), "--split", "val",
                                 "--json", "--no-log"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    own = load_dataset(data, val_fraction=0.2, val_seed=3).splits["val"]
    assert report["data"]["n"] == len(own) != len(load_dataset(data).splits["val"])
    assert "seed 3" in report["data"]["origin"] and report["data"]["trained_on"] == 0
    assert report["accuracy"] == pytest.approx(metrics["final_val_accuracy"], abs=1e-9)


def test_a_deduped_run_evaluates_fer_test_splits_without_overlap(store, catalogue):
    data = write_fer_dir(store / "fer")
    config = tiny_config(experiment="evaluate", epochs=1, hidden_sizes=(16, 16),
                         dataset=str(data), dedupe=True)
    result, run_id = run_tracked(config, catalogue, Tracker())
    assert result.dataset["deduped"] == 5
    evaluated = runner.invoke(app, ["evaluate", run_id, "--data", str(data), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert [r["data"]["trained_on"] for r in json.loads(evaluated.stdout)] == [0, 0]


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


def test_a_model_folder_evaluates_without_the_store(store, logged_run, tmp_path_factory):
    """`bionic results model` writes a run's model to a folder; `bionic evaluate FOLDER` gives
    the run's own test metrics from it with the MLflow store gone, and still refuses the run's
    training images."""
    import shutil

    run_id, metrics = logged_run
    folder = tmp_path_factory.mktemp("models") / "tiny-s0"
    written = runner.invoke(app, ["results", "model", run_id, "--out", str(folder)])
    assert written.exit_code == 0, written.output
    assert {p.name for p in folder.iterdir()} == {"state_dict.pt", "config.json", "run.json",
                                                   "train_image_hashes.npy"}
    run = json.loads((folder / "run.json").read_text())
    assert run["mlflow_run_id"] == run_id and run["seed"] == 0
    assert run["final"]["test"]["accuracy"] == metrics["final_test_accuracy"]
    for path in store.iterdir():  # the store (mlflow.db, mlruns) is gone
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    result = runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small", "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert report["model"] == str(folder) and report["run_id"] == run_id
    assert report["accuracy"] == pytest.approx(metrics["final_test_accuracy"], abs=1e-9)
    assert report["macro_f1"] == pytest.approx(metrics["final_test_macro_f1"], abs=1e-9)
    assert not (store / "mlflow.db").exists()  # nothing was logged anywhere
    table = runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small"])
    assert table.exit_code == 0 and "model of run" in table.stdout
    one_error_line(runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small",
                                       "--split", "train"]), "700 of 700 images",
                   "--allow-train-overlap")
    # --drop-train-overlap: every image but the run's training images (demo-small's 300 others)
    dropped = runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small", "--split",
                                  "all", "--drop-train-overlap", "--json"])
    assert dropped.exit_code == 0, dropped.output
    [report] = json.loads(dropped.stdout)
    assert report["data"]["n"] == 300 and report["data"]["trained_on"] == 0
    assert "without its 700 pixel copies of training images" in report["data"]["origin"]
    one_error_line(runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small",
                                       "--allow-train-overlap", "--drop-train-overlap"]),
                   "choose one")


def test_a_bad_model_folder_is_one_line(store, logged_run, tmp_path_factory):
    run_id, _ = logged_run
    empty = tmp_path_factory.mktemp("empty")
    one_error_line(runner.invoke(app, ["evaluate", str(empty), "--data", "demo-small"]),
                   str(empty), "not a model folder", "bionic results model")
    folder = tmp_path_factory.mktemp("models") / "m"
    assert runner.invoke(app, ["results", "model", run_id, "--out", str(folder)]).exit_code == 0
    (folder / "config.json").write_text("{not json")
    one_error_line(runner.invoke(app, ["evaluate", str(folder), "--data", "demo-small"]),
                   str(folder), "damaged config config.json")
    one_error_line(runner.invoke(app, ["results", "model", "0" * 32, "--out",
                                       str(folder)]), "no such MLflow run")


def test_mirror_averages_each_image_with_its_mirror(store, logged_run, catalogue):
    """--mirror (test-time augmentation) scores the mean softmax of an image and its left-right
    mirror, and is recorded beside the plain evaluation, not over it."""
    import torch

    from bionic_core.studies.saved_models import load_logged_model

    run_id, metrics = logged_run
    result = runner.invoke(app, ["evaluate", run_id, "--data", "demo-small", "--mirror",
                                 "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert report["mirror"] is True and report["evaluation"].endswith("-mirror")
    test = load_dataset("demo-small").splits["test"]
    _, model, _ = load_logged_model(Tracker(), run_id, catalogue, "cpu")
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(test.images, dtype=torch.float32).unsqueeze(1) / 255.0
        plain = torch.softmax(model(x), dim=1)
        mirrored = torch.softmax(model(x.flip(-1)), dim=1)
    assert float((plain.argmax(1).numpy() == test.labels).mean()) == pytest.approx(
        metrics["final_test_accuracy"])  # the reference computation is the model's own
    both = ((plain + mirrored) / 2).argmax(1).numpy()
    assert not np.array_equal(both, plain.argmax(1).numpy())  # the mirror changes predictions
    assert report["accuracy"] == pytest.approx(float((both == test.labels).mean()))
    logged = Tracker().get_run(run_id).data.metrics
    assert logged[f"eval_{report['evaluation']}_accuracy"] == pytest.approx(report["accuracy"])


def test_shift_scores_each_image_with_its_shifted_views(store, logged_run, catalogue):
    """--shift N with --mirror averages ten views of each image (itself and moved N pixels four
    ways, each with its mirror), recorded under its own name beside the mirror-only one."""
    import torch

    from bionic_core.studies.saved_models import load_logged_model

    run_id, _ = logged_run
    result = runner.invoke(app, ["evaluate", run_id, "--data", "demo-small", "--mirror",
                                 "--shift", "2", "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert (report["mirror"], report["shift"]) == (True, 2)
    assert report["evaluation"].endswith("-mirror-shift2")
    test = load_dataset("demo-small").splits["test"]
    _, model, _ = load_logged_model(Tracker(), run_id, catalogue, "cpu")
    model.eval()
    images = np.pad(test.images, ((0, 0), (2, 2), (2, 2)), mode="edge")  # numpy's own shifts
    size = test.images.shape[1]
    views = [images[:, 2 + dy:2 + dy + size, 2 + dx:2 + dx + size]
             for dy, dx in ((0, 0), (0, -2), (0, 2), (-2, 0), (2, 0))]
    with torch.no_grad():
        probabilities = [torch.softmax(model(torch.as_tensor(v[:, :, ::k].copy(),
                                                             dtype=torch.float32)
                                             .unsqueeze(1) / 255.0), dim=1)
                         for v in views for k in (1, -1)]
    mean = torch.stack(probabilities).mean(0).argmax(1).numpy()
    assert report["accuracy"] == pytest.approx(float((mean == test.labels).mean()))
    mirrored = json.loads(runner.invoke(app, ["evaluate", run_id, "--data", "demo-small",
                                              "--mirror", "--json"]).stdout)[0]
    assert report["per_image"]["predictions"] != mirrored["per_image"]["predictions"]
    logged = Tracker().get_run(run_id).data.metrics
    assert logged[f"eval_{report['evaluation']}_accuracy"] == pytest.approx(report["accuracy"])
    assert logged[f"eval_{mirrored['evaluation']}_accuracy"] == pytest.approx(
        mirrored["accuracy"])


@pytest.mark.parametrize("shift", ["-1", "9"])
def test_a_shift_out_of_range_is_one_line(store, logged_run, shift):
    one_error_line(runner.invoke(app, ["evaluate", logged_run[0], "--data", "demo-small",
                                       "--shift", shift]), f"--shift {shift}", "1 to 8 pixels")
