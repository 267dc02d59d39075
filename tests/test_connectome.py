"""Connectome layer: census, user tables, layer plan, masks, inhibitory input, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bionic_core.connectome import (
    PUBLISHED_COUNTS,
    build_connectome,
    load_census,
    load_edges,
    load_probability_table,
    masks_for_sizes,
)
from bionic_core.connectome.conversion import connection_probability
from bionic_core.connectome.synapse_rates import load_synapse_rates
from bionic_core.contract.errors import BionicError

try:
    from bionic_cli.connectome_commands import connectome_app
except ImportError:  # source checkout without `pip install -e .`
    from cli.connectome_commands import connectome_app

CENSUS_SIZES = [266, 349, 185, 360]


def shared_microns() -> Path | None:
    """The shared MICrONS data folder: $BIONIC_SHARED_DATA or the checkout's sibling `shared/`."""
    env = os.environ.get("BIONIC_SHARED_DATA")
    roots = [Path(env)] if env else []
    roots.append(Path(__file__).resolve().parents[2] / "shared")
    for root in roots:
        for candidate in (root / "microns", root / "data" / "microns"):
            if (candidate / "pinky100_l23_pyc" / "edges.csv").is_file():
                return candidate
    return None


def binomial_ok(count: int, n: int, p: float, z: float = 4.0) -> bool:
    """|count - np| within z binomial standard deviations (exact match when p is 0 or 1)."""
    return abs(count - n * p) <= z * np.sqrt(n * p * (1 - p)) + 1e-9


def one_line_error(excinfo, name: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert name in message, message


# ---------------------------------------------------------------- census and layer plan


def test_census_has_published_counts():
    census = load_census()
    assert len(census) == 1331
    counts = census["cell_type"].value_counts()
    for cell_type, n in PUBLISHED_COUNTS.items():
        assert counts[cell_type] == n
    assert counts["5P-IT"] + counts["5P-PT"] + counts["5P-NP"] == 185
    assert counts["6P-IT"] + counts["6P-CT"] + counts["6P-U"] == 360
    assert {"BC", "MC", "BPC", "NGC"} <= set(census.loc[census["ei"] == "I", "cell_type"])


def test_default_plan_is_the_census():
    c = build_connectome()
    assert c.layer_sizes == CENSUS_SIZES
    assert [layer.name for layer in c.layers] == ["L4", "L2/3", "L5", "L6"]
    assert c.layers[2].type_counts() == {"5P-IT": 137, "5P-PT": 38, "5P-NP": 10}
    assert all(set(layer.ei) == {"E"} for layer in c.layers)
    assert [m.shape for m in c.feedforward_masks] == [(349, 266), (185, 349), (360, 185)]
    assert all(not np.diag(m).any() for m in c.intra_masks)
    assert c.synapse_counts is None
    assert c.inhibitory_counts.shape == (sum(CENSUS_SIZES),)
    assert 0.0 <= c.inhibitory_input.min() and c.inhibitory_input.max() == 1.0
    json.dumps(c.provenance)  # serialisable
    assert c.provenance["census"].startswith("MICrONS minnie65 v1300")
    table = c.provenance["table"]
    assert table["name"] == "microns" and table["materialization"] == 1300
    assert table["conversion"] == "poisson" and "1 - exp(-lambda)" in table["formula"]
    assert c.provenance["distance"]["on"] and "127.0" in c.provenance["distance"]["profile"]
    assert build_connectome() is c  # cached
    assert not c.feedforward_masks[0].flags.writeable  # the cache cannot be corrupted


def _in_density(c, block: int, layer: int, cell_type: str) -> tuple[int, int]:
    """(connections, pairs) onto the units of one type in feedforward block ``block``."""
    mask = c.feedforward_masks[block]
    rows = np.array(c.layers[layer].cell_types) == cell_type
    return int(mask[rows].sum()), int(rows.sum() * mask.shape[1])


def test_default_masks_differ_by_cell_type_within_a_layer():
    """The issue's done-criterion: the paper masks have type blocks, not one density per layer."""
    c = build_connectome()
    pt, pt_pairs = _in_density(c, 1, 2, "5P-PT")  # L2/3 -> L5, onto each L5 type
    it, it_pairs = _in_density(c, 1, 2, "5P-IT")
    np_, np_pairs = _in_density(c, 1, 2, "5P-NP")
    rates = load_synapse_rates(1300)
    expected_pt = 1 - np.exp(-rates.per_pair("23P", "5P-PT"))
    expected_it = 1 - np.exp(-rates.per_pair("23P", "5P-IT"))
    assert binomial_ok(pt, pt_pairs, expected_pt) and binomial_ok(it, it_pairs, expected_it)
    assert pt / pt_pairs > 5 * it / it_pairs > 5 * np_ / np_pairs  # 0.14 vs 0.018 vs 0.002
    # two-proportion z test: the type difference is far beyond sampling noise
    pooled = (pt + it) / (pt_pairs + it_pairs)
    se = np.sqrt(pooled * (1 - pooled) * (1 / pt_pairs + 1 / it_pairs))
    z = (pt / pt_pairs - it / it_pairs) / se
    assert z > 20
    # the in-degree spread of L2/3 -> L5 is far beyond independent draws at one density
    degrees = c.feedforward_masks[1].sum(axis=1)
    density = c.feedforward_densities[1]
    assert degrees.std() > 3 * np.sqrt(349 * density * (1 - density))
    # graded inhibition comes from the measured interneuron -> type rates: it differs by type
    types, g = np.array(c.layers[2].cell_types), c.inhibitory_input_by_layer()[2]
    by_type = {t: g[types == t].mean() for t in set(types)}
    assert by_type["5P-PT"] > 1.5 * by_type["5P-IT"] > 1.5 * by_type["5P-NP"]


# ---------------------------------------------------------------- sampled masks


@pytest.mark.parametrize("table", ["billeh2020", "potjans2014"])
def test_sampled_densities_match_the_table(table):
    c = build_connectome(table=table, seed=0)
    probs = load_probability_table(table)
    ei_table = "I" in probs.classes
    layer = {"L4": "L4", "L2/3": "L2/3", "L5": "L5", "L6": "L6"}
    names = [plan.name for plan in c.layers]
    for k, mask in enumerate(c.feedforward_masks):
        p = probs.probability(layer[names[k]], "E", layer[names[k + 1]], "E")
        assert binomial_ok(int(mask.sum()), mask.size, p), (table, k)
    for k, mask in enumerate(c.intra_masks):
        p = probs.probability(layer[names[k]], "E", layer[names[k]], "E")
        n = mask.shape[0] * (mask.shape[0] - 1)
        assert binomial_ok(int(mask.sum()), n, p), (table, k)
    skipped = c.provenance["table"]["inhibitory_cells_skipped"]
    assert ("BPC" in skipped) != ei_table


def test_seed_changes_the_sample_and_is_reproducible():
    a, b = build_connectome(seed=1), build_connectome(seed=2)
    assert not np.array_equal(a.feedforward_masks[0], b.feedforward_masks[0])
    from bionic_core.connectome.connectome import _build_cached

    _build_cached.cache_clear()
    assert np.array_equal(build_connectome(seed=1).feedforward_masks[0], a.feedforward_masks[0])


@pytest.mark.parametrize("sizes", [[290, 290, 290, 290], [128, 128, 128, 128],
                                   [64, 200, 50, 80, 120, 30], [300, 100]])
def test_masks_for_sizes_keep_the_column_connection_counts(sizes):
    c = build_connectome()
    ff, intra = c.masks_for_sizes(sizes, seed=3)
    ff_n = [int(m.sum()) for m in c.feedforward_masks]
    intra_n = [int(m.sum()) for m in c.intra_masks]
    assert [m.shape for m in ff] == [(sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)]
    for k, mask in enumerate(ff):
        if k < len(ff_n):  # the column's count, capped at the block's slots
            assert mask.sum() == min(ff_n[k], mask.size)
        else:  # deeper than the column: its last block's density
            assert mask.sum() == round(c.feedforward_densities[-1] * mask.size)
    for k, mask in enumerate(intra):
        assert not np.diag(mask).any()
        slots = mask.shape[0] * (mask.shape[0] - 1)
        if k < len(intra_n):
            assert mask.sum() == min(intra_n[k], slots)
        else:
            assert mask.sum() == round(c.intra_densities[-1] * slots)
    if sizes == [290] * 4:  # the laminar-off plan: same units, same connections in total
        assert sum(sizes) == sum(CENSUS_SIZES)
        assert sum(m.sum() for m in ff) == sum(ff_n)
        assert sum(m.sum() for m in intra) == sum(intra_n)
    again = c.masks_for_sizes(sizes, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(ff, again[0], strict=True))


# ---------------------------------------------------------------- the measured type table


def test_measured_rates_are_synapses_per_proofread_pair():
    rates = load_synapse_rates(1300)
    # the v1300 tutorial counted synapses among axon-proofread cells: 265 of 266 4P, all 349 23P
    assert rates.cells["4P"] == 265 and rates.cells["23P"] == 349 and rates.cells["5P-NP"] == 2
    assert rates.per_pair("4P", "23P") == pytest.approx(2997 / (265 * 349))
    assert rates.per_pair("23P", "23P") == pytest.approx(6366 / (349 * 348))  # no autapses
    assert rates.per_pair("Unsure E", "23P") is None
    late = load_synapse_rates(1718)  # ~every column cell is axon-proofread by v1718
    assert late.cells["5P-NP"] == 10 and late.cells["6P-IT"] == 189
    assert late.per_pair("6P-IT", "6P-IT") == pytest.approx(886 / (189 * 188))


def test_conversions():
    lam = 0.3
    assert connection_probability(lam, "poisson") == pytest.approx(1 - np.exp(-lam))
    assert connection_probability(lam, "per_connection") == pytest.approx(lam / (146711 / 78928))
    assert connection_probability(5.0, "per_connection") == 1.0
    c = build_connectome(conversion="per_connection", distance=False)
    assert "1.86" in c.provenance["table"]["formula"]
    poisson = build_connectome(distance=False)
    assert sum(c.feedforward_densities) < sum(poisson.feedforward_densities)


@pytest.mark.parametrize("key, value, words", [("materialization", 1500, "1500 has no measured"),
                                               ("conversion", "linear", "'linear' is not one of")])
def test_bad_materialization_or_conversion(key, value, words):
    with pytest.raises(BionicError, match=words) as excinfo:
        build_connectome(**{key: value})
    one_line_error(excinfo, f"connectome.{key}")


def test_materialization_changes_the_rates():
    early, late = build_connectome(materialization=1300), build_connectome(materialization=1718)
    assert late.provenance["table"]["materialization"] == 1718
    assert not np.array_equal(early.feedforward_masks[2], late.feedforward_masks[2])


def test_v1dd_table_splits_layer_5_by_type():
    c = build_connectome(table="v1dd", distance=False)
    assert c.provenance["table"]["name"] == "v1dd"
    p = c.probabilities[0][1]  # L2/3 -> L5, per unit pair
    types = np.array(c.layers[2].cell_types)
    per_type = {t: float(p[types == t].mean()) for t in ("5P-IT", "5P-PT", "5P-NP")}
    assert len(set(per_type.values())) == 3  # ET, IT and NP have their own rows in V1DD
    assert "VIP" not in c.provenance["table"]["inhibitory_cells_skipped"]  # BPC -> VIP
    assert c.provenance["table"]["inhibitory_cells_skipped"].get("BPC") is None


def test_distance_keeps_block_densities_and_favours_near_pairs():
    near, flat = build_connectome(), build_connectome(distance=False)
    p_near, p_flat = near.probabilities[1][1], flat.probabilities[1][1]  # within L2/3
    off = ~np.eye(len(p_flat), dtype=bool)
    assert np.unique(p_flat[off]).size == 1  # one type: one probability without distance
    assert p_near[off].mean() == pytest.approx(p_flat[off].mean())  # the block keeps its density
    xy = near.layers[1].positions
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    mask = near.intra_masks[1].astype(bool)
    # connected pairs sit closer: by ~2 um of ~52 um here (the column is narrow next to the
    # 127 um profile), many standard errors
    assert d[off].mean() - d[mask].mean() > 4 * d[off].std() / np.sqrt(mask.sum())
    assert flat.provenance["distance"] == {"on": False, "why": "not asked"}


def test_cells_without_positions_sample_without_distance(tmp_path):
    cells, _ = write_tiny(tmp_path)
    c = build_connectome(cells, grouping=TINY)
    assert c.provenance["distance"]["why"] == "the cell table has no soma positions"
    assert c.provenance["table"]["name"] == "microns"


SHIPPED = {  # bionic_core/connectome/tables/ copies and the sha256 of their shared originals
    "column_celltype_synapse_counts_tutorial.csv":
        ("column_celltype_synapse_counts_tutorial.csv",
         "fe7926244e37fe3b844baec05820a9b0e236fcdbf01d2fa4f2fbae3038d61d6e"),
    "allen_biorealistic_v1_pmax_v1dd.csv":
        ("published_tables/allen_biorealistic_v1_pmax_v1dd.csv",
         "5550b2d256e216daff40e52df9bcf205e3741a58adbe994afa0aa64ecce80d86"),
    "billeh_2020_pmax_12class.csv":
        ("published_tables/billeh_2020_pmax_12class.csv",
         "227bd8bd56aa31686c167d6f16159e9ee5dd1384ba687ce83792be7ac792e701"),
    "potjans_diesmann_2014_conn_prob.csv":
        ("published_tables/potjans_diesmann_2014_conn_prob.csv",
         "ac2e2e68c9fd9d2a237a7e08fe3cb53b8ed8d0ae87c8b68ef4dc392cdce3633c"),
}


def test_shipped_tables_are_unchanged_copies():
    from bionic_core.connectome.loading import sha256_of
    from bionic_core.connectome.tables import TABLES_DIR

    root = shared_microns()
    for name, (original, digest) in SHIPPED.items():
        assert sha256_of(TABLES_DIR / name) == digest, name
        if root is not None:
            assert sha256_of(root / original) == digest, original
    sources = (TABLES_DIR / "SOURCES.md").read_text()
    assert all(name in sources for name in SHIPPED)
    assert "CC BY 4.0" in sources and "BSD 3-Clause" in sources


def test_masks_for_sizes_rejects_bad_sizes():
    with pytest.raises(BionicError):
        masks_for_sizes([10, 0], 0, [0.1], [0.1])


# ---------------------------------------------------------------- user tables


def write_tiny(tmp_path: Path) -> tuple[Path, Path]:
    """Two L4 units (1, 2), two L2/3 units (3, 4), inhibitory 10 (BC), 11 (MC), 12 (BPC)."""
    cells = pd.DataFrame(
        {
            "root_id": [3, 1, 10, 2, 4, 11, 12],
            "layer": ["L2/3", "L4", "L4", "L4", "L2/3", "L2/3", "L2/3"],
            "cell_type": ["23P", "4P", "BC", "4P", "23P", "MC", "BPC"],
            "ei": ["E", "E", "I", "E", "E", "I", "I"],
        }
    )
    edges = pd.DataFrame(
        [
            (10, 1, 2),
            (10, 2, 1),
            (11, 1, 1),
            (12, 1, 3),
            (11, 3, 1),
            (12, 3, 1),
            (10, 3, 1),
            (1, 3, 1),
            (2, 4, 2),
            (1, 2, 1),
            (3, 3, 1),
            (99, 1, 1),
        ],
        columns=["pre_root_id", "post_root_id", "n_synapses"],
    )
    cells.to_csv(tmp_path / "cells.csv", index=False)
    edges.to_csv(tmp_path / "edges.csv", index=False)
    return tmp_path / "cells.csv", tmp_path / "edges.csv"


TINY = {"L4": ["4P"], "L2/3": ["23P"]}


def test_tiny_connectome_inhibitory_counts_and_masks(tmp_path, capsys):
    cells, edges = write_tiny(tmp_path)
    c = build_connectome(cells, edges, grouping=TINY)
    err = capsys.readouterr().err
    assert "edges.csv" in err and "dropped 1 of 12" in err and err.count("\n") == 1
    assert c.layer_sizes == [2, 2]
    assert [list(layer.root_ids) for layer in c.layers] == [[1, 2], [3, 4]]
    assert c.inhibitory_counts.tolist() == [3, 1, 3, 0]
    assert np.allclose(c.inhibitory_input, [1, 1 / 3, 1, 0])
    assert c.feedforward_masks[0].tolist() == [[1, 0], [0, 1]]
    assert c.intra_masks[0].tolist() == [[0, 0], [1, 0]]
    assert c.intra_masks[1].tolist() == [[0, 0], [0, 0]]  # the autapse 3 -> 3 is gone
    assert c.synapse_counts.feedforward[0].tolist() == [[1, 0], [0, 2]]
    prov = c.provenance
    assert prov["edges"]["dropped_not_in_cells"] == 1 and prov["edges"]["dropped_autapses"] == 1
    assert prov["table"] is None and len(prov["edges"]["sha256"]) == 64

    strict = build_connectome(cells, edges, grouping=TINY, min_synapses=2)
    assert strict.inhibitory_counts.tolist() == [2, 0, 0, 0]
    assert strict.feedforward_masks[0].tolist() == [[0, 0], [0, 1]]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".feather"])
def test_edge_table_formats(tmp_path, suffix):
    rng = np.random.default_rng(0)
    ids = np.arange(100, 140)
    pairs = {(int(a), int(b)) for a, b in rng.choice(ids, size=(300, 2))}
    frame = pd.DataFrame(
        [(a, b, int(rng.integers(1, 5))) for a, b in sorted(pairs)],
        columns=["pre_root_id", "post_root_id", "n_synapses"],
    )
    path = tmp_path / f"edges{suffix}"
    if suffix.startswith(".csv"):
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_feather(path)
    edges = load_edges(path, ids)
    autapses = int((frame.pre_root_id == frame.post_root_id).sum())
    assert edges.n_autapses == autapses
    assert len(edges.pre) == len(frame) - autapses
    assert (
        edges.n_synapses.sum()
        == frame.n_synapses.sum() - frame.n_synapses[frame.pre_root_id == frame.post_root_id].sum()
    )


def test_pinky100_edge_list_density():
    root = shared_microns()
    if root is None:
        pytest.skip("shared MICrONS data not found (set BIONIC_SHARED_DATA to the shared folder)")
    folder = root / "pinky100_l23_pyc"
    c = build_connectome(
        folder / "cells.csv", folder / "edges.csv", grouping={"L2/3": ["L2/3 PyC"]}
    )
    assert c.layer_sizes == [363]
    assert c.provenance["edges"]["dropped_autapses"] == 2
    assert int(c.intra_masks[0].sum()) == 1750
    assert c.intra_densities[0] == pytest.approx(1750 / (363 * 362))
    assert c.feedforward_masks == []
    # The raw edge loader on the same file
    edges = load_edges(
        folder / "edges.csv", pd.read_csv(folder / "cells.csv")["root_id"].to_numpy()
    )
    assert len(edges.pre) == 1750 and edges.n_read == 1752


# ---------------------------------------------------------------- bad input


def test_edges_outside_the_cell_table_error_when_none_remain(tmp_path):
    cells, _ = write_tiny(tmp_path)
    pd.DataFrame({"pre_root_id": [7], "post_root_id": [8], "n_synapses": [1]}).to_csv(
        tmp_path / "far.csv", index=False
    )
    with pytest.raises(BionicError) as excinfo:
        build_connectome(cells, tmp_path / "far.csv", grouping=TINY)
    one_line_error(excinfo, "far.csv")


@pytest.mark.parametrize("value, word", [(-1, "negative"), (1.5, "not an integer")])
def test_bad_synapse_counts(tmp_path, value, word):
    cells, _ = write_tiny(tmp_path)
    pd.DataFrame({"pre_root_id": [1, 2], "post_root_id": [3, 4], "n_synapses": [1, value]}).to_csv(
        tmp_path / "bad_edges.csv", index=False
    )
    with pytest.raises(BionicError, match=word) as excinfo:
        build_connectome(cells, tmp_path / "bad_edges.csv", grouping=TINY)
    one_line_error(excinfo, "bad_edges.csv row 3")


def test_missing_columns(tmp_path):
    cells, edges = write_tiny(tmp_path)
    pd.read_csv(cells).drop(columns="ei").to_csv(tmp_path / "no_ei.csv", index=False)
    with pytest.raises(BionicError, match="'ei'") as excinfo:
        build_connectome(tmp_path / "no_ei.csv", grouping=TINY)
    one_line_error(excinfo, "no_ei.csv")
    pd.read_csv(edges).drop(columns="n_synapses").to_csv(tmp_path / "no_n.csv", index=False)
    with pytest.raises(BionicError, match="'n_synapses'") as excinfo:
        build_connectome(cells, tmp_path / "no_n.csv", grouping=TINY)
    one_line_error(excinfo, "no_n.csv")


def test_duplicate_root_ids(tmp_path):
    cells, _ = write_tiny(tmp_path)
    frame = pd.read_csv(cells)
    pd.concat([frame, frame.iloc[[0]]]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(BionicError, match="duplicate root_id 3") as excinfo:
        build_connectome(tmp_path / "dup.csv", grouping=TINY)
    one_line_error(excinfo, "dup.csv")


def test_empty_layer(tmp_path):
    cells, _ = write_tiny(tmp_path)
    with pytest.raises(BionicError, match="'L5' is empty") as excinfo:
        build_connectome(cells, grouping={**TINY, "L5": ["5P-IT"]})
    one_line_error(excinfo, "cells.csv")
    # inhibitory cells never become units
    with pytest.raises(BionicError, match="empty"):
        build_connectome(cells, grouping={"L4": ["BC"]})


def write_table(tmp_path: Path, name: str, **change) -> Path:
    frame = pd.read_csv(Path(load_probability_table("billeh2020").file))
    for column, value in change.items():
        frame.loc[3, column] = value
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def test_table_probability_outside_unit_interval(tmp_path):
    path = write_table(tmp_path, "high.csv", pmax_75um=1.5)
    with pytest.raises(BionicError, match="outside") as excinfo:
        build_connectome(table=str(path))
    one_line_error(excinfo, "high.csv row 5")


def test_table_unknown_cell_type(tmp_path):
    path = write_table(tmp_path, "chc.csv", pre_class="ChC")
    with pytest.raises(BionicError, match="'ChC'") as excinfo:
        build_connectome(table=str(path))
    one_line_error(excinfo, "chc.csv row 5")


def test_user_table_and_unknown_table_name(tmp_path):
    path = write_table(tmp_path, "copy.csv")
    c = build_connectome(table=str(path))
    assert c.provenance["table"]["file"] == "copy.csv"
    published = build_connectome(table="billeh2020")
    assert np.array_equal(c.feedforward_masks[0], published.feedforward_masks[0])
    with pytest.raises(BionicError) as excinfo:
        build_connectome(table="allen3000")
    one_line_error(excinfo, "allen3000")


# ---------------------------------------------------------------- CLI


def test_cli_info_json():
    result = CliRunner().invoke(connectome_app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["layer_sizes"] == CENSUS_SIZES
    assert [layer["size"] for layer in doc["layers"]] == CENSUS_SIZES
    assert doc["layers"][3]["cell_types"] == {"6P-IT": 189, "6P-CT": 143, "6P-U": 28}
    assert set(doc["densities"]) == {"feedforward", "intra"}
    assert {"mean", "min", "max"} <= set(doc["inhibitory_input"])
    assert doc["provenance"]["seed"] == 0
    assert "1 - exp(-lambda)" in doc["conversion"]
    blocks = {(r["block"], r["pre"], r["post"]): r for r in doc["type_blocks"]}
    assert len(blocks) == 1 + 3 + 9 + 1 + 1 + 9 + 9  # type pairs per ff and intra block
    pt, it = blocks[("L2/3->L5", "23P", "5P-PT")], blocks[("L2/3->L5", "23P", "5P-IT")]
    assert pt["density"] > 5 * it["density"] and pt["probability"] > 5 * it["probability"]
    spread = {r["block"]: r for r in doc["in_degree"]}
    assert spread["L2/3->L5"]["sd"] > 3 * spread["L2/3->L5"]["random_sd"]
    inhibition = {r["type"]: r["mean"] for r in doc["inhibition_by_type"]}
    assert inhibition["5P-PT"] > inhibition["5P-IT"]


def test_cli_info_table_and_plot(tmp_path):
    result = CliRunner().invoke(connectome_app, ["info", "--table", "potjans2014"])
    assert result.exit_code == 0, result.output
    assert "L2/3" in result.output and "potjans2014" in result.output
    out = tmp_path / "column.png"
    result = CliRunner().invoke(connectome_app, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    control = tmp_path / "control.png"
    result = CliRunner().invoke(connectome_app, ["plot", str(control), "--wiring",
                                                 "degree_preserving", "--null-seed", "2"])
    assert result.exit_code == 0, result.output and control.stat().st_size > 10_000


def test_cli_info_explains_the_source_and_shows_a_control():
    result = CliRunner().invoke(connectome_app, ["info"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for words in ("sampled from microns v1300 (poisson)", "conversion", "1 - exp(-lambda)",
                  "axon-proofread", "M[i, j] ~ Bernoulli", "Cell-type blocks", "In-degree",
                  "23P -> 5P-PT", "sigma E->E 127.0"):
        assert words in text, words
    result = CliRunner().invoke(connectome_app, ["info", "--json", "--wiring", "layer_uniform"])
    doc = json.loads(result.stdout)
    assert doc["wiring"] == {"name": "layer_uniform", "about": doc["wiring"]["about"],
                             "null_seed": 0}
    blocks = {(r["block"], r["post"]): r["density"] for r in doc["type_blocks"]}
    assert blocks[("L2/3->L5", "5P-PT")] < 2 * blocks[("L2/3->L5", "5P-IT")]  # no type blocks


def test_cli_group_option(tmp_path):
    cells, edges = write_tiny(tmp_path)
    args = ["info", "--json", "--cells", str(cells), "--edges", str(edges)]
    result = CliRunner().invoke(connectome_app, [*args, "--group", "L4=4P", "--group", "L2/3=23P"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layer_sizes"] == [2, 2]
