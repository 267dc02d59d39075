"""adjacency_mask: each hidden layer's weight is ``W ⊙ M`` with M from the column connectome
(off: dense). The first hidden layer's input projection, from the front end, stays dense.

``wiring`` chooses the column's own masks or a control (see docs/structural_features.md): every
control starts from the column run's dense initial weights, masked differently, and draws its
masks with the config's ``connectome.null_seed``."""

from __future__ import annotations

from bionic_core.api import Feature, HiddenLayer, Param, hookimpl
from bionic_core.connectome.controls import WIRINGS
from bionic_core.connectome.run_wiring import plan_masks, run_connectome, run_null_seed

NAME = "adjacency_mask"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="structural",
        help="Mask hidden-to-hidden weights (and the intra-layer term) with the connectome: "
             "one unit per census cell with its type's wiring, or a control of it.",
        params=(
            Param("wiring", str, "column", "'column': the connectome's masks; a control: "
                  "type_shuffled, layer_uniform, uniform, degree_preserving, dense_matched",
                  choices=tuple(WIRINGS)),
        ),
        touches=("hidden.mask", "hidden.intra_mask"),
    )


@hookimpl
def bionic_connectivity(ctx, plan, in_features, options) -> list[HiddenLayer]:
    layers, record = plan_masks(plan, run_connectome(ctx), wiring=ctx.params(NAME)["wiring"],
                                null_seed=run_null_seed(ctx), in_features=in_features,
                                intra_on=bool(options.get("intra_layer")))
    ctx.provenance[NAME] = record
    return layers
