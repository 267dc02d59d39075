"""`bionic ablate`, `bionic compare`, `bionic evaluate`: sweeps, their comparison, re-evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.app import (
    CompileOpt,
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentsOpt,
    JsonOpt,
    PrecisionOpt,
    SetOpt,
    TrackingOpt,
    epoch_progress,
    err_console,
    load_config,
    out_console,
    runtime_sets,
)
from rich.console import Console
from rich.table import Table

from bionic_core.contract.errors import BionicError


def _feature_list(text: str | None) -> tuple[str, ...] | None:
    """``a,b`` → (a, b); ``none`` or empty → (); not given → None."""
    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(s.strip() for s in text.split(",") if s.strip())


# ---------------------------------------------------------------- bionic ablate
def _plan_table(plan: Any) -> Table:
    table = Table(title=f"ablation plan {plan.name}: {plan.design.kind}, "
                        f"{len(plan.configurations)} configurations × {len(plan.seeds)} seeds "
                        f"= {len(plan.runs)} runs (sweep id {plan.sweep_id})")
    for column in ("configuration", "features", "group", "seed", "key"):
        table.add_column(column)
    for planned in plan.configurations:
        features = ", ".join(sorted(planned.configuration.features)) or "none"
        for i, run in enumerate(planned.runs):
            table.add_row(planned.name if i == 0 else "", features if i == 0 else "",
                          planned.group if i == 0 else "", str(run.seed), run.key)
    return table


def _dropped_table(plan: Any) -> Table | None:
    if not plan.design.dropped:
        return None
    table = Table(title="dropped configurations (invalid feature sets)")
    table.add_column("configuration")
    table.add_column("reason")
    for d in plan.design.dropped:
        table.add_row(d.name, d.reason)
    return table


def _observer(progress: Any, plan: Any) -> Any:
    from bionic_core.studies.sweep import SweepObserver

    class RichObserver(SweepObserver):
        def __init__(self) -> None:
            self.sweep_task = progress.add_task(f"sweep {plan.name}", total=len(plan.runs),
                                                status="")
            self.run_task = progress.add_task("run", total=plan.base.epochs, status="")

        def run_started(self, spec: Any, index: int, resumed_from: int | None) -> None:
            note = f"resuming after epoch {resumed_from}" if resumed_from else ""
            progress.reset(self.run_task, total=spec.config.epochs, completed=resumed_from or 0,
                           description=f"{spec.configuration} seed {spec.seed}", status=note)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            progress.update(self.run_task, completed=epoch,
                            status=f"loss {row['train_loss']:.3f}  val acc "
                                   f"{100 * row['val_accuracy']:.1f} %  {row['epoch_time']:.1f}s")

        def run_done(self, outcome: Any, index: int) -> None:
            spec = outcome.spec
            progress.update(self.sweep_task, completed=index + 1,
                            status=f"last: {spec.configuration} s{spec.seed} {outcome.status}")
            if outcome.status not in ("finished", "skipped"):
                progress.console.print(f"[red]{spec.configuration} seed {spec.seed}: "
                                       f"{outcome.status}: {outcome.reason}[/red]")

    return RichObserver()


def ablate(
    experiment: str = typer.Argument(..., help="experiment name in experiments.toml"),
    design: str | None = typer.Option(
        None, "--design", help="leave-one-out | add-one-in | factorial | explicit (default: "
        "the experiment's [ablation] table, else leave-one-out)"),
    factors: str | None = typer.Option(
        None, "--factors", help="features of a factorial (default: the reference's) or of "
        "add-one-in, comma-separated"),
    sample: int | None = typer.Option(
        None, "--sample", help="factorial: a seeded random N of the 2^k configurations"),
    reference: str | None = typer.Option(
        None, "--reference", help="the reference feature set, comma-separated (default: the "
        "experiment's features)"),
    baseline: str | None = typer.Option(
        None, "--baseline", help="the baseline feature set, comma-separated ('none' = no "
        "feature)"),
    configuration: list[str] = typer.Option(
        [], "--configuration", help="explicit design: one feature set, comma-separated "
        "('none' = no feature); repeatable"),
    seeds: int | None = typer.Option(
        None, "--seeds", help="seeds 0..N-1 for every configuration (default: the "
        "experiment's seeds)"),
    epochs: int | None = EpochsOpt,
    set_: list[str] = SetOpt,
    data: str | None = DataOpt,
    device: str | None = DeviceOpt,
    experiments: Path | None = ExperimentsOpt,
    tracking_uri: str | None = TrackingOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan, train nothing"),
    multimodel: bool = typer.Option(
        True, "--multimodel/--no-multimodel", help="train the runs whose networks share a "
        "shape together, many models per step (default; same results up to rounding), or "
        "one by one"),
    compile_: bool = CompileOpt,
    precision: str | None = PrecisionOpt,
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="train again the runs that diverged before"),
    no_compare: bool = typer.Option(False, "--no-compare",
                                    help="do not print the comparison table at the end"),
    queue: str | None = typer.Option(
        None, "--queue", help="queue the runs in this Optuna storage URL (PostgreSQL, or "
        "sqlite:///FILE on one machine) for `bionic worker --queue URL` instead of running"),
    as_json: bool = JsonOpt,
) -> None:
    """Run an ablation sweep of EXPERIMENT (configurations × seeds), resuming a previous one.

    Rerunning the same command skips finished runs and continues an interrupted one.
    """
    from bionic_core.studies.sweep import design_options, plan_sweep, preflight, run_sweep
    from bionic_core.studies.tracking import Tracker

    if seeds is not None and seeds < 1:
        raise BionicError(f"--seeds {seeds}: expected at least 1")
    config, catalogue = load_config(experiment, experiments,
                                    sets=[*set_, *runtime_sets(compile_, precision)],
                                    without=[], only=None, seed=None, epochs=epochs,
                                    device=device, data=data)
    if not multimodel:
        config = config.replace(multimodel=False)
    if configuration and design is None:
        design = "explicit"
    options = design_options(
        config.ablation, f"experiments.{experiment}.ablation", kind=design,
        reference=_feature_list(reference), baseline=_feature_list(baseline),
        factors=_feature_list(factors), sample=sample,
        sets=tuple(_feature_list(c) or () for c in configuration) or None)
    plan = plan_sweep(config, catalogue, options,
                      seeds=range(seeds) if seeds is not None else None)
    if dry_run:
        if as_json:
            typer.echo(json.dumps(plan.as_dict()))
            return
        _print(_plan_table(plan))
        dropped = _dropped_table(plan)
        if dropped is not None:
            _print(dropped)
        return

    if queue is not None:
        from bionic_cli.tune_commands import enqueue_sweep

        enqueue_sweep(plan, catalogue, tracking_uri, queue, retry_failed, as_json)
        return
    tracker = Tracker(tracking_uri)
    preflight(plan, tracker)
    with epoch_progress(len(plan.runs), plan.name) as progress:
        result = run_sweep(plan, catalogue, tracker, observer=_observer(progress, plan),
                           retry_failed=retry_failed)
    counts = {s: sum(o.status == s for o in result.outcomes)
              for s in ("finished", "skipped", "failed", "error", "previously-failed")}
    if as_json:
        typer.echo(json.dumps({
            "sweep_id": plan.sweep_id, "name": plan.name, "sweep_run_id": result.sweep_run_id,
            "experiment": plan.experiment, "design": plan.design.kind,
            "tracking_uri": tracker.uri, "counts": counts,
            "runs": [{"configuration": o.spec.configuration, "seed": o.spec.seed,
                      "key": o.spec.key, "status": o.status, "run_id": o.run_id,
                      "reason": o.reason, "seconds": round(o.seconds, 3),
                      "resumed_from_epoch": o.resumed_from_epoch} for o in result.outcomes]}))
    else:
        done = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        err_console.print(f"sweep {plan.name} (id {plan.sweep_id}): {done}; "
                          f"MLflow run {result.sweep_run_id} in {tracker.uri}")
        if result.failures:
            table = Table(title="failed runs")
            for column in ("configuration", "seed", "status", "reason", "MLflow run"):
                table.add_column(column)
            for o in result.failures:
                table.add_row(o.spec.configuration, str(o.spec.seed), o.status, o.reason,
                              o.run_id)
            out_console.print(table)
        if not no_compare:
            from bionic_core.studies.comparison import compare as compare_sweeps

            try:
                _print_table(compare_sweeps(tracker, [plan.sweep_id]))
            except BionicError as exc:
                err_console.print(f"no comparison: {exc}")
    if result.failures:
        raise typer.Exit(1)


# ---------------------------------------------------------------- bionic compare
def _print(renderable: Any) -> None:
    # Redirected output is not squeezed into 80 columns (a terminal keeps its own width).
    console = out_console if out_console.is_terminal else Console(width=200)
    console.print(renderable)


def _print_table(comparison: Any) -> None:
    from bionic_core.studies.comparison import cells, effect_cells, headers, title

    table = Table(title=title(comparison))
    for i, column in enumerate(headers(comparison)):
        table.add_column(column, justify="left" if i < 3 else "right")
    for row in cells(comparison):
        table.add_row(*row)
    _print(table)
    head, rows = effect_cells(comparison)
    if rows:
        effects = Table(title=f"factorial effects on {comparison.split} {comparison.metric} "
                              "(linear model on ±1 coding; effect = mean change off → on)")
        for i, column in enumerate(head):
            effects.add_column(column, justify="left" if i < 2 else "right")
        for row in rows:
            effects.add_row(*row)
        _print(effects)
    for note in comparison.notes:
        out_console.print(f"note: {note}")


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
    from bionic_core.studies.comparison import FORMATS, render
    from bionic_core.studies.comparison import compare as compare_sweeps
    from bionic_core.studies.comparison import plot as draw
    from bionic_core.studies.tracking import Tracker

    if fmt not in FORMATS:
        raise BionicError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    comparison = compare_sweeps(Tracker(tracking_uri), targets, metric=metric, force=force)
    if fmt == "table":
        _print_table(comparison)
    else:
        typer.echo(render(comparison, fmt))
    if plot is not None:
        err_console.print(f"plot written to {draw(comparison, plot)}")


# ---------------------------------------------------------------- bionic evaluate
def evaluate(
    run_id: str = typer.Argument(..., help="MLflow run id of a finished run"),
    data: str | None = DataOpt,
    split: str = typer.Option("auto", "--split", help="auto (the test split when the data "
                              "has one, else every image) | train | val | test | all"),
    device: str | None = DeviceOpt,
    tracking_uri: str | None = TrackingOpt,
    no_log: bool = typer.Option(False, "--no-log", help="do not record the evaluation"),
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate a logged run's model on a dataset file and record the result with the run."""
    from bionic_core.host import load_catalogue
    from bionic_core.studies.evaluation import evaluate_logged_run
    from bionic_core.studies.tracking import Tracker

    if data is None:
        raise BionicError("--data: required (a built-in dataset name, FER-2013 CSV, folder "
                          "or .npz)")
    report = evaluate_logged_run(Tracker(tracking_uri), run_id, data,
                                 catalogue=load_catalogue(), split=split,
                                 device=device or "auto", log=not no_log)
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    d = report["data"]
    label = d["name"] + (" (demonstration set, not FER-2013)" if d["is_demo"] else "")
    summary = Table(title=f"bionic evaluate {run_id} on {label}, {d['split']} "
                          f"({d['n']} images)")
    summary.add_column("metric")
    summary.add_column("value", justify="right")
    summary.add_row("accuracy", f"{100 * report['accuracy']:.2f} %")
    summary.add_row("macro-F1", f"{report['macro_f1']:.4f}")
    summary.add_row("ROC-AUC (one-vs-rest)", f"{report['roc_auc']:.4f}")
    summary.add_row("features", ", ".join(report["features"]) or "none")
    summary.add_row("logged as", "—" if no_log else f"evaluations/{report['evaluation']}.json")
    out_console.print(summary)
    per_class = Table(title="per class")
    for column in ("class", "precision", "recall", "F1", "support"):
        per_class.add_column(column, justify="left" if column == "class" else "right")
    for name, m in report["per_class"].items():
        per_class.add_row(name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                          str(m["support"]))
    out_console.print(per_class)
    names = list(report["per_class"])
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for name in names:
        confusion.add_column(name[:5], justify="right")
    for name, row in zip(names, report["confusion"], strict=True):
        confusion.add_row(name, *map(str, row))
    out_console.print(confusion)
