"""intra_layer: a within-layer (lateral) term in every hidden layer,
``h = act(z + (W_intra ⊙ M_intra) · act(z))`` — one recurrent step, no self-connections.

M_intra is the connectome's intra-layer block when ``adjacency_mask`` is on, otherwise all-ones
off the diagonal (the core's ``MaskedHiddenLayer`` implements the term; this feature switches it
on and sets its initial scale)."""

from __future__ import annotations

import torch

from bionic_core.api import Feature, MaskedHiddenLayer, Param, hookimpl
from bionic_core.connectome.masks import block_density

NAME = "intra_layer"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="structural",
        help="Masked within-layer connections in each hidden layer (one lateral, recurrent step).",
        params=(
            Param("init_std", float, 0.01, "standard deviation of the initial within-layer "
                  "weights (small: the term starts as a perturbation of the feedforward drive)",
                  low=1e-3, high=0.1, log=True),
        ),
        touches=("hidden.intra_weight",),
    )


@hookimpl
def bionic_layer_options() -> dict[str, bool]:
    return {"intra_layer": True}


@hookimpl
def bionic_model_built(ctx, model) -> None:
    std = ctx.params(NAME)["init_std"]
    densities = {}
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, MaskedHiddenLayer) and layer.intra_weight is not None:
                values = torch.empty_like(layer.intra_mask).normal_(0.0, std)
                layer.initialise("intra_weight", values * layer.intra_mask)
                mask = layer.intra_mask.cpu().numpy()
                densities[layer.spec_name] = round(block_density(mask, intra=True), 6)
    ctx.provenance[NAME] = {"init_std": std, "intra_densities": densities}
