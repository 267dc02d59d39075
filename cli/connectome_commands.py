"""`bionic connectome ...`: inspect and plot the column wiring that masks the hidden layers."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bionic_core.connectome import Connectome, build_connectome, plot_adjacency
from bionic_core.connectome.plot import source_label
from bionic_core.contract.errors import BionicError

connectome_app = typer.Typer(
    help="Inspect the V1-column connectome: layer plan, mask densities, inhibitory input.",
    no_args_is_help=True,
)

CELLS = typer.Option(
    None, "--cells", help="Cell table (CSV/CSV.gz/Parquet/Feather); default: shipped census."
)
EDGES = typer.Option(None, "--edges", help="Edge table; default: sample masks from --table.")
TABLE = typer.Option("billeh2020", "--table", help="billeh2020, potjans2014, or a table file.")
SEED = typer.Option(0, "--seed", help="Seed for sampled masks.")
MIN_SYNAPSES = typer.Option(
    1, "--min-synapses", help="Synapses for an edge to count (edge tables)."
)
GROUP = typer.Option(
    None,
    "--group",
    help="Hidden layer as NAME=TYPE[,TYPE...], repeat in feedforward order "
    "(default L4=4P L2/3=23P L5=5P-IT,5P-PT,5P-NP L6=6P-IT,6P-CT,6P-U).",
)


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


def summary(connectome: Connectome) -> dict:
    """The JSON document of `connectome info --json`."""
    prov = connectome.provenance
    return {
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
        "densities": prov["densities"],
        "inhibitory_input": prov["inhibitory_input"],
        "source": source_label(connectome),
        "provenance": prov,
    }


@connectome_app.command("info")
def info(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    cells: Path = CELLS,
    edges: Path = EDGES,
    table: str = TABLE,
    seed: int = SEED,
    min_synapses: int = MIN_SYNAPSES,
    group: list[str] = GROUP,
) -> None:
    """Layers with unit counts and E/I, block densities, inhibitory input, provenance."""
    connectome = build_connectome(cells, edges, table, seed, min_synapses, parse_grouping(group))
    doc = summary(connectome)
    if json_output:
        typer.echo(json.dumps(doc))
        return
    console = Console()
    console.print(_layers_table(connectome, doc))
    console.print(_feedforward_table(doc))
    stats = doc["inhibitory_input"]
    console.print(
        f"Inhibitory input per unit (incoming inhibitory connections): mean {stats['mean']}, "
        f"min {stats['min']}, max {stats['max']}"
    )
    console.print(_provenance_table(doc["provenance"]))


def _layers_table(connectome: Connectome, doc: dict) -> Table:
    layers = Table(title=f"Hidden layers: {doc['source']}")
    for column in (
        "layer",
        "units",
        "E/I",
        "cell types",
        "intra density",
        "inhibitory input (mean/max)",
    ):
        layers.add_column(column)
    for k, layer in enumerate(doc["layers"]):
        counts = connectome.inhibitory_counts[
            sum(connectome.layer_sizes[:k]) : sum(connectome.layer_sizes[: k + 1])
        ]
        layers.add_row(
            layer["name"],
            str(layer["size"]),
            " ".join(f"{e} {n}" for e, n in layer["ei"].items()),
            ", ".join(f"{t} {n}" for t, n in layer["cell_types"].items()),
            f"{connectome.intra_densities[k]:.4f}",
            f"{counts.mean():.2f} / {counts.max()}",
        )
    return layers


def _feedforward_table(doc: dict) -> Table:
    feedforward = Table(title="Feedforward blocks")
    feedforward.add_column("block")
    feedforward.add_column("density")
    for name, density in doc["densities"]["feedforward"].items():
        feedforward.add_row(name, f"{density:.4f}")
    return feedforward


def _provenance_table(prov: dict) -> Table:
    source = Table(title="Provenance", show_header=False)
    source.add_column("key")
    source.add_column("value")
    source.add_row("census", prov["census"])
    source.add_row("cells", f"{prov['cells']['file']} sha256 {prov['cells']['sha256'][:16]}…")
    if prov["edges"]:
        e = prov["edges"]
        source.add_row("edges", f"{e['file']} sha256 {e['sha256'][:16]}…")
        source.add_row(
            "edges kept",
            f"{e['edges_kept']} (dropped {e['dropped_not_in_cells']} not in cells, "
            f"{e['dropped_autapses']} autapses); min_synapses {prov['min_synapses']}",
        )
    else:
        t = prov["table"]
        source.add_row("table", f"{t['name']}: {t['source']}")
        source.add_row("seed", str(prov["seed"]))
        skipped = ", ".join(f"{k} {v}" for k, v in t["inhibitory_cells_skipped"].items()) or "none"
        source.add_row("inhibitory cells without a table class", skipped)
    return source


@connectome_app.command("plot")
def plot(
    out: Path = typer.Argument(..., help="PNG file to write."),
    cells: Path = CELLS,
    edges: Path = EDGES,
    table: str = TABLE,
    seed: int = SEED,
    min_synapses: int = MIN_SYNAPSES,
    group: list[str] = GROUP,
) -> None:
    """Heatmap of the hidden-unit adjacency, layer blocks outlined and labelled."""
    connectome = build_connectome(cells, edges, table, seed, min_synapses, parse_grouping(group))
    written = plot_adjacency(connectome, out)
    typer.echo(str(written))
