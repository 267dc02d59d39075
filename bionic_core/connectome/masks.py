"""Adjacency masks between and within plan layers: from an edge table, sampled from a connection
table, or placed at given connection counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.loading import EdgeTable
from bionic_core.connectome.pair_probability import ConnectionTable, probability_matrix
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


def assemble(sizes: Sequence[int], ff: Sequence[np.ndarray], intra: Sequence[np.ndarray]
             ) -> np.ndarray:
    """All units on both axes ([post, pre]): intra blocks on the diagonal, ff just below it."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    full = np.zeros((bounds[-1], bounds[-1]), dtype=np.float32)
    for k, block in enumerate(intra):
        full[bounds[k] : bounds[k + 1], bounds[k] : bounds[k + 1]] = block
    for k, block in enumerate(ff):
        full[bounds[k + 1] : bounds[k + 2], bounds[k] : bounds[k + 1]] = block
    return full


def block_probabilities(
    layers: Sequence[PlanLayer], table: ConnectionTable, distance: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-unit-pair probabilities of every feedforward block, then every intra block."""

    def block(post: PlanLayer, pre: PlanLayer, same: bool) -> np.ndarray:
        matrix = probability_matrix(table, post.cells(), pre.cells(), distance=distance,
                                    same_cells=same)
        if np.isnan(matrix).any():
            missing = {t for t, row in zip(post.cell_types, matrix, strict=True)
                       if np.isnan(row).all()}
            missing |= {t for t, col in zip(pre.cell_types, matrix.T, strict=True)
                        if np.isnan(col).all()}
            raise BionicError(f"connection table {table.name}: no probability for cell type "
                              f"{', '.join(repr(t) for t in sorted(missing))}")
        return matrix

    ff = [block(post, pre, False) for pre, post in zip(layers[:-1], layers[1:], strict=True)]
    intra = [block(layer, layer, True) for layer in layers]
    return ff, intra


def sample_masks(
    probabilities: tuple[list[np.ndarray], list[np.ndarray]], rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bernoulli masks (float32 0/1): all feedforward blocks in order, then all intra blocks."""
    ff, intra = probabilities
    return ([(rng.random(p.shape) < p).astype(np.float32) for p in ff],
            [(rng.random(p.shape) < p).astype(np.float32) for p in intra])


def place_connections(
    weights: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """A float32 0/1 mask with exactly ``count`` ones (at most the number of positive weights),
    drawn without replacement with probability proportional to ``weights`` (Efraimidis and
    Spirakis' keys ``log(u) / w``); zero weights are never chosen."""
    flat = np.asarray(weights, dtype=np.float64).ravel()
    positive = np.flatnonzero(flat > 0)
    count = min(int(count), len(positive))
    keys = np.log(rng.random(len(positive))) / flat[positive]
    chosen = positive[np.argpartition(-keys, count - 1)[:count]] if count else positive[:0]
    mask = np.zeros(flat.shape, dtype=np.float32)
    mask[chosen] = 1.0
    return mask.reshape(np.shape(weights))


def slots(shape: tuple[int, int], intra: bool) -> np.ndarray:
    """Weights 1 on every possible connection of a block (off the diagonal within a layer)."""
    free = np.ones(shape)
    if intra:
        np.fill_diagonal(free, 0.0)
    return free


def block_density(mask: np.ndarray, intra: bool) -> float:
    """Fraction of possible connections present; intra blocks exclude the diagonal (no autapses)."""
    n_post, n_pre = mask.shape
    possible = n_post * (n_pre - 1) if intra else n_post * n_pre
    return float(np.count_nonzero(mask) / possible) if possible else 0.0


def masks_for_sizes(
    sizes: Sequence[int],
    seed: int,
    ff_masks: Sequence[np.ndarray],
    intra_masks: Sequence[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Masks for layers that are not the column's cells, with its connection counts.

    Block k (k -> k+1, and intra k) gets exactly the column's connection count of its block k,
    placed uniformly at random (capped at the block's slots): with as many layers as the column,
    the same number of connections per block and in total, without its layer sizes or types.
    Blocks beyond the column's take its last block's density; with no feedforward block at all
    (a one-layer column) feedforward blocks take its mean intra density.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise BionicError(f"layer sizes {sizes}: need at least one layer, each of size >= 1")
    if not intra_masks:
        raise BionicError("masks_for_sizes: no intra-layer blocks to copy")
    rng = np.random.default_rng(seed)
    ff_counts = [int(m.sum()) for m in ff_masks]
    intra_counts = [int(m.sum()) for m in intra_masks]
    intra_fallback = block_density(intra_masks[-1], intra=True)
    ff_fallback = (block_density(ff_masks[-1], intra=False) if ff_masks else
                   float(np.mean([block_density(m, intra=True) for m in intra_masks])))

    def count(counts: list[int], fallback: float, k: int, free: np.ndarray) -> int:
        return counts[k] if k < len(counts) else round(fallback * free.sum())

    ff = []
    for k in range(len(sizes) - 1):
        free = slots((sizes[k + 1], sizes[k]), intra=False)
        ff.append(place_connections(free, count(ff_counts, ff_fallback, k, free), rng))
    intra = []
    for k, n in enumerate(sizes):
        free = slots((n, n), intra=True)
        intra.append(place_connections(free, count(intra_counts, intra_fallback, k, free), rng))
    return ff, intra
