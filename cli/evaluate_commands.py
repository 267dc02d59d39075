"""`bionic evaluate`: re-evaluate a logged run's model on a dataset."""

from __future__ import annotations

import json
from typing import Any

import typer
from bionic_cli.console import out_console
from bionic_cli.options import DataOpt, DeviceOpt, JsonOpt, TrackingOpt, dataset_label
from rich.table import Table

from bionic_core.contract.errors import BionicError
from bionic_core.host import load_catalogue
from bionic_core.training.inference_views import MAX_SHIFT, InferenceViews


def evaluate(
    runs: list[str] = typer.Argument(
        ..., metavar="RUN...", help="MLflow run id of a finished run, or a model folder written "
        "by `bionic results model` (e.g. results/models/paper-s0); two or more are evaluated "
        "as one ensemble (their mean class probabilities; printed, not logged)"),
    data: str | None = DataOpt,
    split: str = typer.Option(
        "auto", "--split", help="auto (each test split of the data, evaluated one by one; a "
        "file without one is evaluated whole) | train | val (rebuilt with the run's own "
        "holdout settings) | test_public | test_private | test | all (every image)"),
    allow_train_overlap: bool = typer.Option(
        False, "--allow-train-overlap", help="evaluate even images that are pixel copies of "
        "the run's training images (refused otherwise)"),
    drop_train_overlap: bool = typer.Option(
        False, "--drop-train-overlap", help="evaluate each split without its pixel copies of "
        "the run's training images (FER-2013's test splits repeat Training images)"),
    mirror: bool = typer.Option(
        False, "--mirror", help="test-time augmentation: score each image and its left-right "
        "mirror and average the two class probabilities (recorded under its own name)"),
    shift: int = typer.Option(
        0, "--shift", metavar="PIXELS", help="test-time augmentation: also score each image "
        f"moved PIXELS (1 to {MAX_SHIFT}) right, left, down and up, edges repeated, and average "
        "the class probabilities of all views (with --mirror, each view's mirror too: 10)"),
    device: str | None = DeviceOpt,
    tracking_uri: str | None = TrackingOpt,
    no_log: bool = typer.Option(False, "--no-log", help="do not record the evaluation"),
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate a logged run's model (or a model folder's) on the split(s) of a dataset you
    name and record each result with the run (a folder's results are printed only). Data
    holding the run's training images is refused (exit 2) unless --allow-train-overlap.

    Given two or more models, evaluate them as an ensemble: the mean of their class
    probabilities, with each member's own score on the same images and the parameters of all
    members together; images any member trained on count as training images."""
    from pathlib import Path

    from bionic_core.studies.evaluation import evaluate_logged_run, evaluate_model_folder
    from bionic_core.studies.saved_models import is_model_folder
    from bionic_core.studies.tracking import Tracker

    if data is None:
        raise BionicError("--data: required (a built-in dataset name, FER-2013 CSV, folder "
                          "or .npz)")
    if allow_train_overlap and drop_train_overlap:
        raise BionicError("--allow-train-overlap and --drop-train-overlap: choose one")
    try:
        views = InferenceViews(mirror=mirror, shift=shift)
    except ValueError as exc:  # the range is InferenceViews' own
        raise BionicError(f"--shift {exc}") from None
    if len(runs) > 1:
        _evaluate_ensemble(runs, data, split=split, device=device or "auto",
                           tracking_uri=tracking_uri, allow=allow_train_overlap,
                           drop=drop_train_overlap, views=views, as_json=as_json)
        return
    [run_id] = runs
    if is_model_folder(run_id):
        no_log = True  # a folder has no MLflow run to record the evaluation with
        reports = evaluate_model_folder(Path(run_id), data, catalogue=load_catalogue(),
                                        split=split, device=device or "auto",
                                        allow_train_overlap=allow_train_overlap,
                                        drop_train_overlap=drop_train_overlap,
                                        views=views)
    else:
        reports = evaluate_logged_run(Tracker(tracking_uri), run_id, data,
                                      catalogue=load_catalogue(), split=split,
                                      device=device or "auto", log=not no_log,
                                      allow_train_overlap=allow_train_overlap,
                                      drop_train_overlap=drop_train_overlap,
                                      views=views)
    if as_json:
        typer.echo(json.dumps(reports, default=str))
        return
    for report in reports:
        out_console.print(_summary_table(run_id, report, no_log))
        out_console.print(_per_class_table(report))
        out_console.print(_confusion_table(report))


def _evaluate_ensemble(runs: list[str], data: str, *, split: str, device: str,
                       tracking_uri: str | None, allow: bool, drop: bool, views: InferenceViews,
                       as_json: bool) -> None:
    from bionic_core.studies.ensemble import evaluate_ensemble
    from bionic_core.studies.saved_models import is_model_folder
    from bionic_core.studies.tracking import Tracker

    needs_store = not all(is_model_folder(r) for r in runs)
    reports = evaluate_ensemble(runs, data, tracker=Tracker(tracking_uri) if needs_store else None,
                                catalogue=load_catalogue(), split=split, device=device,
                                allow_train_overlap=allow, drop_train_overlap=drop,
                                views=views)
    if as_json:
        typer.echo(json.dumps(reports, default=str))
        return
    for report in reports:
        out_console.print(_ensemble_table(report))
        out_console.print(_per_class_table(report))
        out_console.print(_confusion_table(report))


def _metrics_table(title: str, report: dict[str, Any], whose: str) -> Table:
    """The summary every evaluation starts with: the split, its overlap with training images
    (``whose``: whose images they were, e.g. ``"a member's "``), accuracy, macro-F1 and ROC-AUC."""
    d = report["data"]
    table = Table(title=f"{title} on {dataset_label(d['name'], d['is_demo'])}, split "
                        f"{d['split']} ({d['n']} images)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("split", f"{d['split']}: {d['origin']}")
    if d["trained_on"]:
        table.add_row("trained on", f"{d['trained_on']} of {d['n']} images are pixel copies "
                                    f"of {whose}training images (--allow-train-overlap)")
    table.add_row("accuracy", f"{100 * report['accuracy']:.2f} %")
    table.add_row("macro-F1", f"{report['macro_f1']:.4f}")
    table.add_row("ROC-AUC (one-vs-rest)", f"{report['roc_auc']:.4f}")
    views = InferenceViews(mirror=report.get("mirror", False), shift=report.get("shift", 0))
    if not views.plain:
        table.add_row("test-time augmentation", f"{views.count} views: {views.describe()}")
    return table


def _ensemble_table(report: dict[str, Any]) -> Table:
    table = _metrics_table(f"bionic evaluate: an ensemble of {len(report['members'])} models",
                           report, "a member's ")
    table.add_row("combined by", report["combined_by"])
    table.add_row("parameters", f"{report['n_parameters']:,} (all members)")
    for m in report["members"]:
        table.add_row(f"member {m['model']}",
                      f"{m['experiment']} seed {m['seed']}: {100 * m['accuracy']:.2f} %, "
                      f"macro-F1 {m['macro_f1']:.4f}, {m['n_parameters']:,} parameters")
    table.add_row("logged as", "— (an ensemble belongs to no single run; --json keeps it)")
    return table


def _summary_table(run_id: str, report: dict[str, Any], no_log: bool) -> Table:
    summary = _metrics_table(f"bionic evaluate {report.get('model', run_id)}", report, "")
    summary.add_row("features", ", ".join(report["features"]) or "none")
    if "model" in report:
        summary.add_row("model of run", report["run_id"])
    summary.add_row("logged as", "—" if no_log else f"evaluations/{report['evaluation']}.json")
    return summary


def _per_class_table(report: dict[str, Any]) -> Table:
    per_class = Table(title=f"per class, split {report['data']['split']}")
    for column in ("class", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, m in report["per_class"].items():
        precision = "n/a" if m["precision"] is None else f"{m['precision']:.3f}"  # never predicted
        per_class.add_row(name, precision, f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                          str(m["support"]))
    return per_class


def _confusion_table(report: dict[str, Any]) -> Table:
    names = list(report["per_class"])
    confusion = Table(title=f"confusion matrix, split {report['data']['split']} (rows: true, "
                            "columns: predicted)")
    confusion.add_column("")
    for name in names:
        confusion.add_column(name[:5], justify="right")
    for name, row in zip(names, report["confusion"], strict=True):
        confusion.add_row(name, *map(str, row))
    return confusion
