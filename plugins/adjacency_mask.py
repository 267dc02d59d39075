"""adjacency_mask: each hidden layer's weight is ``W ⊙ M`` with M from the column connectome
(off: dense). The first hidden layer's input projection, from the front end, stays dense."""

from __future__ import annotations

from bionic_core.api import Feature, HiddenLayer, Param, hookimpl
from bionic_core.connectome.run_wiring import plan_masks, run_connectome

NAME = "adjacency_mask"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="structural",
        help="Mask hidden-to-hidden weights (and the intra-layer term) with the connectome: "
             "neuron-level when the units are census cells, else Bernoulli at its densities.",
        params=(
            Param("wiring", str, "column", "'column': the connectome's masks; 'shuffled': "
                  "random masks of the same per-block densities (a control)",
                  choices=("column", "shuffled")),
        ),
    )


@hookimpl
def bionic_connectivity(ctx, plan) -> list[HiddenLayer]:
    shuffled = ctx.params(NAME)["wiring"] == "shuffled"
    layers, record = plan_masks(plan, run_connectome(ctx), shuffled=shuffled)
    ctx.provenance[NAME] = record
    return layers
