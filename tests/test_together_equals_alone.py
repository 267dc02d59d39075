"""One run key, one result: on the CPU a run trained by the multi-model engine gives exactly the
numbers it gives alone, whatever it is grouped with; a run stopped after an epoch and resumed
gives exactly the numbers of the uninterrupted run — with every built-in feature on."""

from __future__ import annotations

import pytest
import torch

from bionic_core.training.loop import train_run
from bionic_core.training.multimodel import train_many

from .conftest import tiny_config

PAPER = ("conv_frontend", "lateral_inhibition", "laminar", "adjacency_mask", "intra_layer",
         "graded_inhibition", "layer_norm", "hebbian", "synaptic_noise", "augmentation",
         "label_smoothing", "lr_scheduler", "weight_decay")
# Small convolutions, a quarter-size column, a plateau scheduler that cuts the rate after every
# epoch without a better score and a strong Hebbian rate, so that every feature acts in 3 epochs.
PARAMS = {"conv_frontend": {"channels1": 4, "channels2": 8, "pool": 3},
          "laminar": {"scale": 0.25},
          "lr_scheduler": {"patience": 0, "factor": 0.5},
          "hebbian": {"rate": 3e-3}}
STRUCTURAL = ("conv_frontend", "lateral_inhibition", "laminar", "adjacency_mask",
              "intra_layer", "graded_inhibition")

CASES = {
    "all13": PAPER,
    "augmentation": ("augmentation",),
    "synaptic_noise": ("synaptic_noise", "layer_norm"),
    "hebbian": ("hebbian",),
    "structural": STRUCTURAL,
}


def config_of(features, seed=0, epochs=3):
    params = {k: v for k, v in PARAMS.items() if k in features}
    return tiny_config(features=tuple(features), params=params, seed=seed, epochs=epochs)


def assert_identical(a, b) -> None:
    """Every logged number and every weight equal, bit for bit (epoch times aside)."""
    assert a.key == b.key and a.status == b.status == "finished"
    assert (a.best_epoch, a.epochs_run) == (b.best_epoch, b.epochs_run)
    strip = [{k: v for k, v in row.items() if k != "epoch_time"} for row in a.history]
    assert strip == [{k: v for k, v in row.items() if k != "epoch_time"} for row in b.history]
    assert a.val == b.val and a.test == b.test
    assert a.model_state.keys() == b.model_state.keys()
    for name, tensor in a.model_state.items():
        assert torch.equal(tensor, b.model_state[name]), name


@pytest.mark.parametrize("case", list(CASES))
def test_trained_together_equals_trained_alone(catalogue, case):
    config = config_of(CASES[case])
    partners = [config_of(CASES[case], seed=1), config_of(("layer_norm",)),
                config_of(CASES[case][:-1] or ("layer_norm",))]
    alone = train_run(config, catalogue)
    together = train_many([config, *partners], catalogue, batched=False)
    assert_identical(together[0], alone)


def test_result_does_not_depend_on_the_group(catalogue):
    """Alone, in a group of 2 and in a group of 5: the same numbers."""
    config = config_of(("synaptic_noise", "hebbian", "augmentation", "layer_norm"))
    others = [config_of(("layer_norm",), seed=s) for s in range(1, 5)]
    alone = train_run(config, catalogue)
    for size in (1, 2, 5):
        grouped = train_many([config, *others[:size - 1]], catalogue, batched=False)
        assert_identical(grouped[0], alone)


class Stop(BaseException):
    """Stands for an interruption (Ctrl-C, a killed worker) after an epoch's checkpoint."""


def interrupted_after(epochs: int, config, catalogue, checkpoint) -> dict:
    """Train ``config`` until ``epochs`` epochs are checkpointed, then interrupt it; the
    checkpoint as saved."""

    def stop(epoch, row):
        if epoch == epochs:
            raise Stop

    with pytest.raises(Stop):
        train_run(config, catalogue, checkpoint=checkpoint, on_epoch=stop)
    return torch.load(checkpoint, weights_only=True)


def test_stopped_and_resumed_equals_uninterrupted_with_every_feature(catalogue, tmp_path):
    config = config_of(PAPER, epochs=3)
    full = train_run(config, catalogue)
    checkpoint = tmp_path / "run.pt"
    saved = interrupted_after(2, config, catalogue, checkpoint)
    assert "hebbian" in saved["feature_states"]  # the running rates travel with the run
    resumed = train_run(config, catalogue, checkpoint=checkpoint)
    assert resumed.resumed_from_epoch == 2
    assert_identical(resumed, full)


def test_resume_without_the_feature_state_differs(catalogue, tmp_path, monkeypatch):
    """The check above can fail: dropping the Hebbian running averages changes the result."""
    config = config_of(("hebbian",), epochs=3).replace(
        params={"hebbian": {"rate": 3e-2, "homeostasis": "threshold", "tau": 10.0}})
    full = train_run(config, catalogue)
    checkpoint = tmp_path / "run.pt"
    saved = interrupted_after(1, config, catalogue, checkpoint)
    saved["feature_states"] = {}
    torch.save(saved, checkpoint)
    resumed = train_run(config, catalogue, checkpoint=checkpoint)
    assert resumed.history[-1]["train_loss"] != full.history[-1]["train_loss"]


def test_two_cpu_threads_in_the_process_do_not_change_a_run(catalogue):
    """torch set to two intra-op threads (as on a fresh 2-core process): alone and together
    still agree, because every run computes with its config's ``cpu_threads``."""
    config = config_of(("conv_frontend", "layer_norm", "augmentation"))
    torch.set_num_threads(2)
    alone = train_run(config, catalogue)
    assert torch.get_num_threads() == 2  # restored after the run
    together = train_many([config, config_of(("layer_norm",))], catalogue, batched=False)
    assert_identical(together[0], alone)
