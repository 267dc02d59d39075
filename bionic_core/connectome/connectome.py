"""The Connectome: layer plan, masks, inhibitory input and provenance, built in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bionic_core.connectome import inhibition, masks
from bionic_core.connectome.census import CENSUS_VERSION, load_census
from bionic_core.connectome.column_layers import PlanLayer, build_layer_plan, normalise_grouping
from bionic_core.connectome.conversion import check_conversion
from bionic_core.connectome.geometry import SIGMA_SOURCE, lateral_positions
from bionic_core.connectome.loading import load_cells, load_edges, order_cells
from bionic_core.connectome.pair_probability import ConnectionTable
from bionic_core.connectome.provenance import (
    density_record,
    file_record,
    inhibition_stats,
)
from bionic_core.connectome.tables import load_probability_table
from bionic_core.connectome.type_table import MEASURED_TABLE, load_measured_table
from bionic_core.contract.errors import BionicError


@dataclass(frozen=True)
class SynapseCounts:
    """Synapse counts behind the masks (edge-table connectomes only), int32, [post, pre]."""

    feedforward: list[np.ndarray]  # k -> k+1, shape (size[k+1], size[k])
    intra: list[np.ndarray]  # within k, zero diagonal


@dataclass(frozen=True)
class Connectome:
    """A hidden-layer wiring plan. Arrays are shared by the cache and read-only: copy to modify."""

    layers: list[PlanLayer]  # hidden layers in feedforward order
    layer_sizes: list[int]  # units per layer
    feedforward_masks: list[
        np.ndarray
    ]  # float32 0/1, ff[k] shape (size[k+1], size[k]), [post, pre]
    intra_masks: list[np.ndarray]  # float32 0/1, intra[k] shape (size[k], size[k]), zero diagonal
    synapse_counts: SynapseCounts | None  # with an edge table, else None
    inhibitory_counts: np.ndarray  # float64 per unit (all layers in plan order): connections
    inhibitory_input: np.ndarray  # float32 in [0, 1]: counts / max count
    provenance: dict = field(repr=False)  # JSON-serialisable record of every source
    table: ConnectionTable | None = field(default=None, repr=False)  # sampled masks' table
    distance: bool = False  # sampled with the lateral-distance profile
    # Per-unit-pair probabilities the masks were drawn from (ff blocks, intra blocks); sampled only.
    probabilities: tuple[list[np.ndarray], list[np.ndarray]] | None = field(default=None,
                                                                            repr=False)

    @property
    def feedforward_densities(self) -> list[float]:
        return [masks.block_density(m, intra=False) for m in self.feedforward_masks]

    @property
    def intra_densities(self) -> list[float]:
        return [masks.block_density(m, intra=True) for m in self.intra_masks]

    @property
    def masks(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return list(self.feedforward_masks), list(self.intra_masks)

    def inhibitory_input_by_layer(self) -> list[np.ndarray]:
        """The normalised inhibitory input split per layer."""
        return np.split(self.inhibitory_input, np.cumsum(self.layer_sizes)[:-1])

    def adjacency(self) -> np.ndarray:
        """All plan units on both axes ([post, pre]): intra blocks on the diagonal, ff below it."""
        return masks.assemble(self.layer_sizes, self.feedforward_masks, self.intra_masks)

    def masks_for_sizes(
        self, sizes: Sequence[int], seed: int
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Masks for other layer sizes with this connectome's connection count per block."""
        return masks.masks_for_sizes(sizes, seed, self.feedforward_masks, self.intra_masks)


def build_connectome(
    cells: str | Path | None = None,
    edges: str | Path | None = None,
    table: str = MEASURED_TABLE,
    seed: int = 0,
    min_synapses: int = 1,
    grouping: Mapping[str, Sequence[str]] | None = None,
    materialization: int = 1300,
    conversion: str = "poisson",
    distance: bool = True,
) -> Connectome:
    """Build (or return the cached) connectome.

    cells: cell table file, None = the shipped MICrONS v1300 census. edges: edge table file, None =
    sample masks from ``table`` with ``seed``: ``microns`` (the column's measured type x type
    synapse rates at ``materialization``, turned into probabilities by ``conversion``), a
    published class table (billeh2020, potjans2014, v1dd) or a table file.
    min_synapses: an edge counts as a connection when it has at least this many synapses.
    grouping: hidden layer name -> excitatory cell types, in feedforward order (default L4, L2/3,
    L5, L6 pyramidal types). distance: redistribute sampled connections by the cells' lateral
    soma distance (when the cell table has soma positions).
    """
    if int(min_synapses) < 1:
        raise BionicError(f"min_synapses {min_synapses}: must be >= 1")
    check_conversion(conversion)
    return _build_cached(
        _file_key(cells),
        _file_key(edges),
        str(table),
        int(seed),
        int(min_synapses),
        normalise_grouping(grouping),
        int(materialization),
        str(conversion),
        bool(distance),
    )


def load_connection_table(table: str, materialization: int, conversion: str) -> ConnectionTable:
    """``microns`` (measured, by cell type), a published class table, or a table file."""
    if table == MEASURED_TABLE:
        return load_measured_table(materialization, conversion)
    return load_probability_table(table)


def _file_key(path: str | Path | None) -> tuple[str, int, int] | None:
    # Path plus (mtime, size): an edited file is not served from the cache.
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise BionicError(f"{path}: file not found")
    stat = p.stat()
    return (str(p.resolve()), stat.st_mtime_ns, stat.st_size)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@lru_cache(maxsize=8)
def _build_cached(cells_key, edges_key, table_name, seed, min_synapses, grouping,
                  materialization, conversion, distance) -> Connectome:
    cells_path = cells_key[0] if cells_key else None
    edges_path = edges_key[0] if edges_key else None
    cells_name = Path(cells_path).name if cells_path else "the shipped census"
    cells = load_cells(cells_path) if cells_path else order_cells(load_census())
    positions = lateral_positions(cells)
    layers = build_layer_plan(cells, grouping, cells_name, positions)
    sizes = [layer.size for layer in layers]
    provenance: dict = {
        "census": CENSUS_VERSION if cells_path is None else "user cell table",
        "cells": {**file_record(cells_path), "n_cells": len(cells)},
        "seed": seed,
        "min_synapses": min_synapses,
        "grouping": {name: list(types) for name, types in grouping},
    }
    counts = probabilities = connection_table = None
    used_distance = False
    if edges_path:
        edge_table = load_edges(edges_path, cells["root_id"].to_numpy(), cells_name)
        full = masks.unit_synapse_counts(layers, edge_table)
        ff_counts, intra_counts = masks.split_blocks(full, sizes)
        counts = SynapseCounts(
            [_read_only(c) for c in ff_counts], [_read_only(c) for c in intra_counts]
        )
        ff = [(c >= min_synapses).astype(np.float32) for c in ff_counts]
        intra = [(c >= min_synapses).astype(np.float32) for c in intra_counts]
        inhibitory = inhibition.inhibitory_counts_from_edges(
            layers, cells, edge_table, min_synapses
        )
        provenance["mode"] = "edges"
        provenance["edges"] = {
            **file_record(edges_path),
            "rows_read": edge_table.n_read,
            "dropped_not_in_cells": edge_table.n_outside,
            "dropped_autapses": edge_table.n_autapses,
            "edges_kept": len(edge_table.pre),
        }
        provenance["table"] = None
        provenance["masks"] = (f"M[i, j] = 1 where cell j makes >= {min_synapses} synapses onto "
                               "cell i (the edge table)")
        provenance["inhibition"] = (f"inhibitory cells with >= {min_synapses} synapses onto the "
                                    "unit (the edge table)")
    else:
        connection_table = load_connection_table(table_name, materialization, conversion)
        used_distance = distance and positions is not None
        probabilities = masks.block_probabilities(layers, connection_table, used_distance)
        ff, intra = masks.sample_masks(probabilities, np.random.default_rng(seed))
        inhibitory, skipped = inhibition.expected_inhibitory_counts(
            layers, cells, positions, connection_table, used_distance)
        provenance["mode"] = "sampled"
        provenance["edges"] = None
        provenance["table"] = {**connection_table.record(), "inhibitory_cells_skipped": skipped}
        provenance["masks"] = ("M[i, j] ~ Bernoulli(p_ij), p_ij = the table's probability for "
                               "the two cells' types (or classes)"
                               + (", redistributed by their lateral distance" if used_distance
                                  else "") + f"; seed {seed}")
        provenance["inhibition"] = ("expected number of inhibitory cells connected onto the "
                                    "unit: sum over the column's inhibitory cells of p(j -> i)")
    provenance["distance"] = _distance_record(distance, used_distance, positions, edges_path)
    connectome = Connectome(
        layers=layers,
        layer_sizes=sizes,
        feedforward_masks=[_read_only(m) for m in ff],
        intra_masks=[_read_only(m) for m in intra],
        synapse_counts=counts,
        inhibitory_counts=_read_only(inhibitory),
        inhibitory_input=_read_only(inhibition.normalised_input(inhibitory)),
        provenance=provenance,
        table=connection_table,
        distance=used_distance,
        probabilities=probabilities,
    )
    names = [layer.name for layer in layers]
    provenance["layer_sizes"] = sizes
    provenance["densities"] = density_record(
        names, connectome.feedforward_densities, connectome.intra_densities
    )
    provenance["inhibitory_input"] = inhibition_stats(inhibitory)
    return connectome


def _distance_record(asked: bool, used: bool, positions, edges_path) -> dict:
    if used:
        return {"on": True, "profile": SIGMA_SOURCE + "; each type block keeps its density"}
    why = ("not asked" if not asked else "an edge table gives the connections"
           if edges_path else "the cell table has no soma positions" if positions is None
           else "not used")
    return {"on": False, "why": why}
