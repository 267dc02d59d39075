"""Provenance records: where every number of a connectome came from (JSON-serialisable)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bionic_core.connectome.census import CENSUS_CITATION, CENSUS_PATH, CENSUS_VERSION
from bionic_core.connectome.loading import sha256_of


def file_record(path: str | Path | None) -> dict:
    """File name and sha256 of a user file, or of the shipped census when ``path`` is None."""
    if path is None:
        return {
            "file": f"bionic_core/connectome/census/{CENSUS_PATH.name} (shipped)",
            "sha256": sha256_of(CENSUS_PATH),
            "version": CENSUS_VERSION,
            "citation": CENSUS_CITATION,
        }
    return {"file": str(Path(path).resolve()), "sha256": sha256_of(path)}


def density_record(
    names: Sequence[str], ff_densities: Sequence[float], intra_densities: Sequence[float]
) -> dict:
    """Block densities keyed 'A->B' (feedforward) and by layer name (intra)."""
    return {
        "feedforward": {
            f"{names[k]}->{names[k + 1]}": round(float(d), 6) for k, d in enumerate(ff_densities)
        },
        "intra": {names[k]: round(float(d), 6) for k, d in enumerate(intra_densities)},
    }


def inhibition_stats(counts: np.ndarray) -> dict:
    """Mean/min/max of the per-unit inhibitory input (connections from inhibitory cells)."""
    if counts.size == 0:
        return {"mean": 0.0, "min": 0.0, "max": 0.0}
    return {
        "mean": round(float(counts.mean()), 4),
        "min": round(float(counts.min()), 4),
        "max": round(float(counts.max()), 4),
    }
