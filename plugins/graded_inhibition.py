"""graded_inhibition: each hidden unit's activity is scaled down by how much inhibitory input it
receives from the column's inhibitory cells (BC, MC, BPC, NGC).

Formula, per unit i after the activation:   h_i ← h_i · (1 − α · g_i),
g_i = c_i / max_j c_j ∈ [0, 1], where c_i is unit i's inhibitory input: the inhibitory cells
connected onto it (edge table), or their expected number ``sum_j p(j -> i)`` from the connection
table (by default the measured BC/MC/BPC/NGC -> cell-type rates, and the cells' distance), so it
differs by type within a layer; the max runs over every unit of the plan, so units that receive
more inhibition in the column keep receiving more here.

Why this form: it is the paper's "scaled down by the normalized count" read literally, as a fixed
(not learned) per-unit gain; it is linear in the count, so every inhibitory input removes the
same fraction; with α ∈ [0, 1] the gain stays in [1 − α, 1], so it never flips a unit's sign and
silences only the most inhibited unit, and only at α = 1; α = 0 is exactly the plain layer.
It acts before Layer Normalization (order 20 < 30), on the activity the next layer receives.
"""

from __future__ import annotations

import torch
from torch import nn

from bionic_core.api import BionicError, Feature, Param, hookimpl
from bionic_core.connectome.run_wiring import layer_inhibitory_input, run_connectome

NAME = "graded_inhibition"


class GradedInhibition(nn.Module):
    """``h * (1 - alpha * g)`` with a fixed per-unit ``g`` in [0, 1]."""

    def __init__(self, inhibitory_input: torch.Tensor, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.register_buffer("gain", 1.0 - alpha * inhibitory_input.float())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.gain

    def extra_repr(self) -> str:
        return f"units={self.gain.numel()}, alpha={self.alpha}"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="structural",
        help="Scale each unit's activity by 1 - alpha * (its normalised number of incoming "
             "connections from the column's inhibitory cells, by its cell type).",
        params=(Param("alpha", float, 0.5, "inhibition strength (0 = off, 1 = the most "
                      "inhibited unit is silenced)", low=0.0, high=1.0),),
        order=20,  # before layer_norm (30): normalisation sees the inhibited activity
        touches=("hidden activity",),
    )


@hookimpl
def bionic_layer_activity(ctx, layer, index) -> nn.Module:
    alpha = ctx.params(NAME)["alpha"]
    if not 0.0 <= alpha <= 1.0:
        raise BionicError(f"params.{NAME}.alpha: {alpha} is outside [0, 1]")
    g = layer_inhibitory_input(layer, index, run_connectome(ctx))
    record = ctx.provenance.setdefault(NAME, {"alpha": alpha, "layers": {}})
    record["layers"][layer.name] = {"mean_g": round(float(g.mean()), 4),
                                    "min_gain": round(float(1 - alpha * g.max()), 4)}
    return GradedInhibition(torch.from_numpy(g), alpha)
