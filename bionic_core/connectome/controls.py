"""Wiring controls: null masks that keep some of the column's structure and destroy the rest.

Every control except ``dense_matched`` has exactly the column's connection count in every block
(``uniform``: in total), so the masked layers have the same number of free weights and - where
the block counts match - the same 1/sqrt(density) initial rescale; their draws use the
connectome's null seed, one independent stream per control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.masks import (
    block_probabilities,
    place_connections,
    slots,
)
from bionic_core.connectome.pair_probability import ConnectionTable
from bionic_core.connectome.rewiring import rewire_keeping_degrees
from bionic_core.connectome.tables import CellKey
from bionic_core.contract.errors import BionicError

if TYPE_CHECKING:
    from bionic_core.connectome.connectome import Connectome

WIRINGS = {
    "column": "the column's own masks (measured type-level wiring, plus soma positions when "
              "`distance` is on; or the edge table)",
    "type_shuffled": "cell types permuted within each layer, then masks drawn from the "
                     "permuted types with each block's connection count: the layer-pair "
                     "densities stay, a unit's wiring no longer follows its own type",
    "layer_uniform": "each block's connection count placed uniformly: one density per layer "
                     "pair, no type or distance structure",
    "uniform": "the total feedforward (and within-layer) connection count spread uniformly over "
               "all blocks: no layer or type structure",
    "degree_preserving": "the column's masks rewired keeping every unit's in- and out-degree in "
                         "every block (curveball)",
    "dense_matched": "dense hidden layers, every width scaled by one factor so that the hidden "
                     "layers hold as many free weights as the masked ones",
}

Masks = tuple[list[np.ndarray], list[np.ndarray]]


def check_wiring(wiring: str) -> str:
    if wiring not in WIRINGS:
        raise BionicError(f"adjacency_mask.wiring: {wiring!r} is not one of {', '.join(WIRINGS)}")
    return wiring


def null_generator(null_seed: int, wiring: str) -> np.random.Generator:
    """The stream of one control: independent across controls, reproducible by null seed."""
    return np.random.default_rng([int(null_seed), list(WIRINGS).index(wiring)])


def layer_uniform(masks: Masks, rng: np.random.Generator) -> Masks:
    ff, intra = masks
    return ([place_connections(slots(m.shape, False), int(m.sum()), rng) for m in ff],
            [place_connections(slots(m.shape, True), int(m.sum()), rng) for m in intra])


def uniform(masks: Masks, rng: np.random.Generator) -> Masks:
    ff, intra = masks

    def spread(blocks: list[np.ndarray], within: bool) -> list[np.ndarray]:
        if not blocks:
            return []
        free = np.concatenate([slots(m.shape, within).ravel() for m in blocks])
        flat = place_connections(free, sum(int(m.sum()) for m in blocks), rng)
        cuts = np.cumsum([m.size for m in blocks])[:-1]
        return [part.reshape(m.shape) for part, m in zip(np.split(flat, cuts), blocks,
                                                         strict=True)]

    return spread(list(ff), False), spread(list(intra), True)


def degree_preserving(masks: Masks, rng: np.random.Generator) -> Masks:
    ff, intra = masks
    return ([rewire_keeping_degrees(m, rng, intra=False) for m in ff],
            [rewire_keeping_degrees(m, rng, intra=True) for m in intra])


# The controls that need nothing but the masks themselves.
MASK_CONTROLS = {"layer_uniform": layer_uniform, "uniform": uniform,
                 "degree_preserving": degree_preserving}


@dataclass(frozen=True)
class ObservedTypeTable:
    """Type x type densities observed in a set of masks (an edge table's, for type_shuffled)."""

    probabilities: dict[tuple[str, str], float]
    name: str = "observed type densities"

    def pair_probability(self, pre: CellKey, post: CellKey) -> float | None:
        return self.probabilities.get((pre.cell_type, post.cell_type))

    def record(self) -> dict:
        return {"name": self.name}


def observed_type_table(layers: Sequence[PlanLayer], masks: Masks) -> ObservedTypeTable:
    ff, intra = masks
    blocks = [(post, pre, m, False) for pre, post, m in zip(layers[:-1], layers[1:], ff,
                                                             strict=True)]
    blocks += [(layer, layer, m, True) for layer, m in zip(layers, intra, strict=True)]
    probabilities = {}
    for post, pre, mask, within in blocks:
        free = slots(mask.shape, within)
        post_t, pre_t = np.array(post.cell_types), np.array(pre.cell_types)
        for a in sorted(set(pre.cell_types)):
            for b in sorted(set(post.cell_types)):
                rows, cols = post_t == b, pre_t == a
                possible = free[np.ix_(rows, cols)].sum()
                hits = mask[np.ix_(rows, cols)].sum()
                probabilities[(a, b)] = float(hits / possible) if possible else 0.0
    return ObservedTypeTable(probabilities)


def type_shuffled(layers: Sequence[PlanLayer], masks: Masks, table: ConnectionTable,
                  distance: bool, rng: np.random.Generator) -> Masks:
    """Permute the units' cell types within each layer (soma positions stay with the units),
    then place each block's connection count with the permuted types' probabilities."""
    shuffled = []
    for layer in layers:
        order = rng.permutation(layer.size)
        shuffled.append(replace(layer, cell_types=tuple(np.array(layer.cell_types)[order]),
                                cortical_layers=tuple(np.array(layer.cortical_layers)[order])))
    p_ff, p_intra = block_probabilities(shuffled, table, distance)
    ff, intra = masks
    return ([place_connections(p, int(m.sum()), rng) for p, m in zip(p_ff, ff, strict=True)],
            [place_connections(p, int(m.sum()), rng) for p, m in zip(p_intra, intra,
                                                                     strict=True)])


def apply_wiring(connectome: Connectome, base: Masks, wiring: str, null_seed: int, *,
                 cells: bool) -> Masks:
    """The masks of ``wiring`` (any but dense_matched) drawn from ``base``, the column masks of
    the plan (``cells``: its units are the connectome's census cells)."""
    check_wiring(wiring)
    if wiring == "dense_matched":
        raise BionicError("adjacency_mask.wiring 'dense_matched' has no masks: its layers are "
                          "dense")
    if wiring == "column":
        return [np.array(m) for m in base[0]], [np.array(m) for m in base[1]]
    rng = null_generator(null_seed, wiring)
    if wiring != "type_shuffled":
        return MASK_CONTROLS[wiring](base, rng)
    if not cells:
        raise BionicError("adjacency_mask.wiring 'type_shuffled' needs one unit per census "
                          "cell (laminar on at scale 1)")
    table = connectome.table or observed_type_table(connectome.layers, base)
    return type_shuffled(connectome.layers, base, table, connectome.distance, rng)


def matched_dense_widths(sizes: Sequence[int], in_features: int, masks: Masks,
                         intra_on: bool) -> list[int]:
    """Widths ``round(s * n_k)`` of dense hidden layers whose weights - the input projection,
    the feedforward blocks and (with the intra-layer term) the within-layer blocks - number as
    many as the masked layers' free weights: solves ``a s + b s^2 = budget`` for s."""
    ff, intra = masks
    sizes = [int(n) for n in sizes]
    budget = in_features * sizes[0] + sum(int(m.sum()) for m in ff)
    a = float(in_features * sizes[0])
    b = float(sum(x * y for x, y in zip(sizes[:-1], sizes[1:], strict=True)))
    if intra_on:
        budget += sum(int(m.sum()) for m in intra)
        a -= sum(sizes)  # n (n - 1) slots within a layer of n units
        b += sum(n * n for n in sizes)
    s = budget / a if b == 0 else (-a + math.sqrt(a * a + 4 * b * budget)) / (2 * b)
    return [max(1, round(s * n)) for n in sizes]
