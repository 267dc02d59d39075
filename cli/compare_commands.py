"""`bionic compare`: the configurations of one or more sweeps side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from bionic_cli.console import err_console, out_console, print_wide
from bionic_cli.options import TrackingOpt
from rich.table import Table

from bionic_core.contract.errors import BionicError


def compare(
    targets: list[str] = typer.Argument(
        ..., help="experiment name (its latest sweep), sweep id or prefix, sweep name or sweep "
        "run id; several are merged into one table"),
    fmt: str = typer.Option("table", "--format", help="table | markdown | csv | latex | json"),
    metric: str = typer.Option("accuracy", "--metric",
                               help="accuracy | macro_f1: the metric of Δ and of the effects"),
    plot: Path | None = typer.Option(None, "--plot", help="write the Δ bar chart (factorial: "
                                     "the interaction heatmap) to this PNG"),
    force: bool = typer.Option(False, "--force", help="compare runs on different datasets"),
    tracking_uri: str | None = TrackingOpt,
) -> None:
    """Compare a sweep's configurations: accuracy, macro-F1, Δ versus the reference.

    One row per configuration: seeds, mean ± std, Δ with a 95 % CI and p-value (paired by
    seed when the seeds match), parameters, training time; factorial effects and Shapley
    values for factorial designs.
    """
    from bionic_core.studies.comparison import compare as compare_sweeps
    from bionic_core.studies.comparison_render import FORMATS, render
    from bionic_core.studies.comparison_render import plot as draw
    from bionic_core.studies.tracking import Tracker

    if fmt not in FORMATS:
        raise BionicError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    comparison = compare_sweeps(Tracker(tracking_uri), targets, metric=metric, force=force)
    if fmt == "table":
        print_comparison(comparison)
    else:
        typer.echo(render(comparison, fmt))
    if plot is not None:
        err_console.print(f"plot written to {draw(comparison, plot)}")


def print_comparison(comparison: Any) -> None:
    """The comparison table, the factorial effects (if any) and the notes, on stdout."""
    from bionic_core.studies.comparison_render import cells, effect_cells, headers, title

    table = Table(title=title(comparison))
    for i, column in enumerate(headers(comparison)):
        table.add_column(column, justify="left" if i < 3 else "right")
    for row in cells(comparison):
        table.add_row(*row)
    print_wide(table)
    head, rows = effect_cells(comparison)
    if rows:
        effects = Table(title=f"factorial effects on {comparison.split} {comparison.metric} "
                              "(linear model on ±1 coding; effect = mean change off → on)")
        for i, column in enumerate(head):
            effects.add_column(column, justify="left" if i < 2 else "right")
        for row in rows:
            effects.add_row(*row)
        print_wide(effects)
    for note in comparison.notes:
        out_console.print(f"note: {note}")
