"""Inhibitory input per hidden unit: incoming connections from the column's inhibitory cells."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.loading import EdgeTable
from bionic_core.connectome.pair_probability import Cells, ConnectionTable, probability_matrix
from bionic_core.connectome.tables import CellKey


def inhibitory_counts_from_edges(
    layers: Sequence[PlanLayer], cells: pd.DataFrame, edges: EdgeTable, min_synapses: int
) -> np.ndarray:
    """Per plan unit: number of inhibitory cells with >= min_synapses synapses onto it."""
    inhibitory = cells.loc[cells["ei"] == "I", "root_id"].to_numpy(np.int64)
    units = np.concatenate([layer.root_ids for layer in layers])
    keep = (edges.n_synapses >= min_synapses) & np.isin(edges.pre, inhibitory)
    targets = pd.Series(edges.post[keep]).value_counts()
    return targets.reindex(units, fill_value=0).to_numpy(np.float64)


def expected_inhibitory_counts(
    layers: Sequence[PlanLayer],
    cells: pd.DataFrame,
    positions: np.ndarray | None,
    table: ConnectionTable,
    distance: bool,
) -> tuple[np.ndarray, dict[str, int]]:
    """Per plan unit: the expected number of the column's inhibitory cells connected onto it,
    ``c_i = sum_j p(j -> i)`` over every inhibitory cell j with the table's probability for the
    two cells (by distance too, when on): no sampling noise, so units differ only by their type
    (or class) and, with distance, by where they sit. Inhibitory cells the table has no value
    for are skipped; returns the counts and the skipped cells per type."""
    inhibitory = cells[cells["ei"] == "I"]
    keys = tuple(CellKey(t, "I", layer) for t, layer in
                 zip(inhibitory["cell_type"], inhibitory["layer"], strict=True))
    where = cells.index.get_indexer(inhibitory.index)
    sources = Cells(keys, None if positions is None else positions[where])
    counts, skipped = [], np.zeros(len(keys), dtype=bool)
    for layer in layers:
        if not keys:
            counts.append(np.zeros(layer.size))
            continue
        matrix = probability_matrix(table, layer.cells(), sources, distance=distance,
                                    same_cells=False)
        skipped |= np.isnan(matrix).all(axis=0)
        counts.append(np.nan_to_num(matrix, nan=0.0).sum(axis=1))
    missing = Counter(k.cell_type for k, skip in zip(keys, skipped, strict=True) if skip)
    return np.concatenate(counts), dict(sorted(missing.items()))


def normalised_input(counts: np.ndarray) -> np.ndarray:
    """Counts scaled to [0, 1] by the largest count (all zeros when no unit has any)."""
    peak = counts.max() if counts.size else 0
    if peak == 0:
        return np.zeros(counts.shape, dtype=np.float32)
    return (counts / peak).astype(np.float32)
