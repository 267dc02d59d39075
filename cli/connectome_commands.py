"""`bionic connectome ...`: inspect, plot and fetch the column wiring of the hidden layers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from bionic_cli.options import number_range
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bionic_core.config import SOURCE_KEYS
from bionic_core.connectome import Connectome, build_connectome, plot_adjacency
from bionic_core.connectome.block_statistics import (
    in_degree_spread,
    inhibition_by_type,
    type_block_densities,
)
from bionic_core.connectome.controls import WIRINGS, apply_wiring
from bionic_core.connectome.fetch import DATASTACK, cave_client, fetch_column, write_column
from bionic_core.connectome.plot import source_label
from bionic_core.contract.errors import BionicError

connectome_app = typer.Typer(
    help="Inspect, plot and fetch the V1-column connectome: layer plan, masks, inhibitory input.",
    no_args_is_help=True,
)


def _default(key: str):
    return SOURCE_KEYS[key][0]


CELLS = typer.Option(
    None, "--cells", help="Cell table (CSV/CSV.gz/Parquet/Feather); default: shipped census."
)
EDGES = typer.Option(None, "--edges", help="Edge table; default: sample masks from --table.")
TABLE = typer.Option(_default("table"), "--table",
                     help="microns (measured cell-type rates), billeh2020, potjans2014, v1dd, "
                          "or a table file.")
MATERIALIZATION = typer.Option(_default("materialization"), "--materialization",
                               help="MICrONS version of the measured rates: 1300, 1412, 1718.")
CONVERSION = typer.Option(_default("conversion"), "--conversion",
                          help="Synapses per pair -> probability: poisson or per_connection.")
DISTANCE = typer.Option(_default("distance"), "--distance/--no-distance",
                        help="Redistribute sampled connections by lateral soma distance.")
SEED = typer.Option(_default("seed"), "--seed", help="Seed for sampled masks.",
                    callback=number_range(0))
MIN_SYNAPSES = typer.Option(
    _default("min_synapses"), "--min-synapses", help="Synapses for an edge to count (edge tables).",
    callback=number_range(1),
)
GROUP = typer.Option(
    None,
    "--group",
    help="Hidden layer as NAME=TYPE[,TYPE...], repeat in feedforward order "
    "(default L4=4P L2/3=23P L5=5P-IT,5P-PT,5P-NP L6=6P-IT,6P-CT,6P-U).",
)
SHOWN_CONTROLS = [w for w in WIRINGS if w not in ("column", "dense_matched")]
WIRING = typer.Option("column", "--wiring",
                      help=f"Show a control instead: {', '.join(SHOWN_CONTROLS)}.")
NULL_SEED = typer.Option(_default("null_seed"), "--null-seed", help="Seed of a control's masks.",
                         callback=number_range(0))


def parse_grouping(groups: list[str] | None) -> dict[str, list[str]] | None:
    """`--group L4=4P --group L5=5P-IT,5P-PT` -> {"L4": ["4P"], "L5": ["5P-IT", "5P-PT"]}."""
    if not groups:
        return None
    grouping: dict[str, list[str]] = {}
    for group in groups:
        name, sep, types = group.partition("=")
        cell_types = [t.strip() for t in types.split(",") if t.strip()]
        if not sep or not name.strip() or not cell_types:
            raise BionicError(f"--group {group!r}: expected NAME=TYPE[,TYPE...]")
        grouping[name.strip()] = cell_types
    return grouping


def summary(connectome: Connectome, wiring: str = "column", null_seed: int = 0) -> dict:
    """The JSON document of `connectome info --json`."""
    prov = connectome.provenance
    masks = apply_wiring(connectome, connectome.masks, wiring, null_seed, cells=True)
    doc = {
        "layers": [
            {
                "name": layer.name,
                "size": layer.size,
                "ei": dict(sorted({e: layer.ei.count(e) for e in set(layer.ei)}.items())),
                "cell_types": layer.type_counts(),
            }
            for layer in connectome.layers
        ],
        "layer_sizes": list(connectome.layer_sizes),
        "source": source_label(connectome),
        "wiring": {"name": wiring, "about": WIRINGS[wiring]},
        "conversion": (prov["table"] or {}).get("formula"),
        "densities": prov["densities"],
        "type_blocks": type_block_densities(connectome, masks),
        "in_degree": in_degree_spread(connectome, masks),
        "inhibitory_input": prov["inhibitory_input"],
        "inhibition_by_type": inhibition_by_type(connectome),
        "provenance": prov,
    }
    if wiring != "column":
        doc["wiring"]["null_seed"] = null_seed
    return doc


def _build(cells, edges, table, seed, min_synapses, group, materialization, conversion,
           distance) -> Connectome:
    return build_connectome(cells, edges, table, seed, min_synapses, parse_grouping(group),
                            materialization, conversion, distance)


@connectome_app.command("info")
def info(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    cells: Path = CELLS,
    edges: Path = EDGES,
    table: str = TABLE,
    seed: int = SEED,
    min_synapses: int = MIN_SYNAPSES,
    group: list[str] = GROUP,
    materialization: int = MATERIALIZATION,
    conversion: str = CONVERSION,
    distance: bool = DISTANCE,
    wiring: str = WIRING,
    null_seed: int = NULL_SEED,
) -> None:
    """Source and conversion, layers, density of every cell-type block, in-degree spread,
    inhibitory input by type, provenance."""
    connectome = _build(cells, edges, table, seed, min_synapses, group, materialization,
                        conversion, distance)
    doc = summary(connectome, wiring, null_seed)
    if json_output:
        typer.echo(json.dumps(doc))
        return
    console = Console()
    console.print(_source_table(doc))
    console.print(_layers_table(connectome, doc))
    console.print(_type_blocks_table(doc))
    console.print(_in_degree_table(doc))
    console.print(_inhibition_table(doc))
    console.print(_files_table(doc["provenance"]))


def _source_table(doc: dict) -> Table:
    prov = doc["provenance"]
    source = Table(title=escape(f"Source: {doc['source']}"), show_header=False)
    source.add_column("key")
    source.add_column("value", overflow="fold")
    rows = [("cells", prov["census"] if prov["cells"].get("version") else
             f"{prov['cells']['file']} ({prov['cells']['n_cells']} cells)")]
    if prov["table"]:
        t = prov["table"]
        rows.append(("table", f"{t['name']}: {t['source']}"))
        if "materialization" in t:
            rows += [("pairs", t["pairs"]), ("conversion", f"{t['conversion']}: {t['formula']}")]
        skipped = ", ".join(f"{k} {v}" for k, v in t["inhibitory_cells_skipped"].items())
        rows.append(("inhibitory cells skipped", skipped or "none"))
    distance = prov["distance"]
    rows += [("masks", prov["masks"]),
             ("distance", distance["profile"] if distance["on"] else f"off ({distance['why']})"),
             ("inhibitory input", prov["inhibition"])]
    wiring = doc["wiring"]
    null = f" (null seed {wiring['null_seed']})" if "null_seed" in wiring else ""
    rows.append(("wiring shown", f"{wiring['name']}: {wiring['about']}{null}"))
    for key, value in rows:
        source.add_row(key, escape(str(value)))
    return source


def _layers_table(connectome: Connectome, doc: dict) -> Table:
    layers = Table(title="Hidden layers (one unit per excitatory census cell)")
    for column in ("layer", "units", "E/I", "cell types", "intra density",
                   "inhibitory input (mean/max)"):
        layers.add_column(column)
    bounds = np.concatenate([[0], np.cumsum(connectome.layer_sizes)])
    for k, layer in enumerate(doc["layers"]):
        counts = connectome.inhibitory_counts[bounds[k]:bounds[k + 1]]
        layers.add_row(
            layer["name"],
            str(layer["size"]),
            " ".join(f"{e} {n}" for e, n in layer["ei"].items()),
            ", ".join(f"{t} {n}" for t, n in layer["cell_types"].items()),
            f"{connectome.intra_densities[k]:.4f}",
            f"{counts.mean():.2f} / {counts.max():.2f}",
        )
    return layers


def _type_blocks_table(doc: dict) -> Table:
    blocks = Table(title="Cell-type blocks (masks shown; p = the table's mean probability)")
    for column in ("block", "pre -> post", "pairs", "connections", "density", "p"):
        blocks.add_column(column, justify="right" if column not in ("block", "pre -> post")
                          else "left")
    for row in doc["type_blocks"]:
        p = "" if row["probability"] is None else f"{row['probability']:.4f}"
        blocks.add_row(row["block"], f"{row['pre']} -> {row['post']}", str(row["pairs"]),
                       str(row["connections"]), f"{row['density']:.4f}", p)
    return blocks


def _in_degree_table(doc: dict) -> Table:
    spread = Table(title="In-degree per unit (random sd: independent draws at the density)")
    for column in ("block", "mean", "sd", "random sd", "min", "max"):
        spread.add_column(column, justify="left" if column == "block" else "right")
    for row in doc["in_degree"]:
        spread.add_row(row["block"], f"{row['mean']:.2f}", f"{row['sd']:.2f}",
                       f"{row['random_sd']:.2f}", str(row["min"]), str(row["max"]))
    return spread


def _inhibition_table(doc: dict) -> Table:
    stats = doc["inhibitory_input"]
    table = Table(title=f"Inhibitory input (connections from inhibitory cells): mean "
                        f"{stats['mean']}, min {stats['min']}, max {stats['max']}")
    for column in ("layer", "type", "units", "mean", "sd"):
        table.add_column(column, justify="left" if column in ("layer", "type") else "right")
    for row in doc["inhibition_by_type"]:
        table.add_row(row["layer"], row["type"], str(row["units"]), f"{row['mean']:.2f}",
                      f"{row['sd']:.2f}")
    return table


def _files_table(prov: dict) -> Table:
    files = Table(title="Files", show_header=False)
    files.add_column("key")
    files.add_column("value", overflow="fold")
    files.add_row("cells", f"{prov['cells']['file']} sha256 {prov['cells']['sha256'][:16]}…")
    if prov["edges"]:
        e = prov["edges"]
        files.add_row("edges", f"{e['file']} sha256 {e['sha256'][:16]}…")
        files.add_row(
            "edges kept",
            f"{e['edges_kept']} (dropped {e['dropped_not_in_cells']} not in cells, "
            f"{e['dropped_autapses']} autapses); min_synapses {prov['min_synapses']}",
        )
    else:
        t = prov["table"]
        files.add_row("table", f"{t['file']} sha256 {t['sha256'][:16]}…")
        files.add_row("seed", str(prov["seed"]))
    return files


@connectome_app.command("plot")
def plot(
    out: Path = typer.Argument(..., help="PNG file to write."),
    cells: Path = CELLS,
    edges: Path = EDGES,
    table: str = TABLE,
    seed: int = SEED,
    min_synapses: int = MIN_SYNAPSES,
    group: list[str] = GROUP,
    materialization: int = MATERIALIZATION,
    conversion: str = CONVERSION,
    distance: bool = DISTANCE,
    wiring: str = WIRING,
    null_seed: int = NULL_SEED,
) -> None:
    """The hidden-unit adjacency with its layer and cell-type blocks, and each block's density."""
    connectome = _build(cells, edges, table, seed, min_synapses, group, materialization,
                        conversion, distance)
    masks = apply_wiring(connectome, connectome.masks, wiring, null_seed, cells=True)
    title = None if wiring == "column" else (
        f"{wiring} control (null seed {null_seed}) of: {source_label(connectome)}")
    written = plot_adjacency(connectome, out, masks, title)
    typer.echo(str(written))


@connectome_app.command("fetch")
def fetch(
    version: int = typer.Option(1718, "--version", help="Materialization version to fetch.",
                                callback=number_range(1)),
    out: Path = typer.Option(Path("."), "--out", help="Folder for the cell and edge tables."),
    datastack: str = typer.Option(DATASTACK, "--datastack", help="CAVE datastack."),
) -> None:
    """Download the census cells and the synapses among them at one materialization (needs
    `pip install 'bionic[cave]'`, network access and a CAVE token)."""
    fetched = fetch_column(cave_client(datastack), version)
    paths = write_column(fetched, out)
    cells = fetched.provenance["cells"]
    typer.echo(f"{cells['kept']} of {cells['census']} census cells matched by nucleus id at "
               f"v{version}; {fetched.provenance['edges']} edges "
               f"({fetched.provenance['synapses']} synapses)")
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
    typer.echo(f"use: --set connectome.cells={paths['cells']} "
               f"--set connectome.edges={paths['edges']}")
