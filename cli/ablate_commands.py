"""`bionic ablate`: plan and run (or queue) an ablation sweep, resuming a previous one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.compare_commands import print_comparison
from bionic_cli.console import err_console, out_console, print_wide
from bionic_cli.options import (
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
    epoch_status,
    load_config,
    runtime_sets,
    start_run_task,
)
from bionic_cli.queue_commands import enqueue_sweep
from rich.table import Table

from bionic_core.contract.errors import BionicError
from bionic_core.studies.sweep_records import RUN_STATUSES

STATUSES = RUN_STATUSES

DesignOpt = typer.Option(
    None, "--design", help="leave-one-out | add-one-in | factorial | explicit (default: "
    "the experiment's [ablation] table, else leave-one-out)")
FactorsOpt = typer.Option(
    None, "--factors", help="features of a factorial (default: the reference's) or of "
    "add-one-in, comma-separated")
SampleOpt = typer.Option(
    None, "--sample", help="factorial: a seeded random N of the 2^k configurations")
ReferenceOpt = typer.Option(
    None, "--reference", help="the reference feature set, comma-separated (default: the "
    "experiment's features)")
BaselineOpt = typer.Option(
    None, "--baseline", help="the baseline feature set, comma-separated ('none' = no "
    "feature)")
ConfigurationOpt = typer.Option(
    [], "--configuration", help="explicit design: one feature set, comma-separated "
    "('none' = no feature); repeatable")
SeedsOpt = typer.Option(
    None, "--seeds", help="seeds 0..N-1 for every configuration (default: the "
    "experiment's seeds)")
DryRunOpt = typer.Option(False, "--dry-run", help="print the plan, train nothing")
MultimodelOpt = typer.Option(
    True, "--multimodel/--no-multimodel", help="train the runs whose networks share a "
    "shape together, many models per step (default; same results up to rounding), or "
    "one by one")
RetryFailedOpt = typer.Option(False, "--retry-failed",
                              help="train again the runs that diverged before")
NoCompareOpt = typer.Option(False, "--no-compare",
                            help="do not print the comparison table at the end")
EnqueueOpt = typer.Option(
    None, "--queue", help="queue the runs in this Optuna storage URL (PostgreSQL, or "
    "sqlite:///FILE on one machine) for `bionic worker --queue URL` instead of running")


def ablate(
    experiment: str = typer.Argument(..., help="experiment name in experiments.toml"),
    design: str | None = DesignOpt,
    factors: str | None = FactorsOpt,
    sample: int | None = SampleOpt,
    reference: str | None = ReferenceOpt,
    baseline: str | None = BaselineOpt,
    configuration: list[str] = ConfigurationOpt,
    seeds: int | None = SeedsOpt,
    epochs: int | None = EpochsOpt,
    set_: list[str] = SetOpt,
    data: str | None = DataOpt,
    device: str | None = DeviceOpt,
    experiments: Path | None = ExperimentsOpt,
    tracking_uri: str | None = TrackingOpt,
    dry_run: bool = DryRunOpt,
    multimodel: bool = MultimodelOpt,
    compile_: bool = CompileOpt,
    precision: str | None = PrecisionOpt,
    retry_failed: bool = RetryFailedOpt,
    no_compare: bool = NoCompareOpt,
    queue: str | None = EnqueueOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run an ablation sweep of EXPERIMENT (configurations × seeds), resuming a previous one.

    Rerunning the same command skips finished runs and continues an interrupted one.
    """
    if seeds is not None and seeds < 1:
        raise BionicError(f"--seeds {seeds}: expected at least 1")
    config, catalogue = load_config(experiment, experiments,
                                    sets=[*set_, *runtime_sets(compile_, precision)],
                                    without=[], only=None, seed=None, epochs=epochs,
                                    device=device, data=data)
    if not multimodel:
        config = config.replace(multimodel=False)
    plan = _plan(config, catalogue, experiment, design=design, factors=factors, sample=sample,
                 reference=reference, baseline=baseline, configuration=configuration,
                 seeds=seeds)
    if dry_run:
        _show_plan(plan, as_json)
    elif queue is not None:
        enqueue_sweep(plan, catalogue, tracking_uri, queue, retry_failed, as_json)
    else:
        _run_and_report(plan, catalogue, tracking_uri, retry_failed=retry_failed,
                        as_json=as_json, compare=not no_compare)


# ---------------------------------------------------------------- the plan
def _feature_list(text: str | None) -> tuple[str, ...] | None:
    """``a,b`` → (a, b); ``none`` or empty → (); not given → None."""
    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _plan(config: Any, catalogue: Any, experiment: str, *, design: str | None,
          factors: str | None, sample: int | None, reference: str | None,
          baseline: str | None, configuration: list[str], seeds: int | None) -> Any:
    """The sweep plan of the design the options (or the experiment's [ablation] table) ask."""
    from bionic_core.studies.sweep_plan import design_options, plan_sweep

    if configuration and design is None:
        design = "explicit"
    options = design_options(
        config.ablation, f"experiments.{experiment}.ablation", kind=design,
        reference=_feature_list(reference), baseline=_feature_list(baseline),
        factors=_feature_list(factors), sample=sample,
        sets=tuple(_feature_list(c) or () for c in configuration) or None)
    return plan_sweep(config, catalogue, options,
                      seeds=range(seeds) if seeds is not None else None)


def _show_plan(plan: Any, as_json: bool) -> None:
    """`--dry-run`: the plan as JSON, or its table and the dropped configurations."""
    if as_json:
        typer.echo(json.dumps(plan.as_dict()))
        return
    print_wide(_plan_table(plan))
    dropped = _dropped_table(plan)
    if dropped is not None:
        print_wide(dropped)


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


# ---------------------------------------------------------------- the sweep
def _run_and_report(plan: Any, catalogue: Any, tracking_uri: str | None, *,
                    retry_failed: bool, as_json: bool, compare: bool) -> None:
    """Run the plan's runs here, report them; exit status 1 when a run failed."""
    from bionic_core.studies.sweep_plan import preflight
    from bionic_core.studies.sweep_run import run_sweep
    from bionic_core.studies.tracking import Tracker

    tracker = Tracker(tracking_uri)
    preflight(plan, tracker)
    with epoch_progress(len(plan.runs), plan.name) as progress:
        result = run_sweep(plan, catalogue, tracker, observer=_sweep_observer(progress, plan),
                           retry_failed=retry_failed)
    counts = {s: sum(o.status == s for o in result.outcomes) for s in STATUSES}
    if as_json:
        typer.echo(json.dumps(_sweep_summary(plan, result, tracker, counts)))
    else:
        _print_sweep_report(plan, result, tracker, counts, compare=compare)
    if result.failures:
        raise typer.Exit(1)


def _sweep_observer(progress: Any, plan: Any) -> Any:
    from bionic_core.studies.sweep_execution import SweepObserver

    class RichObserver(SweepObserver):
        def __init__(self) -> None:
            self.sweep_task = progress.add_task(f"sweep {plan.name}", total=len(plan.runs),
                                                status="")
            self.run_task = progress.add_task("run", total=plan.base.epochs, status="")

        def run_started(self, spec: Any, index: int, resumed_from: int | None) -> None:
            start_run_task(progress, self.run_task, spec, resumed_from)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            progress.update(self.run_task, completed=epoch, status=epoch_status(row))

        def run_note(self, spec: Any, note: str) -> None:
            progress.console.print(note)

        def run_done(self, outcome: Any, index: int) -> None:
            spec = outcome.spec
            progress.update(self.sweep_task, completed=index + 1,
                            status=f"last: {spec.configuration} s{spec.seed} {outcome.status}")
            if not outcome.ok:
                progress.console.print(f"[red]{spec.configuration} seed {spec.seed}: "
                                       f"{outcome.status}: {outcome.reason}[/red]")

    return RichObserver()


def _sweep_summary(plan: Any, result: Any, tracker: Any,
                   counts: dict[str, int]) -> dict[str, Any]:
    """The JSON document of `bionic ablate --json`."""
    return {
        "sweep_id": plan.sweep_id, "name": plan.name, "sweep_run_id": result.sweep_run_id,
        "experiment": plan.experiment, "design": plan.design.kind,
        "tracking_uri": tracker.uri, "counts": counts,
        "runs": [{"configuration": o.spec.configuration, "seed": o.spec.seed,
                  "key": o.spec.key, "status": o.status, "run_id": o.run_id,
                  "reason": o.reason, "feature": o.feature, "seconds": round(o.seconds, 3),
                  "resumed_from_epoch": o.resumed_from_epoch} for o in result.outcomes]}


def _print_sweep_report(plan: Any, result: Any, tracker: Any, counts: dict[str, int], *,
                        compare: bool) -> None:
    """The counts, the failed runs and (unless ``compare`` is false) the comparison table."""
    done = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    err_console.print(f"sweep {plan.name} (id {plan.sweep_id}): {done}; "
                      f"MLflow run {result.sweep_run_id} in {tracker.uri}")
    if result.failures:
        out_console.print(_failures_table(result.failures))
    if compare:
        _print_sweep_comparison(tracker, plan.sweep_id)


def _failures_table(failures: list[Any]) -> Table:
    table = Table(title="failed runs")
    for column in ("configuration", "seed", "status", "feature", "reason", "MLflow run"):
        table.add_column(column)
    for o in failures:
        table.add_row(o.spec.configuration, str(o.spec.seed), o.status, o.feature or "—",
                      o.reason, o.run_id)
    return table


def _print_sweep_comparison(tracker: Any, sweep_id: str) -> None:
    from bionic_core.studies.comparison import compare as compare_sweeps

    try:
        print_comparison(compare_sweeps(tracker, [sweep_id]))
    except BionicError as exc:
        err_console.print(f"no comparison: {exc}")
