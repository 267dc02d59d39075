"""Inhibitory input per hidden unit (incoming connections from the column's inhibitory cells)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bionic_core.connectome.column_layers import PlanLayer
from bionic_core.connectome.loading import EdgeTable
from bionic_core.connectome.tables import ProbabilityTable


def inhibitory_counts_from_edges(
    layers: Sequence[PlanLayer], cells: pd.DataFrame, edges: EdgeTable, min_synapses: int
) -> np.ndarray:
    """Per plan unit: number of inhibitory cells with >= min_synapses synapses onto it."""
    inhibitory = cells.loc[cells["ei"] == "I", "root_id"].to_numpy(np.int64)
    units = np.concatenate([layer.root_ids for layer in layers])
    keep = (edges.n_synapses >= min_synapses) & np.isin(edges.pre, inhibitory)
    targets = pd.Series(edges.post[keep]).value_counts()
    return targets.reindex(units, fill_value=0).to_numpy(np.int64)


def sample_inhibitory_counts(
    layers: Sequence[PlanLayer],
    cells: pd.DataFrame,
    table: ProbabilityTable,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, int]]:
    """Per plan unit: sampled count of incoming inhibitory connections.

    A unit in cortical layer L receives from each inhibitory cell with the table probability of
    (that cell's class and layer -> E of L). Cells with no class or layer in the table (e.g. BPC
    and NGC in billeh2020, L1 cells) are skipped; returns the counts and the skipped cells per type.
    """
    groups: Counter[tuple[str, str]] = Counter()
    skipped: Counter[str] = Counter()
    inhibitory = cells[cells["ei"] == "I"]
    for cell_type, cortical in zip(inhibitory["cell_type"], inhibitory["layer"], strict=True):
        cls = table.cell_class(cell_type, "I")
        if cls is None or not any(k[:2] == (cortical, cls) for k in table.probabilities):
            skipped[cell_type] += 1
        else:
            groups[(cortical, cls)] += 1
    counts = []
    for layer in layers:
        post_class = "E"
        layer_counts = np.zeros(layer.size, dtype=np.int64)
        cortical_units = np.array(layer.cortical_layers)
        for post_cortical in sorted(set(layer.cortical_layers)):
            where = np.flatnonzero(cortical_units == post_cortical)
            for (pre_cortical, pre_class), n_cells in sorted(groups.items()):
                p = table.probabilities.get(
                    (pre_cortical, pre_class, post_cortical, post_class), 0.0
                )
                # Binomial(n, p) is the sum of one Bernoulli draw per inhibitory cell of the group.
                layer_counts[where] += rng.binomial(n_cells, p, size=len(where))
        counts.append(layer_counts)
    return np.concatenate(counts), dict(sorted(skipped.items()))


def normalised_input(counts: np.ndarray) -> np.ndarray:
    """Counts scaled to [0, 1] by the largest count (all zeros when no unit has any)."""
    peak = counts.max() if counts.size else 0
    if peak == 0:
        return np.zeros(counts.shape, dtype=np.float32)
    return (counts / peak).astype(np.float32)
