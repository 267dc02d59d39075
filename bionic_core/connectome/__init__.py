"""Connectome: MICrONS V1-column census, user cell/edge tables, layer plan, masks, provenance."""

from bionic_core.connectome.census import (
    CENSUS_PATH,
    CENSUS_VERSION,
    INHIBITORY_TYPES,
    PUBLISHED_COUNTS,
    load_census,
)
from bionic_core.connectome.column_layers import DEFAULT_GROUPING, PlanLayer
from bionic_core.connectome.connectome import Connectome, SynapseCounts, build_connectome
from bionic_core.connectome.inhibition import normalised_input
from bionic_core.connectome.loading import EdgeTable, load_cells, load_edges, read_frame
from bionic_core.connectome.masks import block_density, masks_for_sizes
from bionic_core.connectome.plot import plot_adjacency
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
    "Connectome",
    "EdgeTable",
    "PlanLayer",
    "ProbabilityTable",
    "SynapseCounts",
    "block_density",
    "build_connectome",
    "load_census",
    "load_cells",
    "load_edges",
    "load_probability_table",
    "masks_for_sizes",
    "normalised_input",
    "plot_adjacency",
    "read_frame",
]
