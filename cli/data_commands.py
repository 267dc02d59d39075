"""`bionic data ...`: inspect datasets (built-in demonstration sets and FER-2013 files)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bionic_core.data import BUILTIN_DATASETS, CLASS_NAMES, describe, load_dataset

data_app = typer.Typer(
    help="Inspect datasets: the built-in demonstration sets and FER-2013 files.",
    no_args_is_help=True,
)


@data_app.callback()
def _data() -> None:
    """Inspect datasets: the built-in demonstration sets and FER-2013 files."""
    # a callback keeps `info` a sub-command even while it is the only one


@data_app.command("info")
def info(
    name_or_path: str = typer.Argument(
        ...,
        help=f"A built-in dataset ({', '.join(BUILTIN_DATASETS)}) or a path to a FER-2013 "
        ".csv, folder (train/<emotion>/*.png), .npz file or directory of .npz files.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    seed: int = typer.Option(0, help="Seed of the validation holdout (when one is needed)."),
    val_fraction: float = typer.Option(0.1, help="Fraction of train held out as validation."),
    test: Path | None = typer.Option(
        None, help="A separate file or folder used as the test split."
    ),
) -> None:
    """Show the detected format, source, fingerprint and counts per split and class."""
    ds = load_dataset(name_or_path, seed=seed, val_fraction=val_fraction, test=test)
    d = describe(ds)
    if json_out:
        typer.echo(json.dumps(d))
        return
    console = Console()
    kind = "demonstration set (synthetic, NOT FER-2013)" if ds.is_demo else "FER-2013"
    console.print(f"[bold]{d['name']}[/bold]: {kind}")
    console.print(f"format      {d['format']}")
    console.print(f"source      {d['source']}")
    console.print(f"fingerprint {d['fingerprint']}")
    table = Table(title="images per split and class")
    table.add_column("split")
    for c in CLASS_NAMES:
        table.add_column(c[:5], justify="right")
    table.add_column("total", justify="right", style="bold")
    for split, s in d["splits"].items():
        table.add_row(split, *(str(s["per_class"][c]) for c in CLASS_NAMES), str(s["n"]))
    console.print(table)
    for split, s in d["splits"].items():
        console.print(f"{split:<5} from {s['origin']}", highlight=False)
