"""laminar: hidden layers in the column's feedforward order, L4 → L2/3 → L5 → L6, one unit per
excitatory cell of the census, each unit with its cell's type (L5: 5P-IT/PT/NP, L6: 6P-IT/CT/U)
and soma position, which the masks and the inhibitory input follow.

Off: uniform layers of the config's ``hidden_sizes`` (``paper``: 4 × 290, the same 1,160 units),
whose masks keep the column's connection count per block without its layer sizes or types."""

from __future__ import annotations

from bionic_core.api import Feature, LayerPlan, Param, hookimpl
from bionic_core.connectome.run_wiring import census_plan, run_connectome

NAME = "laminar"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="structural",
        help="Hidden layer sizes and order from the V1-column census (L4 266, L2/3 349, L5 185, "
             "L6 360 with the shipped census); the grouping is the config's connectome.grouping.",
        params=(
            Param("scale", float, 1.0, "units per census cell (1 = one unit per excitatory "
                  "neuron; other values keep the laminar proportions)", low=0.5, high=2.0),
        ),
        touches=("layer plan",),
    )


@hookimpl
def bionic_layer_plan(ctx) -> LayerPlan:
    plan = census_plan(run_connectome(ctx), ctx.params(NAME)["scale"])
    ctx.provenance[NAME] = {"sizes": plan.sizes, "source": plan.source}
    return plan
