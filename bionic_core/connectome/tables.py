"""Published cell-class connection-probability tables (Billeh 2020, Potjans & Diesmann 2014)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bionic_core.connectome.loading import read_frame, sha256_of
from bionic_core.contract.errors import BionicError

TABLES_DIR = Path(__file__).resolve().parent / "tables"

# name -> (file, probability column, citation)
PUBLISHED_TABLES = {
    "billeh2020": (
        "billeh_2020_pmax_12class.csv",
        "Billeh et al. Neuron 106:388 (2020), pmax at 75 um (E/PV/SST x L2/3-L6; no Htr3a, no L1)",
    ),
    "potjans2014": (
        "potjans_diesmann_2014_conn_prob.csv",
        "Potjans & Diesmann Cereb Cortex 24:785 (2014), 8 populations (E/I x L2/3-L6)",
    ),
}
KNOWN_LAYERS = ("L1", "L2/3", "L4", "L5", "L6")
KNOWN_CLASSES = ("E", "I", "PV", "SST", "Htr3a")
PROBABILITY_COLUMNS = ("probability", "pmax_75um", "p_connect")
# Inhibitory types -> class of a PV/SST/Htr3a table; BPC (VIP-like), NGC (Lamp5-like) are Htr3a.
INHIBITORY_CLASS = {"BC": "PV", "MC": "SST", "BPC": "Htr3a", "NGC": "Htr3a"}


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

    def cell_class(self, cell_type: str, ei: str) -> str | None:
        """The table class of a cell, or None when the table has no class for it."""
        if ei == "E":
            cls = "E"
        elif ei == "I":
            cls = "I" if "I" in self.classes else INHIBITORY_CLASS.get(cell_type)
        else:
            cls = None
        return cls if cls in self.classes else None

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


def _column(frame, path: Path, names: tuple[str, ...]) -> str:
    for name in names:
        if name in frame.columns:
            return name
    raise BionicError(f"{path}: missing column {' or '.join(repr(n) for n in names)}")


def _parse_table(path: Path, name: str, source: str) -> ProbabilityTable:
    frame = read_frame(path)
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
    """A published table by name (`billeh2020`, `potjans2014`) or a CSV/Parquet/Feather file.

    A file needs columns pre_layer, post_layer, pre_class|pre_ei, post_class|post_ei and one of
    probability|pmax_75um|p_connect; layers L1, L2/3, L4, L5, L6; classes E, I, PV, SST, Htr3a.
    """
    table = str(table)
    if table in PUBLISHED_TABLES:
        return _load_cached(table, None)
    path = Path(table)
    if not path.is_file():
        raise BionicError(
            f"{table}: unknown connection-probability table (published: "
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
