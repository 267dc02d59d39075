"""What a set of masks looks like, block by block: densities per cell-type pair and the spread
of the units' in-degrees (next to the spread independent draws at the block density would give)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.connectome import Connectome
from bionic_core.connectome.masks import block_density, slots

Masks = tuple[list[np.ndarray], list[np.ndarray]]


def _blocks(connectome: Connectome, masks: Masks
            ) -> Iterator[tuple[str, PlanLayer, PlanLayer, np.ndarray, np.ndarray | None, bool]]:
    """(name, post layer, pre layer, mask, probabilities or None, within a layer)."""
    ff, intra = masks
    layers = connectome.layers
    p_ff, p_intra = connectome.probabilities or ([None] * len(ff), [None] * len(intra))
    for k, mask in enumerate(ff):
        yield (f"{layers[k].name}->{layers[k + 1].name}", layers[k + 1], layers[k], mask,
               p_ff[k], False)
    for k, mask in enumerate(intra):
        yield f"within {layers[k].name}", layers[k], layers[k], mask, p_intra[k], True


def type_block_densities(connectome: Connectome, masks: Masks | None = None) -> list[dict]:
    """One row per block and (pre type, post type): pairs, connections, density, and the mean
    probability the column's masks were drawn from (sampled connectomes only)."""
    rows = []
    for name, post, pre, mask, probability, within in _blocks(connectome,
                                                             masks or connectome.masks):
        free = slots(mask.shape, within)
        post_types, pre_types = np.array(post.cell_types), np.array(pre.cell_types)
        for a in pre.type_counts():
            for b in post.type_counts():
                cut = np.ix_(post_types == b, pre_types == a)
                pairs = float(free[cut].sum())
                row = {"block": name, "pre": a, "post": b, "pairs": int(pairs),
                       "connections": int(mask[cut].sum()),
                       "density": round(float(mask[cut].sum() / pairs), 6) if pairs else 0.0,
                       "probability": None}
                if probability is not None and pairs:
                    row["probability"] = round(float((probability * free)[cut].sum() / pairs), 6)
                rows.append(row)
    return rows


def in_degree_spread(connectome: Connectome, masks: Masks | None = None) -> list[dict]:
    """Per block: the units' in-degree mean, sd, min and max, and ``random_sd``, the sd of
    independent draws at the block's density (an Erdos-Renyi block has sd close to it)."""
    rows = []
    for name, _, _, mask, _, within in _blocks(connectome, masks or connectome.masks):
        degree = mask.sum(axis=1)
        n_pre = mask.shape[1] - (1 if within else 0)
        density = block_density(mask, intra=within)
        rows.append({"block": name, "mean": round(float(degree.mean()), 3),
                     "sd": round(float(degree.std()), 3), "min": int(degree.min()),
                     "max": int(degree.max()),
                     "random_sd": round(float(np.sqrt(n_pre * density * (1 - density))), 3)})
    return rows


def inhibition_by_type(connectome: Connectome) -> list[dict]:
    """Per layer and cell type: mean and sd of the units' inhibitory input counts."""
    rows = []
    counts = np.split(connectome.inhibitory_counts, np.cumsum(connectome.layer_sizes)[:-1])
    for layer, values in zip(connectome.layers, counts, strict=True):
        types = np.array(layer.cell_types)
        for cell_type in layer.type_counts():
            chosen = values[types == cell_type]
            rows.append({"layer": layer.name, "type": cell_type, "units": len(chosen),
                         "mean": round(float(chosen.mean()), 3),
                         "sd": round(float(chosen.std()), 3)})
    return rows
