"""`bionic data ...`: inspect datasets (built-in demonstration sets and FER-2013 files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.options import number_range
from rich.console import Console
from rich.table import Table

from bionic_core.data import (
    BUILTIN_DATASETS,
    CLASS_NAMES,
    describe,
    load_dataset,
    quality_report,
)

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
    val_seed: int = typer.Option(0, "--val-seed", "--seed",
                                 help="Seed of the validation holdout (config val_seed).",
                                 callback=number_range(0)),
    val_fraction: float = typer.Option(
        0.1, help="Fraction of the training images held out as validation (config "
        "val_fraction).", callback=number_range(0, 1, open_low=True, open_high=True)),
    dedupe: bool = typer.Option(
        False, "--dedupe", help="Drop training images that are pixel copies of a test image "
        "(config dedupe)."),
    test: Path | None = typer.Option(
        None, help="A separate file or folder used as the test split (config test_data)."
    ),
) -> None:
    """Show the format, source, fingerprint, the train / validation / test splits with their
    origin and counts per class, and exact duplicate and blank images."""
    ds = load_dataset(name_or_path, val_seed=val_seed, val_fraction=val_fraction, dedupe=dedupe,
                      test=test)
    d = {**describe(ds), "quality": quality_report(ds)}
    if json_out:
        typer.echo(json.dumps(d))
        return
    console = Console()
    kind = "demonstration set (synthetic, NOT FER-2013)" if ds.is_demo else "FER-2013"
    console.print(f"[bold]{d['name']}[/bold]: {kind}")
    console.print(f"format      {d['format']}")
    console.print(f"source      {d['source']}")
    console.print(f"fingerprint {d['fingerprint']}")
    console.print(_splits_table(d))
    for split, s in d["splits"].items():
        console.print(f"{split} ({s['role']}): {s['origin']}", highlight=False)
    if d["primary_test"]:
        console.print(f"final_test_* metrics of a run are those of {d['primary_test']}",
                      highlight=False)
    console.print(_duplicates_table(d["quality"]))
    console.print(_overlap_table(d["quality"]))
    blank = ", ".join(f"{s} {n}" for s, n in d["quality"]["blank"].items())
    console.print(f"blank images (every pixel equal): {blank}", highlight=False)
    if d["deduped"] is not None:
        console.print(f"dedupe: {d['deduped']} training images dropped as pixel copies of test "
                      "images", highlight=False)


def _splits_table(d: dict[str, Any]) -> Table:
    table = Table(title="images per split and class")
    table.add_column("split")
    for c in CLASS_NAMES:
        table.add_column(c[:5], justify="right")
    table.add_column("total", justify="right", style="bold")
    for split, s in d["splits"].items():
        table.add_row(split, *(str(s["per_class"][c]) for c in CLASS_NAMES), str(s["n"]))
    return table


def _duplicates_table(quality: dict[str, Any]) -> Table:
    table = Table(title="exact duplicates within a part (training = train + val)")
    for column in ("part", "images", "distinct", "extra copies", "copy sets",
                   "sets, labels differ"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for part, w in quality["within"].items():
        table.add_row(part, str(w["images"]), str(w["distinct"]), str(w["extra_copies"]),
                      str(w["groups"]), str(w["conflicting_labels"]))
    return table


def _overlap_table(quality: dict[str, Any]) -> Table:
    table = Table(title="exact duplicates across parts (images with a pixel copy in the other)")
    for column in ("A ↔ B", "of A in B", "of B in A"):
        table.add_column(column, justify="left" if column == "A ↔ B" else "right")
    for pair in quality["across"]:
        table.add_row(f"{pair['a']} ↔ {pair['b']}", str(pair["a_in_b"]), str(pair["b_in_a"]))
    return table
