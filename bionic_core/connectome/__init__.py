"""Connectome: MICrONS V1-column census, measured cell-type rates and published tables, user
cell/edge tables, layer plan, masks and their controls, provenance, CAVE download."""

from bionic_core.connectome.census import (
    CENSUS_PATH,
    CENSUS_VERSION,
    INHIBITORY_TYPES,
    PUBLISHED_COUNTS,
    load_census,
)
from bionic_core.connectome.column_layers import DEFAULT_GROUPING, PlanLayer
from bionic_core.connectome.connectome import (
    Connectome,
    SynapseCounts,
    build_connectome,
    load_connection_table,
)
from bionic_core.connectome.controls import WIRINGS, apply_wiring
from bionic_core.connectome.inhibition import normalised_input
from bionic_core.connectome.loading import EdgeTable, load_cells, load_edges, read_frame
from bionic_core.connectome.masks import block_density, masks_for_sizes
from bionic_core.connectome.plot import plot_adjacency
from bionic_core.connectome.synapse_rates import load_synapse_rates
from bionic_core.connectome.tables import (
    PUBLISHED_TABLES,
    ProbabilityTable,
    load_probability_table,
)

__all__ = [
    "CENSUS_PATH",
    "CENSUS_VERSION",
    "DEFAULT_GROUPING",
    "INHIBITORY_TYPES",
    "PUBLISHED_COUNTS",
    "PUBLISHED_TABLES",
    "WIRINGS",
    "Connectome",
    "EdgeTable",
    "PlanLayer",
    "ProbabilityTable",
    "SynapseCounts",
    "apply_wiring",
    "block_density",
    "build_connectome",
    "load_census",
    "load_cells",
    "load_connection_table",
    "load_edges",
    "load_probability_table",
    "load_synapse_rates",
    "masks_for_sizes",
    "normalised_input",
    "plot_adjacency",
    "read_frame",
]
