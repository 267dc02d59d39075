"""The core network: front end → masked hidden layers → linear readout over 7 classes."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from bionic_core.contract.context import RunContext
from bionic_core.contract.layers import HiddenLayer, LayerPlan

N_CLASSES = 7
IMAGE_SIZE = 48
# Fixed input scaling of [0, 1] images: dataset-independent, so that models stay comparable.
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _as_buffer(mask: np.ndarray | None) -> torch.Tensor | None:
    return None if mask is None else torch.as_tensor(np.asarray(mask), dtype=torch.float32)


class MaskedHiddenLayer(nn.Module):
    """``h = post(act(z + (W_intra ⊙ M_intra) · act(z)))`` with ``z = (W ⊙ M) x + b``.

    The within-layer term is one recurrent step (the layer's own first activity fed back through
    the intra-layer mask); it exists only when the ``intra_layer`` option is on. Masked weights
    are zeroed at initialisation and receive zero gradient, so they stay exactly zero.
    """

    def __init__(self, in_features: int, spec: HiddenLayer, *, activation: str,
                 intra: bool, post: list[nn.Module]) -> None:
        super().__init__()
        self.spec_name = spec.name
        self.weight = nn.Parameter(torch.empty(spec.size, in_features))
        self.bias = nn.Parameter(torch.zeros(spec.size))
        self.register_buffer("mask", _as_buffer(spec.mask))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.mask is not None:
            if tuple(self.mask.shape) != (spec.size, in_features):
                raise ValueError(f"layer {spec.name}: mask shape {tuple(self.mask.shape)} "
                                 f"!= {(spec.size, in_features)}")
            # Rescale so that each unit's expected input variance matches the dense layer's.
            density = float(self.mask.mean().clamp_min(1e-3))
            with torch.no_grad():
                self.weight.mul_(self.mask / math.sqrt(density))
        self.intra_weight: nn.Parameter | None = None
        self.register_buffer("intra_mask", _as_buffer(spec.intra_mask) if intra else None)
        if intra:
            self.intra_weight = nn.Parameter(torch.zeros(spec.size, spec.size))
            nn.init.normal_(self.intra_weight, std=0.01)
            if self.intra_mask is None:  # dense within-layer term without self-connections
                self.intra_mask = 1.0 - torch.eye(spec.size)
            with torch.no_grad():
                self.intra_weight.mul_(self.intra_mask)
        self.activation = ACTIVATIONS[activation]()
        self.post = nn.Sequential(*post)

    @torch.no_grad()
    def initialise(self, name: str, values: torch.Tensor) -> None:
        """Set the stored tensor ``name`` (``"weight"``, ``"intra_weight"``) to ``values``,
        keeping any parametrization another feature registered on it.

        Writing in place into ``layer.intra_weight`` of a parametrized layer would land in a
        temporary (the parametrization's output) and be lost, whatever the feature order. Goes
        through the parametrizations' ``right_inverse`` when they all have one (as assigning
        the tensor does), else into the stored original (as registering them did).
        """
        if not parametrize.is_parametrized(self, name):
            getattr(self, name).copy_(values)
        elif all(hasattr(p, "right_inverse") for p in self.parametrizations[name]):
            setattr(self, name, values)
        else:
            self.parametrizations[name].original.copy_(values)

    def effective_weight(self) -> torch.Tensor:
        return self.weight if self.mask is None else self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.effective_weight(), self.bias)
        h = self.activation(z)
        if self.intra_weight is not None:
            h = self.activation(z + F.linear(h, self.intra_weight * self.intra_mask))
        return self.post(h)


class BionicNet(nn.Module):
    """Images ``(B, 1, 48, 48)`` in [0, 1] → logits ``(B, 7)``."""

    def __init__(self, frontend: nn.Module, hidden: list[MaskedHiddenLayer],
                 readout: nn.Linear) -> None:
        super().__init__()
        self.frontend = frontend
        self.hidden = nn.ModuleList(hidden)
        self.readout = readout

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.frontend((images - PIXEL_MEAN) / PIXEL_STD)
        for layer in self.hidden:
            x = layer(x)
        return self.readout(x)


def _frontend_out_features(frontend: nn.Module) -> int:
    with torch.no_grad():
        was_training = frontend.training
        frontend.eval()
        out = frontend(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
        frontend.train(was_training)
    return int(out.reshape(1, -1).shape[1])


def build_model(ctx: RunContext) -> tuple[BionicNet, LayerPlan]:
    """Ask the enabled features for each part of the network and assemble it (on the CPU)."""
    host, config = ctx.host, ctx.config
    frontend = host.single("bionic_frontend", ctx=ctx, in_channels=1, image_size=IMAGE_SIZE)
    frontend = frontend if frontend is not None else nn.Flatten()
    plan = host.single("bionic_layer_plan", ctx=ctx) or LayerPlan.uniform(config.hidden_sizes)
    options: dict[str, object] = {}
    for _, answer in host.call("bionic_layer_options", ctx=ctx, plan=plan):
        options.update(answer)
    in_features = _frontend_out_features(frontend)
    layers = host.single("bionic_connectivity", ctx=ctx, plan=plan, in_features=in_features,
                         options=options)
    if layers is not None:
        plan = LayerPlan(layers=list(layers), source=plan.source)
    hidden = []
    for index, spec in enumerate(plan.layers):
        post = [m for _, m in host.call("bionic_layer_activity", ctx=ctx, layer=spec,
                                            index=index)]
        hidden.append(MaskedHiddenLayer(in_features, spec, activation=config.activation,
                                        intra=bool(options.get("intra_layer")), post=post))
        in_features = spec.size
    model = BionicNet(frontend, hidden, nn.Linear(in_features, N_CLASSES))
    return model, plan


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters that can be non-zero: masked-out synapses are not counted.

    Counted per masked layer from the mask shapes, so it holds however a feature re-wraps the
    weight tensors (e.g. a torch parametrization that moves ``weight`` elsewhere).
    """
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for layer in model.modules():
        if isinstance(layer, MaskedHiddenLayer):
            if layer.mask is not None:
                total -= int(layer.mask.numel() - layer.mask.sum().item())
            if layer.intra_weight is not None and layer.intra_mask is not None:
                total -= int(layer.intra_mask.numel() - layer.intra_mask.sum().item())
    return total
