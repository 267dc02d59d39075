"""`bionic connectome fetch` offline: a stand-in CAVE client answers from a small fixture of
responses shaped like caveclient's (tests/fixtures/cave_column_small.json); no network."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bionic_core.connectome import build_connectome, load_census
from bionic_core.connectome.fetch import fetch_column, write_column
from bionic_core.contract.errors import BionicError

from .conftest import one_error_line

FIXTURE = Path(__file__).parent / "fixtures" / "cave_column_small.json"
RECORDED = json.loads(FIXTURE.read_text())
CELL = RECORDED["census_cells"]  # fixture name ("4P#1") -> v1300 root id
NEW = {name: 864691200000000000 + k for name, k in
       (("4P#1", 1), ("4P#3", 3), ("23P#2", 5), ("23P#3", 6), ("BC", 9), ("MC", 10),
        ("5P-IT#1", 11))} | {"4P#2": CELL["4P#2"]}  # 4P#2 kept its root id


class RecordedMaterialize:
    """``query_table`` / ``synapse_query`` answered from the fixture, filters applied."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def query_table(self, table, filter_in_dict=None, materialization_version=None, **_):
        self.calls.append((table, materialization_version))
        entry = next(e for e in RECORDED["query_table"] if e["table"] == table
                     and e["materialization_version"] == materialization_version)
        frame = pd.DataFrame(entry["rows"])
        for column, values in (filter_in_dict or {}).items():
            frame = frame[frame[column].isin(values)]
        return frame.reset_index(drop=True)

    def synapse_query(self, pre_ids=None, post_ids=None, remove_autapses=True,
                      materialization_version=None, **_):
        self.calls.append(("synapses", materialization_version))
        entry = next(e for e in RECORDED["synapse_query"]
                     if e["materialization_version"] == materialization_version)
        frame = pd.DataFrame(entry["rows"])
        inside = frame["pre_pt_root_id"].isin(pre_ids) & frame["post_pt_root_id"].isin(post_ids)
        frame = frame[inside]
        if remove_autapses:
            frame = frame[frame["pre_pt_root_id"] != frame["post_pt_root_id"]]
        return frame.reset_index(drop=True)


class RecordedClient:
    def __init__(self) -> None:
        self.materialize = RecordedMaterialize()


def small_census() -> pd.DataFrame:
    census = load_census()
    return census[census["root_id"].isin(CELL.values())].reset_index(drop=True)


def test_fetch_matches_cells_by_nucleus_id_and_aggregates_synapses(tmp_path):
    client = RecordedClient()
    fetched = fetch_column(client, 1718, small_census())
    cells = fetched.cells.set_index("root_id_v1300")
    kept = {name: root for name, root in CELL.items() if name in NEW}
    assert set(cells.index) == set(kept.values())
    for name, old in kept.items():  # root ids of v1718, found through the nucleus
        assert cells.loc[old, "root_id"] == NEW[name]
    assert cells.loc[CELL["BC"], "cell_type"] == "BC"  # census columns travel along
    record = fetched.provenance["cells"]
    assert record == {"census": 12, "kept": 8, "dropped_no_nucleus": 0,
                      "dropped_several_nuclei": 1, "dropped_no_root_at_version": 1,
                      "dropped_merged": 2, "axon_proofread": 6}
    assert pd.isna(cells.loc[CELL["4P#3"], "proofreading_axon"])
    assert cells.loc[CELL["BC"], "proofreading_axon"] == "axon_fully_extended"
    edges = fetched.edges.set_index(["pre_root_id", "post_root_id"])
    assert len(edges) == 8 and edges["n_synapses"].sum() == 12  # autapse and outsider gone
    row = edges.loc[(NEW["4P#1"], NEW["23P#2"])]
    assert row["n_synapses"] == 2 and row["sum_size"] == 500 + 501
    assert ("nucleus_detection_v0", 1300) in client.materialize.calls
    assert ("synapses", 1718) in client.materialize.calls

    paths = write_column(fetched, tmp_path / "v1718")
    provenance = json.loads(paths["provenance"].read_text())
    assert provenance["materialization"] == 1718 and "nucleus id" in provenance["matching"]
    assert len(provenance["files"]["edges"]["sha256"]) == 64
    # the written tables are what the `connectome` config reads
    c = build_connectome(paths["cells"], paths["edges"], grouping={"L4": ["4P"], "L2/3": ["23P"]})
    assert c.layer_sizes == [3, 2] and c.provenance["mode"] == "edges"
    ff = c.feedforward_masks[0]  # [post 23P#2, 23P#3] x [pre 4P#1..3] in plan order
    post = [list(c.layers[1].root_ids).index(NEW[n]) for n in ("23P#2", "23P#3")]
    pre = [list(c.layers[0].root_ids).index(NEW[n]) for n in ("4P#1", "4P#2")]
    assert ff.sum() == 2 and ff[post[0], pre[0]] == 1 and ff[post[1], pre[1]] == 1
    assert c.inhibitory_counts.sum() == 3  # BC -> 4P#1, MC -> 23P#2, BC -> 23P#3


def test_fetch_without_caveclient_says_how_to_install(monkeypatch):
    from bionic_cli.app import app

    real_import = builtins.__import__

    def no_caveclient(name, *args, **kwargs):
        if name.startswith("caveclient"):
            raise ImportError("No module named 'caveclient'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_caveclient)
    result = CliRunner().invoke(app, ["connectome", "fetch", "--version", "1718"])
    one_error_line(result, "needs caveclient", "pip install 'bionic[cave]'")


def test_fetch_without_network_or_token_is_one_line(monkeypatch, tmp_path):
    from bionic_cli import connectome_commands
    from bionic_cli.app import app

    from bionic_core.connectome.fetch import ask

    def offline(datastack):
        def connect():
            raise ConnectionError("Max retries exceeded with url: /info/api/v2/datastack\nmore")
        return ask(f"connect to datastack {datastack}", connect)

    monkeypatch.setattr(connectome_commands, "cave_client", offline)
    result = CliRunner().invoke(app, ["connectome", "fetch", "--out", str(tmp_path)])
    line = one_error_line(result, "CAVE: cannot connect to datastack minnie65_public",
                          "ConnectionError", "CAVE token")
    assert "more" not in line


def test_fetch_command_writes_the_tables(monkeypatch, tmp_path):
    from bionic_cli import connectome_commands
    from bionic_cli.app import app

    monkeypatch.setattr(connectome_commands, "cave_client", lambda datastack: RecordedClient())
    result = CliRunner().invoke(app, ["connectome", "fetch", "--version", "1718",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "8 of 1331 census cells matched by nucleus id at v1718" in result.output
    assert f"--set connectome.cells={tmp_path / 'column_cells_v1718.csv'}" in result.output
    cells = pd.read_csv(tmp_path / "column_cells_v1718.csv")
    assert {"root_id", "layer", "cell_type", "ei", "nucleus_id", "root_id_v1300"} <= set(cells)
    assert np.isin(list(NEW.values()), cells["root_id"]).all()


def test_a_failing_query_names_itself():
    class Broken(RecordedMaterialize):
        def synapse_query(self, **kwargs):
            raise PermissionError("401 Unauthorized: missing token")

    client = RecordedClient()
    client.materialize = Broken()
    with pytest.raises(BionicError, match="cannot read the synapses among 8 cells at v1718: "
                                          "PermissionError: 401 Unauthorized") as excinfo:
        fetch_column(client, 1718, small_census())
    assert "\n" not in str(excinfo.value)
