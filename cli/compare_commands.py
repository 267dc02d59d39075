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
    ci: str = typer.Option("t", "--ci", help="t | bootstrap: also a percentile bootstrap CI "
                           "of Δ over seeds, beside the t-interval"),
    mcnemar: bool = typer.Option(False, "--mcnemar", help="also test per image: exact "
                                 "McNemar on the test images one run gets right and the "
                                 "reference's run of the same seed not, pooled over seeds"),
    per_class: bool = typer.Option(False, "--per-class", help="also print per-class recall "
                                   "and precision over seeds"),
    tracking_uri: str | None = TrackingOpt,
) -> None:
    """Compare a sweep's configurations: accuracy, macro-F1, Δ versus the reference.

    One row per configuration: seeds, mean ± std, Δ with a 95 % CI and p-value (paired by
    seed when the seeds match), p Holm-adjusted over the sweep's comparisons, the minimum
    detectable effect at 80 % power (raw and after Holm), parameters, training time;
    factorial (and fractional) effects and Shapley values for factorial designs. "n/a": a CI
    or p that fewer than two seeds, or seeds without spread, cannot give.
    """
    from bionic_core.studies.comparison import compare as compare_sweeps
    from bionic_core.studies.comparison_images import add_image_tests
    from bionic_core.studies.comparison_render import FORMATS, render
    from bionic_core.studies.comparison_render import plot as draw
    from bionic_core.studies.tracking import Tracker

    if fmt not in FORMATS:
        raise BionicError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    tracker = Tracker(tracking_uri)
    comparison = compare_sweeps(tracker, targets, metric=metric, force=force, ci=ci)
    if mcnemar:
        add_image_tests(comparison, tracker)
    if fmt == "table":
        print_comparison(comparison, per_class=per_class)
    else:
        typer.echo(render(comparison, fmt))
        for warning in comparison.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {warning}")
    if plot is not None:
        err_console.print(f"plot written to {draw(comparison, plot)}")


def _table(title: str, head: list[str], rows: list[list[str]], left: int) -> Table:
    table = Table(title=title)
    for i, column in enumerate(head):
        table.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_comparison(comparison: Any, *, per_class: bool = False) -> None:
    """The comparison table, the factorial effects (if any), the per-class table (if asked),
    the warnings and the notes, on stdout."""
    from bionic_core.studies.comparison_render import (
        IMAGES_TITLE,
        cells,
        effect_cells,
        headers,
        image_cells,
        per_class_cells,
        title,
    )

    print_wide(_table(title(comparison), headers(comparison), cells(comparison), 3))
    head, rows = image_cells(comparison)
    if rows:
        print_wide(_table(IMAGES_TITLE, head, rows, 1))
    head, rows = effect_cells(comparison)
    if rows:
        print_wide(_table(f"{comparison.factorial['design']} effects on {comparison.split} "
                          f"{comparison.metric} (linear model on ±1 coding; effect = mean "
                          "change off → on)", head, rows, 2))
    if per_class:
        head, rows = per_class_cells(comparison)
        print_wide(_table(f"per class over seeds ({comparison.split}; a precision the run "
                          "never predicted is left out)", head, rows, 2))
    for warning in comparison.warnings:
        out_console.print(f"[yellow]warning:[/yellow] {warning}")
    for note in comparison.notes:
        out_console.print(f"note: {note}")
