"""Connection-probability tables by cell class: Billeh 2020, Potjans & Diesmann 2014, V1DD, files.

A cell is looked up by its class in its cortical layer (:class:`CellKey` -> a table population);
the measured MICrONS type x type table (``microns``) lives in :mod:`type_table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from bionic_core.connectome.loading import read_frame, sha256_of
from bionic_core.contract.errors import BionicError

TABLES_DIR = Path(__file__).resolve().parent / "tables"

# name -> (file, citation)
PUBLISHED_TABLES = {
    "billeh2020": (
        "billeh_2020_pmax_12class.csv",
        "Billeh et al. Neuron 106:388 (2020), pmax at 75 um (E/PV/SST x L2/3-L6; no Htr3a, no L1)",
    ),
    "potjans2014": (
        "potjans_diesmann_2014_conn_prob.csv",
        "Potjans & Diesmann Cereb Cortex 24:785 (2014), 8 populations (E/I x L2/3-L6)",
    ),
    "v1dd": (
        "allen_biorealistic_v1_pmax_v1dd.csv",
        "AllenInstitute/biorealistic-v1-model base_props/pmax_matrix_v1dd.csv (BSD-3-Clause), "
        "peak probabilities from the V1DD EM volume (another mouse, not MICrONS minnie65), "
        "19 classes (L1 Inh; E/PV/SST/VIP by layer, L5 E split into ET/IT/NP)",
    ),
}
KNOWN_LAYERS = ("L1", "L2/3", "L4", "L5", "L6")
KNOWN_CLASSES = ("E", "I", "PV", "SST", "VIP", "Htr3a", "IT", "ET", "NP")
PROBABILITY_COLUMNS = ("probability", "pmax_75um", "p_connect", "pmax")
# A cell's candidate classes, first match in its layer wins. BPC (VIP-like) and NGC (Lamp5-like)
# are Htr3a in Billeh's scheme; an E/I table (Potjans) takes every inhibitory type as I.
INHIBITORY_CLASSES = {"BC": ("PV", "I"), "MC": ("SST", "I"), "BPC": ("VIP", "Htr3a", "I"),
                      "NGC": ("Htr3a", "I")}
EXCITATORY_CLASSES = {"5P-IT": ("IT", "E"), "5P-PT": ("ET", "E"), "5P-NP": ("NP", "E")}
# V1DD population names ("L5_ET") -> bionic classes; its one L1 class is Billeh's L1 Htr3a.
V1DD_CLASSES = {"Exc": "E", "Inh": "Htr3a", "PV": "PV", "SST": "SST", "VIP": "VIP",
                "ET": "ET", "IT": "IT", "NP": "NP"}


class CellKey(NamedTuple):
    """What a connection table needs to know of a cell."""

    cell_type: str
    ei: str
    layer: str


@dataclass(frozen=True)
class ProbabilityTable:
    """Connection probability for (pre layer, pre class) -> (post layer, post class)."""

    name: str
    source: str
    file: str
    sha256: str
    probabilities: dict[tuple[str, str, str, str], float] = field(repr=False)

    @property
    def classes(self) -> set[str]:
        return {k[1] for k in self.probabilities} | {k[3] for k in self.probabilities}

    @property
    def populations(self) -> set[tuple[str, str]]:
        return {k[:2] for k in self.probabilities} | {k[2:] for k in self.probabilities}

    def cell_class(self, cell: CellKey) -> str | None:
        """The table class of a cell in its layer, or None when the table has none for it."""
        if cell.ei == "E":
            candidates = EXCITATORY_CLASSES.get(cell.cell_type, ("E",))
        elif cell.ei == "I":
            candidates = INHIBITORY_CLASSES.get(cell.cell_type, ("I",))
        else:
            candidates = ()
        return next((c for c in candidates if (cell.layer, c) in self.populations), None)

    def probability(
        self, pre_layer: str, pre_class: str, post_layer: str, post_class: str
    ) -> float:
        """Probability of one pair; a pair the table lacks is an error (it names the table)."""
        key = (pre_layer, pre_class, post_layer, post_class)
        if key not in self.probabilities:
            raise BionicError(
                f"{self.file}: no connection probability for {pre_class} {pre_layer} -> "
                f"{post_class} {post_layer}"
            )
        return self.probabilities[key]

    def pair_probability(self, pre: CellKey, post: CellKey) -> float | None:
        """Probability that ``pre`` connects onto ``post``; None when either has no class."""
        pre_class, post_class = self.cell_class(pre), self.cell_class(post)
        if pre_class is None or post_class is None:
            return None
        return self.probability(pre.layer, pre_class, post.layer, post_class)

    def record(self) -> dict:
        return {"name": self.name, "source": self.source, "file": Path(self.file).name,
                "sha256": self.sha256, "kind": "class table",
                "lookup": "E cells -> E of their layer (L5 IT/ET/NP where the table splits "
                          "them); BC -> PV, MC -> SST, BPC -> VIP or Htr3a, NGC -> Htr3a, or I "
                          "in an E/I table; cells without a class in their layer are skipped"}


def _column(frame, path: Path, names: tuple[str, ...]) -> str:
    for name in names:
        if name in frame.columns:
            return name
    raise BionicError(f"{path}: missing column {' or '.join(repr(n) for n in names)}")


def _split_populations(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """V1DD's ``pre, post`` population names (``L2/3_Exc``) -> layer and class columns."""
    frame = frame.copy()
    for side in ("pre", "post"):
        parts = frame[side].astype(str).str.rsplit("_", n=1, expand=True)
        if parts.shape[1] != 2 or parts[1].isna().any():
            raise BionicError(f"{path}: column {side!r} must hold LAYER_CLASS names (L5_ET)")
        frame[f"{side}_layer"] = parts[0]
        frame[f"{side}_class"] = parts[1].map(V1DD_CLASSES).fillna(parts[1])
    return frame


def _parse_table(path: Path, name: str, source: str) -> ProbabilityTable:
    frame = read_frame(path)
    if "pre_layer" not in frame.columns and {"pre", "post"} <= set(frame.columns):
        frame = _split_populations(frame, path)
    pre_layer = _column(frame, path, ("pre_layer",))
    post_layer = _column(frame, path, ("post_layer",))
    pre_class = _column(frame, path, ("pre_class", "pre_ei"))
    post_class = _column(frame, path, ("post_class", "post_ei"))
    prob = _column(frame, path, PROBABILITY_COLUMNS)
    probabilities: dict[tuple[str, str, str, str], float] = {}
    for i, row in enumerate(frame.itertuples(index=False)):
        where = f"{path} row {i + 2}"
        rec = row._asdict()
        for col in (pre_layer, post_layer):
            if rec[col] not in KNOWN_LAYERS:
                raise BionicError(
                    f"{where}: unknown layer {rec[col]!r} in column {col!r} "
                    f"(known: {', '.join(KNOWN_LAYERS)})"
                )
        for col in (pre_class, post_class):
            if rec[col] not in KNOWN_CLASSES:
                raise BionicError(
                    f"{where}: unknown cell type / population {rec[col]!r} in column {col!r} "
                    f"(known: {', '.join(KNOWN_CLASSES)})"
                )
        try:
            p = float(rec[prob])
        except (TypeError, ValueError):
            raise BionicError(f"{where}: {prob} {rec[prob]!r} is not a number") from None
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise BionicError(f"{where}: probability {p} in column {prob!r} is outside [0, 1]")
        key = (rec[pre_layer], rec[pre_class], rec[post_layer], rec[post_class])
        if key in probabilities:
            raise BionicError(f"{where}: duplicate pair {key[1]} {key[0]} -> {key[3]} {key[2]}")
        probabilities[key] = p
    if not probabilities:
        raise BionicError(f"{path}: the table has no rows")
    return ProbabilityTable(name, source, str(path), sha256_of(path), probabilities)


def load_probability_table(table: str) -> ProbabilityTable:
    """A published class table by name (`billeh2020`, `potjans2014`, `v1dd`) or a table file.

    A file needs columns pre_layer, post_layer, pre_class|pre_ei, post_class|post_ei (or V1DD's
    pre, post population names) and one of probability|pmax_75um|p_connect|pmax; layers L1,
    L2/3, L4, L5, L6; classes E, I, PV, SST, VIP, Htr3a, IT, ET, NP.
    """
    table = str(table)
    if table in PUBLISHED_TABLES:
        return _load_cached(table, None)
    path = Path(table)
    if not path.is_file():
        raise BionicError(
            f"{table}: unknown connection-probability table (published: microns, "
            f"{', '.join(PUBLISHED_TABLES)}; or give a file path)"
        )
    stat = path.stat()
    return _load_cached(str(path.resolve()), (stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=16)
def _load_cached(table: str, stamp: tuple[int, int] | None) -> ProbabilityTable:
    # `stamp` (mtime, size) is only part of the cache key, so an edited file is read again.
    if table in PUBLISHED_TABLES:
        file, source = PUBLISHED_TABLES[table]
        return _parse_table(TABLES_DIR / file, table, source)
    path = Path(table)
    return _parse_table(path, path.name, f"user table {path}")
