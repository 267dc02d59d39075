"""Measured synapses per ordered cell pair between the column's 12 MICrONS cell types.

The counts are the official MICrONS tutorial's type x type synapse counts among axon-proofread
column cells (shipped as ``tables/column_celltype_synapse_counts_tutorial.csv``, see SOURCES.md);
a rate is ``lambda = synapses / ordered pairs``, where the pairs count the cells of each type that
the tutorial's query could include (pre- and postsynaptic cells both axon-proofread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from bionic_core.connectome.census import load_census
from bionic_core.connectome.loading import sha256_of
from bionic_core.contract.errors import BionicError

TABLES_DIR = Path(__file__).resolve().parent / "tables"
COUNTS_FILE = TABLES_DIR / "column_celltype_synapse_counts_tutorial.csv"
COUNTS_SOURCE = (
    "MICrONS tutorial 'CAVE Query: Synaptic Connectivity' (AllenInstitute/microns_tutorial, "
    "04-cave-query-synapses.ipynb), type x type synapse counts among axon-proofread column "
    "cells, transcribed from its heatmap; MICrONS Consortium, CC BY 4.0"
)
MATERIALIZATIONS = (1300, 1412, 1718)
CELL_TYPES = ("23P", "4P", "5P-IT", "5P-PT", "5P-NP", "6P-IT", "6P-CT", "6P-U",
              "BC", "MC", "BPC", "NGC")
# How many cells of a type each version's query could include (the denominators of the rates).
CELLS_RULE = {
    1300: "census cells of the type with a proofread axon (`proofreading_axon` not empty), as "
          "the v1300 tutorial required of pre- and postsynaptic cells",
    1412: "every census cell of the type: by v1412 the L5/L6 rows had grown to their v1718 "
          "values, and at v1718 1,348 of the 1,355 column cells are axon-proofread",
    1718: "every census cell of the type: at v1718 1,348 of the 1,355 column cells are "
          "axon-proofread",
}


@dataclass(frozen=True)
class SynapseRates:
    """Synapses per ordered pair, ``lambda[pre_type, post_type]``, at one materialization."""

    materialization: int
    synapses: dict[tuple[str, str], int] = field(repr=False)
    cells: dict[str, int] = field(repr=False)  # cells per type behind the pairs
    sha256: str = ""

    @property
    def cells_rule(self) -> str:
        return CELLS_RULE[self.materialization]

    def pairs(self, pre: str, post: str) -> int:
        """Ordered pairs of distinct cells (no autapses)."""
        return self.cells[pre] * self.cells[post] - (self.cells[pre] if pre == post else 0)

    def per_pair(self, pre: str, post: str) -> float | None:
        """Synapses per ordered pair, or None for a type outside the 12 measured ones."""
        if pre not in self.cells or post not in self.cells:
            return None
        pairs = self.pairs(pre, post)
        return self.synapses[(pre, post)] / pairs if pairs else 0.0


def cells_per_type(materialization: int) -> dict[str, int]:
    """The cells of each measured type that the tutorial's query at this version could include."""
    census = load_census()
    if materialization == 1300:
        census = census[census["proofreading_axon"].notna()]
    counts = census["cell_type"].value_counts()
    return {t: int(counts.get(t, 0)) for t in CELL_TYPES}


def load_synapse_rates(materialization: int) -> SynapseRates:
    """The measured type x type rates at ``materialization`` (1300, 1412 or 1718)."""
    if materialization not in MATERIALIZATIONS:
        raise BionicError(
            f"connectome.materialization: {materialization} has no measured type x type counts "
            f"(known: {', '.join(map(str, MATERIALIZATIONS))})"
        )
    return _load(int(materialization))


@lru_cache(maxsize=4)
def _load(materialization: int) -> SynapseRates:
    frame = pd.read_csv(COUNTS_FILE)
    frame = frame[frame["materialization_version"] == materialization]
    synapses = {(r.pre_type, r.post_type): int(r.n_synapses) for r in frame.itertuples()}
    return SynapseRates(materialization, synapses, cells_per_type(materialization),
                        sha256_of(COUNTS_FILE))
