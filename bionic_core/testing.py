"""Helpers for a feature plugin's tests: a seconds-long run config, the model a run builds, a
short training run, and the catalogue with the feature under test registered.

    from bionic_core.testing import catalogue_with, tiny_config, built_model, train_run

(Kept apart from :mod:`bionic_core.api`, which every plugin imports when it loads, because
training pulls in the data readers.)
"""

from __future__ import annotations

from typing import Any

from bionic_core.api import BionicNet, RunContext, catalogue_with
from bionic_core.config import RunConfig
from bionic_core.host import Catalogue
from bionic_core.training.loop import RunResult, prepare, train_run

__all__ = ["RunConfig", "RunResult", "built_model", "catalogue_with", "tiny_config",
           "train_run"]


def tiny_config(**changes: Any) -> RunConfig:
    """A seconds-long run: one epoch on the small demonstration set, on the CPU, two hidden
    layers of 32 units, no feature enabled; ``changes`` override any field, e.g.
    ``tiny_config(features=("my_feature",), params={"my_feature": {"rate": 0.1}})``."""
    base = RunConfig(experiment="tiny", dataset="demo-small", features=(), epochs=1,
                     patience=0, hidden_sizes=(32, 32), batch_size=64, seeds=(0,), seed=0,
                     device="cpu")
    return base.replace(**changes)


def built_model(config: RunConfig, catalogue: Catalogue) -> tuple[RunContext, BionicNet]:
    """The run context and the model exactly as a run of ``config`` builds them (seeded, every
    build-phase hook called, ``bionic_model_built`` included), untrained: to check what a
    feature did to the model."""
    ctx, model, _ = prepare(config, catalogue)
    return ctx, model
