"""Download the column from CAVE (`bionic connectome fetch`): the census cells and the synapses
among them at one MICrONS materialization, written as the cell and edge tables the ``connectome``
config reads.

Root ids change with proofreading, so cells are matched by nucleus id: the census' v1300 root
ids -> nucleus ids (``nucleus_detection_v0`` at v1300) -> root ids at the asked version. Needs
the optional ``caveclient`` (``pip install 'bionic[cave]'``), network access and a CAVE token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bionic_core.connectome.census import CENSUS_CITATION, CENSUS_PATH, load_census
from bionic_core.connectome.loading import sha256_of
from bionic_core.contract.errors import BionicError

DATASTACK = "minnie65_public"
CENSUS_MATERIALIZATION = 1300
NUCLEUS_TABLE = "nucleus_detection_v0"
PROOFREADING_TABLE = "proofreading_status_and_strategy"
INSTALL_HINT = "pip install 'bionic[cave]'"


def cave_client(datastack: str = DATASTACK) -> Any:
    """A CAVEclient for ``datastack``; one-line errors without caveclient, network or token."""
    try:
        from caveclient import CAVEclient
    except ImportError:
        raise BionicError(f"bionic connectome fetch needs caveclient: {INSTALL_HINT}") from None
    return ask(f"connect to datastack {datastack}", lambda: CAVEclient(datastack))


def ask(what: str, call: Callable[[], Any]) -> Any:
    """Run one CAVE request; any failure (no network, no or a bad token, a missing version)
    becomes one line naming the request."""
    try:
        return call()
    except BionicError:
        raise
    except Exception as exc:  # requests, urllib3 and caveclient raise many types
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise BionicError(f"CAVE: cannot {what}: {type(exc).__name__}: {first} (needs network "
                          "access and a CAVE token: caveclient's auth.setup_token)") from None


@dataclass(frozen=True)
class FetchedColumn:
    cells: pd.DataFrame  # the census rows found at the version, root ids of that version
    edges: pd.DataFrame  # pre_root_id, post_root_id, n_synapses, sum_size
    provenance: dict


def fetch_column(client: Any, materialization: int, census: pd.DataFrame | None = None
                 ) -> FetchedColumn:
    """Cells and edges of the census at ``materialization``, through ``client`` (a CAVEclient,
    or anything with the same ``materialize.query_table`` / ``synapse_query``)."""
    census = load_census() if census is None else census
    materialize = client.materialize
    old_roots = census["root_id"].astype(np.int64).tolist()
    nuclei_then = ask(f"read {NUCLEUS_TABLE} at v{CENSUS_MATERIALIZATION}", lambda: (
        materialize.query_table(NUCLEUS_TABLE, filter_in_dict={"pt_root_id": old_roots},
                                materialization_version=CENSUS_MATERIALIZATION)))
    nucleus_of, several = _one_to_one(nuclei_then, key="pt_root_id", value="id")
    cells = census.assign(nucleus_id=census["root_id"].map(nucleus_of))
    no_nucleus = int((~census["root_id"].isin(nuclei_then["pt_root_id"])).sum())
    cells = cells.dropna(subset=["nucleus_id"]).astype({"nucleus_id": np.int64})
    nucleus_ids = cells["nucleus_id"].tolist()
    nuclei_now = ask(f"read {NUCLEUS_TABLE} at v{materialization}", lambda: (
        materialize.query_table(NUCLEUS_TABLE, filter_in_dict={"id": nucleus_ids},
                                materialization_version=materialization)))
    root_now = dict(zip(nuclei_now["id"].astype(np.int64),
                        nuclei_now["pt_root_id"].astype(np.int64), strict=True))
    cells = cells.rename(columns={"root_id": f"root_id_v{CENSUS_MATERIALIZATION}"})
    cells.insert(0, "root_id", cells["nucleus_id"].map(root_now).fillna(0).astype(np.int64))
    lost = int((cells["root_id"] == 0).sum())
    cells = cells[cells["root_id"] != 0]
    merged = cells["root_id"].duplicated(keep=False)  # two nuclei in one segment: ambiguous
    cells = cells[~merged].reset_index(drop=True)
    roots = cells["root_id"].tolist()
    proofreading = ask(f"read {PROOFREADING_TABLE} at v{materialization}", lambda: (
        materialize.query_table(PROOFREADING_TABLE, filter_in_dict={"pt_root_id": roots},
                                materialization_version=materialization)))
    cells["proofreading_axon"] = cells["root_id"].map(_proofread_axons(proofreading))
    synapses = ask(f"read the synapses among {len(roots)} cells at v{materialization}", lambda: (
        materialize.synapse_query(pre_ids=roots, post_ids=roots, remove_autapses=True,
                                  materialization_version=materialization)))
    edges = _aggregate(synapses)
    provenance = {
        "datastack": DATASTACK, "materialization": int(materialization),
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "census": {"file": CENSUS_PATH.name, "sha256": sha256_of(CENSUS_PATH),
                   "materialization": CENSUS_MATERIALIZATION, "citation": CENSUS_CITATION},
        "matching": f"census root id (v{CENSUS_MATERIALIZATION}) -> nucleus id "
                    f"({NUCLEUS_TABLE} at v{CENSUS_MATERIALIZATION}) -> root id "
                    f"({NUCLEUS_TABLE} at v{materialization})",
        "tables": [NUCLEUS_TABLE, PROOFREADING_TABLE, "synapse_query (the datastack's synapse "
                                                      "table), autapses removed"],
        "cells": {"census": len(census), "kept": len(cells),
                  "dropped_no_nucleus": no_nucleus, "dropped_several_nuclei": several,
                  "dropped_no_root_at_version": lost, "dropped_merged": int(merged.sum()),
                  "axon_proofread": int(cells["proofreading_axon"].notna().sum())},
        "synapses": int(len(synapses)), "edges": int(len(edges)),
    }
    return FetchedColumn(cells, edges, provenance)


def _one_to_one(frame: pd.DataFrame, key: str, value: str) -> tuple[dict[int, int], int]:
    """key -> value where the key has exactly one value; and how many keys had several."""
    pairs = frame[[key, value]].astype(np.int64).drop_duplicates()
    counts = pairs[key].value_counts()
    single = pairs[pairs[key].map(counts) == 1]
    return dict(zip(single[key], single[value], strict=True)), int((counts > 1).sum())


def _proofread_axons(frame: pd.DataFrame) -> dict[int, str]:
    """root id -> axon proofreading strategy, for the roots whose axon status is proofread."""
    done = frame[frame["status_axon"].astype(str).str.lower().isin(("t", "true"))]
    strategy = (done["strategy_axon"].astype(str) if "strategy_axon" in done.columns
                else pd.Series("proofread", index=done.index))
    return dict(zip(done["pt_root_id"].astype(np.int64), strategy, strict=True))


def _aggregate(synapses: pd.DataFrame) -> pd.DataFrame:
    """Synapse rows -> one edge per (pre, post): n_synapses, and sum_size when sizes are given."""
    frame = pd.DataFrame({"pre_root_id": synapses["pre_pt_root_id"].astype(np.int64),
                          "post_root_id": synapses["post_pt_root_id"].astype(np.int64),
                          "size": synapses["size"] if "size" in synapses else 0})
    frame = frame[frame["pre_root_id"] != frame["post_root_id"]]
    grouped = frame.groupby(["pre_root_id", "post_root_id"], sort=True)["size"]
    return pd.DataFrame({"n_synapses": grouped.size(), "sum_size": grouped.sum()}).reset_index()


def write_column(fetched: FetchedColumn, folder: str | Path) -> dict[str, Path]:
    """Write ``column_cells_vN.csv``, ``column_edges_vN.csv.gz`` and ``column_fetch_vN.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    version = fetched.provenance["materialization"]
    paths = {"cells": folder / f"column_cells_v{version}.csv",
             "edges": folder / f"column_edges_v{version}.csv.gz",
             "provenance": folder / f"column_fetch_v{version}.json"}
    fetched.cells.to_csv(paths["cells"], index=False)
    fetched.edges.to_csv(paths["edges"], index=False)
    record = {**fetched.provenance,
              "files": {name: {"file": paths[name].name, "sha256": sha256_of(paths[name])}
                        for name in ("cells", "edges")}}
    paths["provenance"].write_text(json.dumps(record, indent=2) + "\n")
    return paths
