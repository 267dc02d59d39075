"""layer_norm: Layer Normalization of each hidden layer's activity.

Runs at order 30 in the layer-activity phase: after graded inhibition (20), which scales the
raw activity, and before synaptic noise (40), so that σ is in units of the normalised activity.
"""

from __future__ import annotations

from torch import nn

from bionic_core.api import Feature, Param, hookimpl

NAME = "layer_norm"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="LayerNorm over the units of each hidden layer, after its activation.",
        params=(Param("affine", bool, True, "learn a per-unit gain and bias",
                      choices=(True, False)),),
        order=30,
        touches=("hidden activity",),
    )


@hookimpl
def bionic_layer_activity(ctx, layer) -> nn.Module:
    return nn.LayerNorm(layer.size, elementwise_affine=ctx.params(NAME)["affine"])
