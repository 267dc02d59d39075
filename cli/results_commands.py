"""`bionic results ...`: export the runs behind published results from MLflow to small files,
and rebuild the published tables from those files alone."""

from __future__ import annotations

from pathlib import Path

import typer
from bionic_cli.console import err_console
from bionic_cli.options import TrackingOpt

results_app = typer.Typer(
    help="Published results: export runs from MLflow, rebuild tables from the exports, "
    "import them into a store.",
    no_args_is_help=True,
)


@results_app.callback()
def _results() -> None:
    """Published results: export runs from MLflow, rebuild tables from the exports, import
    them into a store."""


@results_app.command("export")
def export(
    targets: list[str] = typer.Argument(
        ..., help="experiment name (its latest sweep), sweep id or prefix, sweep name or sweep "
        "run id"),
    out: Path = typer.Option(Path("results"), "--out", help="the results folder"),
    runs_only: bool = typer.Option(
        False, "--runs-only", help="write the finished runs but not the sweep's file (a sweep "
        "still running: its runs survive the machine, `bionic results import` brings them "
        "back, and no table of it is built yet)"),
    tracking_uri: str | None = TrackingOpt,
) -> None:
    """Write every finished seed run of the sweeps to OUT/runs/<run_key>.<run id>.json (one
    file per MLflow run) and each sweep to OUT/sweeps/<sweep_id>.json (sorted keys, no
    wall-clock times: byte-stable)."""
    from bionic_core.studies.results_export import export_results
    from bionic_core.studies.tracking import Tracker

    written = export_results(Tracker(tracking_uri), targets, out, runs_only=runs_only)
    err_console.print(f"{len(written)} files written under {out}")


@results_app.command("import")
def import_(
    results: Path = typer.Argument(Path("results"), help="the results folder (runs/, sweeps/)"),
    tracking_uri: str | None = TrackingOpt,
) -> None:
    """Rebuild in an MLflow store the exported runs and sweeps of RESULTS (everything their
    files hold, not the models): `bionic compare` and the MLflow UI then show them, and a sweep
    continued or run there skips or copies the run keys it finds finished instead of training
    them again. What the store holds already is not imported twice; exporting again writes
    the same files."""
    from bionic_core.studies.results_import import import_results
    from bionic_core.studies.tracking import Tracker

    tracker = Tracker(tracking_uri)
    report = import_results(tracker, results)
    err_console.print(
        f"{report.runs} runs and {report.sweeps} sweeps imported from {results} into "
        f"{tracker.uri}" + (f" ({report.copies} runs copied into the experiments of sweeps "
                           "that share them)" if report.copies else "")
        + f"; already there: {report.present_runs} runs, {report.present_sweeps} sweeps")


@results_app.command("model")
def model(
    run_id: str = typer.Argument(..., help="MLflow run id of a finished run"),
    out: Path = typer.Option(..., "--out", help="the model folder to write (e.g. "
                             "results/models/paper-s0)"),
    tracking_uri: str | None = TrackingOpt,
) -> None:
    """Write a finished run's model to a folder (state_dict.pt, config.json, the hashes of its
    training images, run.json) that `bionic evaluate FOLDER --data FILE` evaluates without
    the MLflow store."""
    from bionic_core.studies.saved_models import export_model
    from bionic_core.studies.tracking import Tracker

    written = export_model(Tracker(tracking_uri), run_id, out)
    size = sum(p.stat().st_size for p in written)
    err_console.print(f"model of run {run_id} written to {out} ({len(written)} files, "
                      f"{size / 1e6:.1f} MB)")


@results_app.command("tables")
def tables(
    results: Path = typer.Option(Path("results"), "--results", help="the exported results"),
    out: Path = typer.Option(Path("results/tables"), "--out", help="where the tables go"),
    page: Path | None = typer.Option(
        None, "--page", help="also refill the tables this page (e.g. RESULTS.md) embeds "
        "between <!-- results-table: NAME --> and <!-- /results-table --> lines"),
) -> None:
    """Rebuild, from the exported files alone (no MLflow), each sweep's comparison table
    (comparison_<sweep_id>.md, as `bionic compare --format markdown`, without training
    times), its per-class recall and precision (per_class_<sweep_id>.md), each comparison across
    sweeps that RESULTS/comparisons.toml names (comparison_<name>.md) and the headline
    table (headline.md: mean ± std over seeds per split); with
    --page, the tables embedded in that page too."""
    from bionic_core.contract.errors import BionicError
    from bionic_core.studies.results_tables import build_tables, fill_page

    if page is not None and not page.is_file():
        raise BionicError(f"--page {page}: no such file")
    written = build_tables(results, out)
    if page is not None:  # checked before anything is said, so that a failure is one line
        tables = {p.name: p.read_text(encoding="utf-8") for p in written}
        page.write_text(fill_page(page.read_text(encoding="utf-8"), tables, str(page)),
                        encoding="utf-8")
    err_console.print(f"{len(written)} tables written under {out}")
    if page is not None:
        err_console.print(f"tables embedded in {page} refilled")


@results_app.command("figures")
def figures(
    results: Path = typer.Option(Path("results"), "--results", help="the exported results"),
    out: Path = typer.Option(Path("results/figures"), "--out", help="where the figures go"),
) -> None:
    """Draw, from the exported files alone (no MLflow), each sweep's learning curves
    (curves_<sweep_id>.png: validation accuracy per epoch, mean over seeds and their range)
    and its Δ chart (delta_<sweep_id>.png, as `bionic compare --plot`)."""
    from bionic_core.studies.results_tables import build_figures

    written = build_figures(results, out)
    err_console.print(f"{len(written)} figures written under {out}")
