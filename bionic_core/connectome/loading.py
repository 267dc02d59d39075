"""User cell and edge tables (CSV, CSV.gz, Parquet, Feather): reading, validation, ordering."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bionic_core.contract.errors import BionicError

CELL_COLUMNS = ("root_id", "layer", "cell_type", "ei")
EDGE_COLUMNS = ("pre_root_id", "post_root_id", "n_synapses")
EI_VALUES = ("E", "I", "U")
# Cortical order used to sort neurons (pia to white matter); unknown layers go last.
LAYER_ORDER = ("L1", "L2/3", "L4", "L5", "L6", "WM")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a table by suffix: .csv, .csv.gz, .parquet/.pq, .feather/.arrow."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise BionicError(f"{path}: file not found")
    try:
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".feather", ".arrow")):
            return pd.read_feather(path)
    except Exception as exc:  # pandas/pyarrow raise many types; the user needs the file name
        raise BionicError(f"{path}: cannot read table: {exc}") from None
    raise BionicError(f"{path}: unknown table format (use .csv, .csv.gz, .parquet or .feather)")


def _require_columns(frame: pd.DataFrame, path: Path | str, required: tuple[str, ...]) -> None:
    for column in required:
        if column not in frame.columns:
            raise BionicError(
                f"{path}: missing column {column!r} (required: {', '.join(required)})"
            )


def _integer_ids(frame: pd.DataFrame, path: Path | str, column: str) -> np.ndarray:
    values = frame[column]
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64)
    for row, value in enumerate(values.tolist()):
        if isinstance(value, float):
            ok = value == value and value.is_integer()
        else:
            ok = str(value).strip().lstrip("-").isdigit()
        if not ok:
            raise BionicError(
                f"{path} row {row + 2}: column {column!r} must hold integer root ids, got {value!r}"
            )
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy().astype(np.int64)
    return np.array([int(str(v).strip()) for v in values.tolist()], dtype=np.int64)


def load_cells(path: str | Path) -> pd.DataFrame:
    """Read and validate a cell table; return it ordered by layer, E/I, type, depth, root id."""
    frame = read_frame(path)
    return order_cells(validate_cells(frame, path))


def validate_cells(frame: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    _require_columns(frame, path, CELL_COLUMNS)
    if frame.empty:
        raise BionicError(f"{path}: the cell table has no rows")
    frame = frame.copy()
    frame["root_id"] = _integer_ids(frame, path, "root_id")
    dup = frame["root_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)[:2] + 2
        raise BionicError(
            f"{path} rows {rows[0]} and {rows[1]}: "
            f"duplicate root_id {frame['root_id'].iloc[rows[0] - 2]}"
        )
    for column in ("layer", "cell_type", "ei"):
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise BionicError(f"{path} row {np.flatnonzero(missing)[0] + 2}: empty {column!r}")
        frame[column] = frame[column].astype(str)
    bad_ei = ~frame["ei"].isin(EI_VALUES).to_numpy()
    if bad_ei.any():
        row = np.flatnonzero(bad_ei)[0]
        raise BionicError(
            f"{path} row {row + 2}: column 'ei' must be one of {', '.join(EI_VALUES)}, "
            f"got {frame['ei'].iloc[row]!r}"
        )
    return frame


def order_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort by cortical layer, then E before I, then type, soma depth (if given), root id."""
    layer_rank = {name: i for i, name in enumerate(LAYER_ORDER)}
    keys = pd.DataFrame(
        {
            "layer": frame["layer"].map(lambda v: layer_rank.get(v, len(LAYER_ORDER))),
            "layer_name": frame["layer"],
            "ei": frame["ei"].map({"E": 0, "I": 1, "U": 2}),
            "cell_type": frame["cell_type"],
            "depth": frame["soma_depth_um"] if "soma_depth_um" in frame else 0.0,
            "root_id": frame["root_id"],
        },
        index=frame.index,
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return frame.loc[order].reset_index(drop=True)


@dataclass(frozen=True)
class EdgeTable:
    """Validated directed edges between cells of one cell table (no autapses)."""

    pre: np.ndarray  # int64 root ids
    post: np.ndarray  # int64 root ids
    n_synapses: np.ndarray  # int64, >= 0
    n_read: int  # rows in the file
    n_outside: int  # dropped: an end not in the cell table
    n_autapses: int  # dropped: pre == post


def load_edges(
    path: str | Path, root_ids: np.ndarray, cells_name: str = "the cell table"
) -> EdgeTable:
    """Read and validate an edge table, keeping edges whose two ends are in ``root_ids``.

    Duplicate (pre, post) rows are summed. Edges with an end outside the cell table are dropped with
    a one-line warning on stderr; it is an error when none remain.
    """
    frame = read_frame(path)
    _require_columns(frame, path, EDGE_COLUMNS)
    if frame.empty:
        raise BionicError(f"{path}: the edge table has no rows")
    pre = _integer_ids(frame, path, "pre_root_id")
    post = _integer_ids(frame, path, "post_root_id")
    counts = pd.to_numeric(frame["n_synapses"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(counts) | (counts != np.round(counts))
    if bad.any():
        row = np.flatnonzero(bad)[0]
        raise BionicError(
            f"{path} row {row + 2}: n_synapses {frame['n_synapses'].iloc[row]!r} is not an integer"
        )
    if (counts < 0).any():
        row = np.flatnonzero(counts < 0)[0]
        raise BionicError(f"{path} row {row + 2}: n_synapses {int(counts[row])} is negative")
    inside = np.isin(pre, root_ids) & np.isin(post, root_ids)
    n_outside = int((~inside).sum())
    if not inside.any():
        raise BionicError(
            f"{path}: none of its {len(frame)} edges has both root ids in {cells_name} "
            "(root ids must come from the same materialization)"
        )
    if n_outside:
        print(
            f"warning: {path}: dropped {n_outside} of {len(frame)} edges whose root ids are not "
            f"in {cells_name}",
            file=sys.stderr,
        )
    autapse = inside & (pre == post)
    keep = inside & ~autapse
    edges = (
        pd.DataFrame({"pre": pre[keep], "post": post[keep], "n": counts[keep].astype(np.int64)})
        .groupby(["pre", "post"], as_index=False, sort=True)["n"]
        .sum()
    )
    return EdgeTable(
        pre=edges["pre"].to_numpy(np.int64),
        post=edges["post"].to_numpy(np.int64),
        n_synapses=edges["n"].to_numpy(np.int64),
        n_read=len(frame),
        n_outside=n_outside,
        n_autapses=int(autapse.sum()),
    )
