"""The hidden-layer plan: how many layers, how many units, and what each unit is."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass
class HiddenLayer:
    """One hidden layer of the network.

    ``mask`` is the feedforward connectivity ``(size, in_features)`` (1 = synapse allowed);
    None means dense, as for the first layer, whose inputs come from the front end, not from
    the connectome. ``intra_mask`` ``(size, size)`` gates the optional within-layer term.
    """

    name: str
    size: int
    cell_types: tuple[str, ...] | None = None  # per unit, when the plan comes from a census
    ei: tuple[str, ...] | None = None  # per unit: "E" / "I"
    mask: np.ndarray | None = None
    intra_mask: np.ndarray | None = None
    # Per-unit data features attach to the layer (e.g. normalised inhibitory input).
    extra: dict[str, Any] = field(default_factory=dict)

    def with_masks(self, mask: np.ndarray | None, intra_mask: np.ndarray | None) -> HiddenLayer:
        return replace(self, mask=mask, intra_mask=intra_mask)


@dataclass
class LayerPlan:
    """The ordered hidden layers and where their sizes came from."""

    layers: list[HiddenLayer]
    source: str

    @property
    def sizes(self) -> list[int]:
        return [layer.size for layer in self.layers]

    @classmethod
    def uniform(cls, sizes: list[int] | tuple[int, ...]) -> LayerPlan:
        layers = [HiddenLayer(name=f"hidden{i + 1}", size=int(n)) for i, n in enumerate(sizes)]
        return cls(layers=layers, source="uniform (config hidden_sizes)")
