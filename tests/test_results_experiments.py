"""The experiments of results/experiments.toml (the second edition's sweeps) resolve against
today's features and still describe the runs exported from them, and the record attempt keeps
within the issue's budget."""

from __future__ import annotations

import json

from bionic_core.config import resolve_features
from bionic_core.experiments import ExperimentFile
from bionic_core.network.model import count_parameters
from bionic_core.training.loop import prepare

from .conftest import REPO

BIOLOGY = {"lateral_inhibition", "laminar", "adjacency_mask", "intra_layer", "graded_inhibition",
           "hebbian", "synaptic_noise"}


def _results_experiments(file: ExperimentFile) -> list[str]:
    """The experiments defined in results/experiments.toml itself (not the shipped ones)."""
    return [n for n in file.names() if file.origin(n).parent.name == "results"]


def test_every_results_experiment_resolves(catalogue):
    file = ExperimentFile.load(REPO / "results" / "experiments.toml")
    names = _results_experiments(file)
    assert {"gap", "converged_out", "ladder", "record"} <= set(names)
    for name in names:
        resolve_features(file.config(name), catalogue, name)


def test_the_record_attempt_has_every_biological_constraint_and_under_two_million_parameters(
        catalogue):
    file = ExperimentFile.load(REPO / "results" / "experiments.toml")
    record, paper = file.config("record"), file.config("paper")
    assert BIOLOGY <= set(record.features) and set(record.features) == set(paper.features)
    config = record.replace(dataset="demo-small", device="cpu", seed=0)
    _, model, _ = prepare(config, catalogue)
    assert count_parameters(model) <= 2_000_000
    _, paper_model, _ = prepare(paper.replace(dataset="demo-small", device="cpu", seed=0),
                                catalogue)
    assert count_parameters(model) != count_parameters(paper_model)  # the front end is wider
    assert [m.out_channels for m in model.frontend if hasattr(m, "out_channels")] == [
        32, 64, 128, 128]


def test_the_record_control_is_the_standard_cnn_behind_the_same_front_end(catalogue):
    file = ExperimentFile.load(REPO / "results" / "experiments.toml")
    record, control, baseline = (file.config(n) for n in ("record", "record_cnn", "baseline"))
    assert not BIOLOGY & set(control.features) and set(control.features) == set(baseline.features)
    assert control.params["conv_frontend"] == record.params["conv_frontend"]
    assert control.hidden_sizes == baseline.hidden_sizes


def test_every_exported_run_still_resolves_to_its_experiments_schedule_and_stopping():
    """A change of the shipped recipe (e.g. `paper`'s schedule) must not silently change the
    experiments the exported runs came from: rerunning one would train other models. Epochs
    may differ (``--epochs`` on the command line, e.g. the 10-epoch ladder)."""
    file = ExperimentFile.load(REPO / "results" / "experiments.toml")
    own = set(_results_experiments(file))
    checked = 0
    for sweep_path in sorted((REPO / "results" / "sweeps").glob("*.json")):
        sweep = json.loads(sweep_path.read_text())
        name = sweep["experiment"]
        if name not in own:
            continue
        config = file.config(name)
        schedule = config.params.get("lr_scheduler", {})
        for configuration in sweep["configurations"]:
            for key in configuration["runs"].values():
                run = json.loads((REPO / "results" / "runs" / f"{key}.json").read_text())
                ran = run["config"]
                assert ran["patience"] == config.patience, (name, key)
                assert {k: ran["params"]["lr_scheduler"][k] for k in schedule} == schedule, (
                    name, key)
                checked += 1
    assert checked > 100
