"""`bionic ablate`: plan and run (or queue) an ablation sweep, resuming a previous one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.compare_commands import print_comparison
from bionic_cli.console import err_console, out_console, print_wide
from bionic_cli.fraction_tables import print_fraction
from bionic_cli.options import (
    CompileOpt,
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentArg,
    ExperimentsOpt,
    JsonOpt,
    PrecisionOpt,
    QuietOpt,
    SetOpt,
    TrackingOpt,
    WithOpt,
    WithoutOpt,
    count,
    load_config,
    number_range,
    runtime_sets,
)
from bionic_cli.progress import Board
from bionic_cli.progress_observers import sweep_observer
from bionic_cli.queue_commands import enqueue_sweep
from rich.table import Table

from bionic_core.contract.errors import BionicError
from bionic_core.studies.sweep_records import RUN_STATUSES

STATUSES = RUN_STATUSES

DesignOpt = typer.Option(
    None, "--design", help="leave-one-out | add-one-in | factorial | fractional | explicit "
    "| null-ladder (default: "
    "the experiment's \\[ablation] table, else leave-one-out)")
FactorsOpt = typer.Option(
    None, "--factors", help="features of a factorial (default: the reference's), to add "
    "one at a time (add-one-in) or to take out one at a time (leave-one-out; default: all), "
    "comma-separated")
SampleOpt = typer.Option(
    None, "--sample", help="factorial: a seeded random N of the 2^k configurations "
    "(at least 1)", callback=number_range(1))
ResolutionOpt = typer.Option(
    None, "--resolution", help="fractional: 5 (default; every main effect and two-factor "
    "interaction estimable), 4 or 3 — the fewest configurations with that resolution")
NullsOpt = typer.Option(
    None, "--nulls", help="null-ladder: the wiring controls and their draws, e.g. "
    "degree_preserving=5,layer_uniform=5,type_shuffled=1,dense_matched=1 (the default)")
ReferenceOpt = typer.Option(
    None, "--reference", help="the reference feature set, comma-separated (default: the "
    "experiment's features, with --with/--without applied)")
BaselineOpt = typer.Option(
    None, "--baseline", help="the baseline feature set, comma-separated ('none' = no "
    "feature)")
ConfigurationOpt = typer.Option(
    [], "--configuration", help="explicit design: one feature set, comma-separated "
    "('none' = no feature); repeatable")
SeedsOpt = typer.Option(
    None, "--seeds", help="seeds 0..N-1 for every configuration (at least 1; default: the "
    "experiment's seeds)", callback=number_range(1))
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
    experiment: str = ExperimentArg,
    design: str | None = DesignOpt,
    factors: str | None = FactorsOpt,
    sample: int | None = SampleOpt,
    resolution: int | None = ResolutionOpt,
    nulls: str | None = NullsOpt,
    reference: str | None = ReferenceOpt,
    baseline: str | None = BaselineOpt,
    configuration: list[str] = ConfigurationOpt,
    seeds: int | None = SeedsOpt,
    epochs: int | None = EpochsOpt,
    set_: list[str] = SetOpt,
    with_: list[str] = WithOpt,
    without: list[str] = WithoutOpt,
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
    quiet: bool = QuietOpt,
) -> None:
    """Run an ablation sweep of EXPERIMENT (configurations × seeds), resuming a previous one.

    Rerunning the same command skips finished runs and continues an interrupted one.
    `--with F` / `--without F` change the experiment's features (the reference) first.
    """
    with Board(quiet=quiet or dry_run) as board:
        board.phase(f"loading experiment {experiment} and its features …")
        config, catalogue = load_config(experiment, experiments,
                                        sets=[*set_, *runtime_sets(compile_, precision)],
                                        without=without, only=None, seed=None, epochs=epochs,
                                        device=device, data=data, with_=with_)
        if not multimodel:
            config = config.replace(multimodel=False)
        plan = _plan(config, catalogue, experiment, design=design, factors=factors,
                     sample=sample, resolution=resolution, reference=reference,
                     baseline=baseline, nulls=nulls,
                     configuration=configuration, seeds=seeds)
        if queue is not None and not dry_run:
            board.phase(f"queueing {len(plan.runs)} runs …")
            enqueue_sweep(plan, catalogue, tracking_uri, queue, retry_failed, as_json)
            return
        result = None if dry_run else _run_sweep(plan, catalogue, tracking_uri, board,
                                                 retry_failed=retry_failed)
    if result is None:
        _show_plan(plan, as_json)
    else:
        _report(plan, result, as_json=as_json, compare=not no_compare, quiet=quiet)


# ---------------------------------------------------------------- the plan
def _feature_list(text: str | None) -> tuple[str, ...] | None:
    """``a,b`` → (a, b); ``none`` or empty → (); not given → None."""
    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _null_counts(text: str | None) -> dict[str, Any] | None:
    """``a=5,b=1`` → {a: 5, b: 1} (a count that is not a number is kept, to be refused by
    name); not given → None."""
    if text is None:
        return None
    counts: dict[str, Any] = {}
    for item in (s.strip() for s in text.split(",") if s.strip()):
        wiring, _, draws = item.partition("=")
        counts[wiring.strip()] = int(draws) if draws.strip().isdigit() else draws.strip()
    return counts


def _plan(config: Any, catalogue: Any, experiment: str, *, design: str | None,
          factors: str | None, sample: int | None, reference: str | None,
          baseline: str | None, configuration: list[str], seeds: int | None,
          resolution: int | None = None, nulls: str | None = None) -> Any:
    """The sweep plan of the design the options (or the experiment's [ablation] table) ask."""
    from bionic_core.studies.sweep_plan import design_options, plan_sweep

    if configuration and design is None:
        design = "explicit"
    options = design_options(
        config.ablation, f"experiments.{experiment}.ablation", kind=design,
        reference=_feature_list(reference), baseline=_feature_list(baseline),
        factors=_feature_list(factors), sample=sample, resolution=resolution,
        sets=tuple(_feature_list(c) or () for c in configuration) or None,
        nulls=_null_counts(nulls))
    return plan_sweep(config, catalogue, options,
                      seeds=range(seeds) if seeds is not None else None)


def _show_plan(plan: Any, as_json: bool) -> None:
    """`--dry-run`: the plan as JSON, or its table and the dropped configurations."""
    if as_json:
        typer.echo(json.dumps(plan.as_dict()))
        return
    print_wide(_plan_table(plan))
    if plan.design.fraction is not None:
        print_fraction(plan.design.fraction_record())
    dropped = _dropped_table(plan)
    if dropped is not None:
        print_wide(dropped)


def _plan_table(plan: Any) -> Table:
    table = Table(title=f"ablation plan {plan.name}: {plan.design.kind}, "
                        f"{count(len(plan.configurations), 'configuration')} × "
                        f"{count(len(plan.seeds), 'seed')} = {count(len(plan.runs), 'run')} "
                        f"(sweep id {plan.sweep_id})")
    for column in ("configuration", "features", "group", "seed", "key"):
        table.add_column(column)
    for planned in plan.configurations:
        features = ", ".join(sorted(planned.configuration.features)) or "none"
        if planned.configuration.settings:  # a null ladder's control
            features = f"{features}; " + ", ".join(planned.configuration.settings)
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
def _run_sweep(plan: Any, catalogue: Any, tracking_uri: str | None, board: Board, *,
               retry_failed: bool) -> tuple[Any, Any]:
    """Run the plan's runs here on ``board``; the sweep's result and the tracker."""
    from bionic_core.studies.sweep_plan import preflight
    from bionic_core.studies.sweep_run import run_sweep
    from bionic_core.studies.tracking import Tracker

    tracker = Tracker(tracking_uri)
    board.phase(f"loading data {plan.base.dataset} and opening MLflow {tracker.uri} …")
    preflight(plan, tracker)
    board.start_sweep(f"sweep {plan.name}", len(plan.runs))
    board.phase("")
    result = run_sweep(plan, catalogue, tracker, observer=sweep_observer(board),
                       retry_failed=retry_failed)
    return result, tracker


def _report(plan: Any, run: tuple[Any, Any], *, as_json: bool, compare: bool,
            quiet: bool) -> None:
    """The sweep's JSON document or its report; exit status 1 when a run failed."""
    result, tracker = run
    counts = {s: sum(o.status == s for o in result.outcomes) for s in STATUSES}
    if as_json:
        typer.echo(json.dumps(_sweep_summary(plan, result, tracker, counts)))
    else:
        _print_sweep_report(plan, result, tracker, counts, compare=compare, quiet=quiet)
    if result.failures:
        raise typer.Exit(1)


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
                        compare: bool, quiet: bool) -> None:
    """The counts and where to see them in MLflow (unless ``quiet``), the failed runs and
    (unless ``compare`` is false) the comparison table."""
    if not quiet:
        done = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        err_console.print(f"sweep {plan.name} (id {plan.sweep_id}): {done}; "
                          f"MLflow run {result.sweep_run_id} in {tracker.uri}", soft_wrap=True)
        page = tracker.runs_page(tracker.experiment_id(plan.experiment), result.sweep_run_id)
        err_console.print(f"the comparison is on that run in MLflow: {ui_address(tracker.uri)}"
                          f"{page}", soft_wrap=True, highlight=False)
    if result.failures:
        out_console.print(_failures_table(result.failures))
    if compare:
        _print_sweep_comparison(tracker, plan.sweep_id)


def ui_address(uri: str) -> str:
    """The address of the MLflow UI of tracking store ``uri`` (a local store: after
    ``mlflow ui --backend-store-uri URI``, on its default port)."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/") + "/"
    return f"(mlflow ui --backend-store-uri {uri}) http://127.0.0.1:5000/"


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
