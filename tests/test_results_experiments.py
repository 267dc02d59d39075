"""The experiments of results/experiments.toml (the second edition's sweeps) resolve against
today's features, and the record attempt keeps within the issue's budget."""

from __future__ import annotations

from bionic_core.config import resolve_features
from bionic_core.experiments import ExperimentFile
from bionic_core.network.model import count_parameters
from bionic_core.training.loop import prepare

from .conftest import REPO

BIOLOGY = {"lateral_inhibition", "laminar", "adjacency_mask", "intra_layer", "graded_inhibition",
           "hebbian", "synaptic_noise"}


def test_every_results_experiment_resolves(catalogue):
    file = ExperimentFile.load(REPO / "results" / "experiments.toml")
    names = [n for n in file.names() if file.origin(n).parent.name == "results"]
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
