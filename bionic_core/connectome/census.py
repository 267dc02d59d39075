"""The shipped MICrONS minnie65 v1300 V1-column census (1,331 neurons, CC BY 4.0)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

CENSUS_VERSION = "MICrONS minnie65 v1300 column, 1,331 neurons"
CENSUS_PATH = Path(__file__).resolve().parent / "census" / "column_cells_v1300.csv"
CENSUS_CITATION = (
    "MICrONS Consortium (CC BY 4.0); Schneider-Mizell et al. Nature 640:448 (2025) "
    "doi:10.1038/s41586-024-07780-8; MICrONS Consortium Nature 640:435 (2025) "
    "doi:10.1038/s41586-025-08790-w"
)

# Excitatory pyramidal types per layer, as published for this column (Schneider-Mizell et al. 2025).
PUBLISHED_COUNTS = {
    "4P": 266,
    "23P": 349,
    "5P-IT": 137,
    "5P-PT": 38,
    "5P-NP": 10,
    "6P-IT": 189,
    "6P-CT": 143,
    "6P-U": 28,
}
INHIBITORY_TYPES = ("BC", "MC", "BPC", "NGC", "Unsure I")


@lru_cache(maxsize=1)
def _read_census() -> pd.DataFrame:
    return pd.read_csv(CENSUS_PATH)


def load_census() -> pd.DataFrame:
    """Return a copy of the census table (one row per neuron, columns as in ATTRIBUTION.md)."""
    return _read_census().copy()
