"""synaptic_noise: Gaussian noise on the hidden layers' activity or synaptic weights, in
training only (neural stochasticity; evaluation is noise-free).

- ``target = "activations"`` (default): each hidden layer's activity gets ``+ σ·ξ`` per unit and
  sample, after LayerNorm when that is on (order 40 > layer_norm's 30), so σ is in units of the
  normalised activity.
- ``target = "weights"``: each forward pass in training uses ``W ⊙ (1 + σ·ξ) ⊙ M``, one draw
  per weight and batch: multiplicative, because synaptic transmission varies in proportion to
  the synapse's strength. Implemented as a torch parametrization of ``weight``, so the optimizer
  and other features keep working on the underlying weights; a masked (zero) weight stays zero.

ξ is standard normal from the run's private stream ``ctx.random_stream("synaptic_noise")``
(through ``normal_like``), so a run draws the same noise alone or trained beside other models —
also inside the multi-model engine's batched (vmapped) step, where each model's slice is drawn
from its own run's stream.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from bionic_core.api import BionicError, Feature, MaskedHiddenLayer, Param, hookimpl, normal_like

NAME = "synaptic_noise"


def standard_normal_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """ξ ~ N(0, 1) shaped like ``x``, from the run's ``generator`` (from torch's global
    generator only for a module built without one)."""
    return torch.randn_like(x) if generator is None else normal_like(x, generator)


class ActivityNoise(nn.Module):
    """``h + σ·ξ`` in training mode; identity in eval mode."""

    def __init__(self, sigma: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.sigma = sigma
        self._generator = generator  # private: not a setting that distinguishes models

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return h
        return h + self.sigma * standard_normal_like(h, self._generator)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class WeightNoise(nn.Module):
    """Parametrization ``W ↦ W ⊙ (1 + σ·ξ)`` in training mode; ``W`` in eval mode."""

    def __init__(self, sigma: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.sigma = sigma
        self._generator = generator

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.training or self.sigma == 0:
            return weight
        return weight * (1 + self.sigma * standard_normal_like(weight, self._generator))

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


def _params(ctx) -> dict:
    p = ctx.params(NAME)
    if p["sigma"] < 0:
        raise BionicError(f"params.{NAME}.sigma: {p['sigma']} must not be negative")
    return p


@hookimpl
def bionic_feature() -> Feature:
    return Feature(
        name=NAME,
        group="functional",
        help="Gaussian noise in training only: additive on each hidden layer's activity "
             "(default) or multiplicative on its feedforward weights.",
        params=(
            Param("target", str, "activations", "where the noise goes",
                  choices=("activations", "weights")),
            Param("sigma", float, 0.1, "noise standard deviation (activity units, or fraction "
                  "of each weight)", low=0.01, high=0.5, log=True),
        ),
        # After layer_norm (30) in the layer-activity phase: σ is then relative to unit variance.
        order=40,
        touches=("hidden activity", "hidden.weight"),
    )


@hookimpl
def bionic_layer_activity(ctx) -> nn.Module | None:
    p = _params(ctx)
    if p["target"] != "activations":
        return None
    return ActivityNoise(p["sigma"], ctx.random_stream(NAME))


@hookimpl
def bionic_model_built(ctx, model: nn.Module) -> None:
    p = _params(ctx)
    if p["target"] != "weights":
        return
    for layer in model.modules():
        if isinstance(layer, MaskedHiddenLayer):
            parametrize.register_parametrization(
                layer, "weight", WeightNoise(p["sigma"], ctx.random_stream(NAME)))
