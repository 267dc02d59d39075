"""release_failure: stochastic synaptic release — in training, each hidden unit's output reaches
the next layer only with probability ``p`` (an example of a third-party bionic feature).

Cortical synapses release a vesicle on only a fraction of presynaptic spikes (release
probabilities of about 0.1–0.9; Branco & Staras 2009, Nat. Rev. Neurosci. 10, 373). Here a
unit's output fails as a whole, once per unit and sample (a presynaptic failure), and what is
released is scaled by ``1/p``, so the next layer's expected input is unchanged (inverted
dropout). Evaluation is deterministic: every release succeeds, unscaled.

The failures are drawn from the run's own random stream: a Bernoulli(p) draw is ``ξ < Φ⁻¹(p)``
with ξ standard normal from ``normal_like``, so a run draws the same whether it trains alone or
beside other models in the multi-model engine, and a resumed run continues the same draws.
It runs after synaptic noise (order 40) and LayerNorm (30): what fails is the noisy,
normalised activity.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import torch
from torch import nn

from bionic_core.api import BionicError, Feature, Param, hookimpl, normal_like

NAME = "release_failure"


class ReleaseFailure(nn.Module):
    """``h ⊙ r / p`` with ``r ~ Bernoulli(p)`` per unit and sample in training; ``h`` in eval."""

    def __init__(self, p: float, generator: torch.Generator) -> None:
        super().__init__()
        self.p = p
        self.threshold = NormalDist().inv_cdf(p) if p < 1 else math.inf  # P(ξ < threshold) = p
        self._generator = generator  # private: the run's stream, not a setting of the model

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 1:
            return h
        released = normal_like(h, self._generator) < self.threshold
        return h * released / self.p

    def extra_repr(self) -> str:
        return f"p={self.p}"


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Stochastic synaptic release: in training each hidden unit's output is "
             "transmitted with probability p (scaled by 1/p), in evaluation always.",
        params=(Param("p", float, 0.8, "release probability per unit and sample (1 = no "
                      "failures)", low=0.5, high=1.0),),
        order=50,
        touches=("hidden activity",),
    )


@hookimpl
def bionic_layer_activity(ctx) -> nn.Module:
    p = ctx.params(NAME)["p"]
    if not 0 < p <= 1:
        raise BionicError(f"params.{NAME}.p: {p} is outside (0, 1]")
    return ReleaseFailure(p, ctx.random_stream(NAME))
