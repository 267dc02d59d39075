"""The measured MICrONS table (``microns``): connection probability between two cells from the
column's synapses per ordered pair of their two cell types, converted in one documented way."""

from __future__ import annotations

from dataclasses import dataclass

from bionic_core.connectome.conversion import (
    CONVERSIONS,
    check_conversion,
    connection_probability,
)
from bionic_core.connectome.synapse_rates import (
    COUNTS_FILE,
    COUNTS_SOURCE,
    SynapseRates,
    load_synapse_rates,
)
from bionic_core.connectome.tables import CellKey

MEASURED_TABLE = "microns"


@dataclass(frozen=True)
class MeasuredTypeTable:
    """p(pre type -> post type) = conversion(synapses per ordered pair), one value per type pair.

    Cells of a type the tutorial did not measure (Unsure E/I, WM-P) have no probability.
    """

    rates: SynapseRates
    conversion: str
    name: str = MEASURED_TABLE

    @property
    def source(self) -> str:
        return f"{COUNTS_SOURCE}; materialization {self.rates.materialization}"

    @property
    def file(self) -> str:
        return str(COUNTS_FILE)

    @property
    def sha256(self) -> str:
        return self.rates.sha256

    def pair_probability(self, pre: CellKey, post: CellKey) -> float | None:
        lam = self.rates.per_pair(pre.cell_type, post.cell_type)
        return None if lam is None else connection_probability(lam, self.conversion)

    def record(self) -> dict:
        return {"name": self.name, "source": self.source, "file": COUNTS_FILE.name,
                "sha256": self.sha256, "kind": "measured cell-type x cell-type synapse rates",
                "materialization": self.rates.materialization,
                "pairs": "ordered pairs of distinct cells: " + self.rates.cells_rule,
                "cells_per_type": dict(self.rates.cells),
                "conversion": self.conversion,
                "formula": CONVERSIONS[self.conversion]}


def load_measured_table(materialization: int, conversion: str) -> MeasuredTypeTable:
    return MeasuredTypeTable(load_synapse_rates(materialization), check_conversion(conversion))
