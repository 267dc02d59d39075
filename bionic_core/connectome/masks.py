"""Adjacency masks between and within plan layers: from an edge table, or sampled from a table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.loading import EdgeTable
from bionic_core.connectome.tables import ProbabilityTable
from bionic_core.contract.errors import BionicError


def unit_synapse_counts(layers: Sequence[PlanLayer], edges: EdgeTable) -> np.ndarray:
    """Synapse counts among all plan units, shape (N, N), [post, pre], units in plan order."""
    root_ids = np.concatenate([layer.root_ids for layer in layers])
    order = np.argsort(root_ids)
    sorted_ids = root_ids[order]
    matrix = np.zeros((len(root_ids), len(root_ids)), dtype=np.int32)

    def position(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        where = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
        found = sorted_ids[where] == ids
        return order[where], found

    post, post_found = position(edges.post)
    pre, pre_found = position(edges.pre)
    both = post_found & pre_found
    matrix[post[both], pre[both]] = edges.n_synapses[both]
    return matrix


def split_blocks(
    matrix: np.ndarray, sizes: Sequence[int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cut an (N, N) unit matrix into feedforward blocks k -> k+1 and intra blocks k."""
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    ff = [
        matrix[bounds[k + 1] : bounds[k + 2], bounds[k] : bounds[k + 1]].copy()
        for k in range(len(sizes) - 1)
    ]
    intra = [
        matrix[bounds[k] : bounds[k + 1], bounds[k] : bounds[k + 1]].copy()
        for k in range(len(sizes))
    ]
    for block in intra:
        np.fill_diagonal(block, 0)
    return ff, intra


def _probability_matrix(table: ProbabilityTable, post: PlanLayer, pre: PlanLayer) -> np.ndarray:
    """Per-unit-pair probability (post x pre) from each unit's cortical layer and table class."""

    def keys(layer: PlanLayer) -> list[tuple[str, str]]:
        out = []
        for cell_type, ei, cortical in zip(
            layer.cell_types, layer.ei, layer.cortical_layers, strict=True
        ):
            cls = table.cell_class(cell_type, ei)
            if cls is None:
                raise BionicError(f"{table.file}: no class for cell type {cell_type!r} ({ei})")
            out.append((cortical, cls))
        return out

    post_keys, pre_keys = keys(post), keys(pre)
    post_unique = sorted(set(post_keys))
    pre_unique = sorted(set(pre_keys))
    small = np.array(
        [[table.probability(*b, *a) for b in pre_unique] for a in post_unique], dtype=np.float64
    )
    post_index = np.array([post_unique.index(k) for k in post_keys])
    pre_index = np.array([pre_unique.index(k) for k in pre_keys])
    return small[np.ix_(post_index, pre_index)]


def sample_masks(
    layers: Sequence[PlanLayer], table: ProbabilityTable, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bernoulli masks from the table: all feedforward blocks in order, then all intra blocks."""
    ff = [
        (rng.random((post.size, pre.size)) < _probability_matrix(table, post, pre)).astype(
            np.float32
        )
        for pre, post in zip(layers[:-1], layers[1:], strict=True)
    ]
    intra = []
    for layer in layers:
        block = rng.random((layer.size, layer.size)) < _probability_matrix(table, layer, layer)
        block = block.astype(np.float32)
        np.fill_diagonal(block, 0.0)
        intra.append(block)
    return ff, intra


def block_density(mask: np.ndarray, intra: bool) -> float:
    """Fraction of possible connections present; intra blocks exclude the diagonal (no autapses)."""
    n_post, n_pre = mask.shape
    possible = n_post * (n_pre - 1) if intra else n_post * n_pre
    return float(np.count_nonzero(mask) / possible) if possible else 0.0


def masks_for_sizes(
    sizes: Sequence[int],
    seed: int,
    ff_densities: Sequence[float],
    intra_densities: Sequence[float],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bernoulli masks for arbitrary layer sizes with the given per-block densities.

    Block k (k -> k+1, and intra k) takes density index k; a plan with more blocks than densities
    reuses the last density. With no feedforward densities at all (a one-layer plan) feedforward
    blocks take the mean intra density.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise BionicError(f"layer sizes {sizes}: need at least one layer, each of size >= 1")
    if not intra_densities:
        raise BionicError("masks_for_sizes: no intra-layer densities to copy")
    ff_densities = list(ff_densities) or [float(np.mean(intra_densities))]
    rng = np.random.default_rng(seed)
    ff = []
    for k in range(len(sizes) - 1):
        p = ff_densities[min(k, len(ff_densities) - 1)]
        ff.append((rng.random((sizes[k + 1], sizes[k])) < p).astype(np.float32))
    intra = []
    for k, n in enumerate(sizes):
        p = intra_densities[min(k, len(intra_densities) - 1)]
        block = (rng.random((n, n)) < p).astype(np.float32)
        np.fill_diagonal(block, 0.0)
        intra.append(block)
    return ff, intra
