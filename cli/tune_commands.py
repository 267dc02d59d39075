"""`bionic tune` (Optuna studies) and `bionic worker` (the shared work queue of a sweep)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.app import (
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentsOpt,
    JsonOpt,
    OnlyOpt,
    SetOpt,
    TrackingOpt,
    WithoutOpt,
    epoch_progress,
    err_console,
    load_config,
    out_console,
)
from rich.table import Table

from bionic_core.contract.errors import BionicError


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- bionic tune
def _tune_observer(progress: Any, trials: int | None, epochs: int) -> Any:
    from bionic_core.studies.tuning import TuneObserver

    class RichObserver(TuneObserver):
        def __init__(self) -> None:
            self.study_task = progress.add_task("trials", total=trials, status="")
            self.trial_task = progress.add_task("trial", total=epochs, status="")
            self.done = 0

        def trial_started(self, number: int, values: dict[str, Any]) -> None:
            shown = ", ".join(f"{k}={_value(v)}" for k, v in values.items())
            progress.reset(self.trial_task, total=epochs, description=f"trial {number}",
                           status=shown[:80])

        def epoch_done(self, number: int, epoch: int, row: dict[str, float]) -> None:
            progress.update(self.trial_task, completed=epoch,
                            status=f"val acc {100 * row['val_accuracy']:.1f} %  "
                                   f"{row['epoch_time']:.1f}s")

        def trial_done(self, trial: Any) -> None:
            self.done += 1
            value = "" if trial.value is None else f" {trial.value:.4f}"
            progress.update(self.study_task, completed=self.done,
                            status=f"last: #{trial.number} {trial.state.name.lower()}{value}")

    return RichObserver()


def _trials_table(result: Any) -> Table:
    new = set(result.new_trials)
    table = Table(title=f"study {result.study_name} ({result.storage}): "
                        + ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items())))
    for column in ("trial", "state", result.metric, "epochs", "parameters"):
        table.add_column(column, justify="right" if column in (result.metric, "epochs")
                         else "left")
    for t in result.trials:
        if t.number not in new:
            continue
        mark = " ★" if result.best is not None and t.number == result.best.number else ""
        table.add_row(f"{t.number}{mark}", t.state.name.lower(),
                      "—" if t.value is None else f"{t.value:.4f}",
                      str(t.user_attrs.get("epochs_run", len(t.intermediate_values))),
                      ", ".join(f"{k}={_value(v)}" for k, v in t.params.items()))
    return table


def tune(
    experiment: str = typer.Argument(..., help="experiment name in experiments.toml"),
    trials: int | None = typer.Option(
        None, "--trials", help="trials to run now (default: the experiment's tune.trials, "
        "else 20; 0 = only report and export)"),
    timeout: float | None = typer.Option(None, "--timeout", help="stop starting new trials "
                                         "after this many seconds"),
    storage: str = typer.Option("sqlite:///optuna.db", "--storage",
                                help="Optuna storage: any SQLAlchemy URL (PostgreSQL to tune "
                                     "from several machines)"),
    study: str | None = typer.Option(None, "--study", help="study name (default: "
                                     "tune-EXPERIMENT); an existing study continues"),
    sampler: str | None = typer.Option(None, "--sampler", help="tpe | random | gp "
                                       "(default: tune.sampler, else tpe)"),
    pruner: str | None = typer.Option(None, "--pruner", help="median | hyperband | none "
                                      "(default: tune.pruner, else median)"),
    export: Path | None = typer.Option(
        None, "--export", help="write the best parameters as a named experiment into this "
        "TOML file (e.g. experiments.tuned.toml; appended when it exists)"),
    export_name: str | None = typer.Option(None, "--export-name",
                                           help="name of the exported experiment "
                                                "(default: EXPERIMENT_tuned)"),
    search: str | None = typer.Option(
        None, "--search", help="explore only these parameters, comma-separated (lr, "
        "batch_size, activation, FEATURE.PARAM); default: tune.search, else all with a range"),
    set_: list[str] = SetOpt,
    without: list[str] = WithoutOpt,
    only: str | None = OnlyOpt,
    epochs: int | None = EpochsOpt,
    device: str | None = DeviceOpt,
    data: str | None = DataOpt,
    experiments: Path | None = ExperimentsOpt,
    tracking_uri: str | None = TrackingOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Tune EXPERIMENT's hyper-parameters with Optuna; every trial is an MLflow run.

    The search space is the core's (lr, batch_size, activation) plus every enabled feature's
    parameter ranges, narrowed or fixed by the experiment's `tune` table. Rerunning continues
    the same study. Watch it with `optuna-dashboard STORAGE_URL`.
    """
    from bionic_core.config import default_experiments_path
    from bionic_core.studies.tracking import Tracker
    from bionic_core.studies.tuning import best_config as make_best
    from bionic_core.studies.tuning import (
        build_search_space,
        default_study_name,
        export_experiment,
        open_tuning,
        tune_options,
    )
    from bionic_core.training.loop import load_run_data

    if trials is not None and trials < 0:
        raise BionicError(f"--trials {trials}: expected 0 or more")
    if timeout is not None and timeout <= 0:
        raise BionicError(f"--timeout {timeout}: expected a positive number of seconds")
    # The exported experiment keeps the file's epochs: --epochs is a tuning budget.
    config, catalogue = load_config(experiment, experiments, sets=set_, without=without,
                                    only=only, seed=None, epochs=None, device=device,
                                    data=data)
    if search is not None:
        names = [n.strip() for n in search.split(",") if n.strip()]
        config = config.replace(tune={**config.tune, "search": names})
    path = experiments or default_experiments_path()
    where = f"{path}: experiments.{experiment}.tune"
    options = tune_options(config, where)
    space = build_search_space(config, catalogue, where)
    base = config.replace(epochs=epochs) if epochs is not None else config
    if epochs is not None and epochs < 1:
        raise BionicError(f"--epochs {epochs}: expected at least 1")
    n_trials = trials if trials is not None else options.get("trials", 20)
    load_run_data(base)  # a bad dataset fails here, before the study is touched
    tracker = Tracker(tracking_uri)
    tuning = open_tuning(base, catalogue, tracker, space, storage_url=storage,
                         study_name=study or default_study_name(experiment),
                         sampler=sampler or options.get("sampler", "tpe"),
                         pruner=pruner or options.get("pruner", "median"),
                         metric=options.get("metric", "val_accuracy"))
    with epoch_progress(n_trials, experiment) as progress:
        result = tuning.optimize(n_trials, timeout,
                                 observer=_tune_observer(progress, n_trials, base.epochs))
    exported = None
    if export is not None:
        if result.best is None:
            raise BionicError(f"--export {export}: no trial of study {result.study_name} has "
                              "completed yet; nothing to export")
        name = export_name or f"{experiment}_tuned"
        best = make_best(config, space, result.best)
        note = (f"study {result.study_name} in {result.storage}, trial {result.best.number}: "
                f"{result.metric} {result.best.value:.4f} (trained {base.epochs} epochs)")
        exported = export_experiment(export, name, best.replace(
            description=f"{experiment} with the parameters tuned in study {result.study_name}"),
            catalogue, note)
    best = result.best
    if as_json:
        typer.echo(json.dumps({
            "study": result.study_name, "storage": result.storage,
            "parent_run_id": result.parent_run_id, "tracking_uri": tracker.uri,
            "metric": result.metric, "counts": result.counts(), "new_trials": result.new_trials,
            "best": None if best is None else {
                "trial": best.number, "value": best.value, "params": best.params,
                "run_id": best.user_attrs.get("mlflow_run_id")},
            "export": None if exported is None else str(exported)}, default=str))
        return
    out_console.print(_trials_table(result))
    if best is not None:
        out_console.print(f"best: trial {best.number}, {result.metric} {best.value:.4f}: "
                          + ", ".join(f"{k}={_value(v)}" for k, v in best.params.items()))
    err_console.print(f"MLflow parent run {result.parent_run_id} in {tracker.uri}; watch the "
                      f"study with: optuna-dashboard {result.storage}")
    if exported is not None:
        name = export_name or f"{experiment}_tuned"
        err_console.print(f"exported experiments.{name} to {exported}: "
                          f"bionic run {name} --experiments {exported}")


# ---------------------------------------------------------------- bionic ablate --queue
def enqueue_sweep(plan: Any, catalogue: Any, tracking_uri: str | None, queue: str,
                  retry_failed: bool, as_json: bool) -> None:
    """`bionic ablate EXPERIMENT --queue URL`: queue the plan's runs for `bionic worker`."""
    from bionic_core.studies.tracking import Tracker
    from bionic_core.studies.work_queue import enqueue_plan

    tracker = Tracker(tracking_uri)
    result = enqueue_plan(plan, catalogue, tracker, queue, retry_failed=retry_failed)
    if as_json:
        typer.echo(json.dumps({
            "queue": result.storage, "study": result.study, "sweep_id": result.sweep_id,
            "sweep_run_id": result.sweep_run_id, "tracking_uri": tracker.uri,
            "n_runs": len(plan.runs), "enqueued": result.enqueued, "present": result.present,
            "held_back": result.held_back}))
        return
    err_console.print(f"queue {result.study} in {result.storage}: {len(result.enqueued)} runs "
                      f"queued, {len(result.present)} already queued, running or done"
                      + (f", {len(result.held_back)} diverged before (--retry-failed queues "
                         "them)" if result.held_back else "")
                      + f"; sweep {plan.sweep_id}, MLflow {tracker.uri}")
    if tracker.uri.startswith(("sqlite:", "file:")) or "://" not in tracker.uri:
        err_console.print("note: the tracking store is a local file: workers on other machines "
                          "need --tracking-uri of a shared MLflow server")
    err_console.print(f"start workers with: bionic worker --queue {result.storage}")


# ---------------------------------------------------------------- bionic worker
def _worker_observer(progress: Any) -> Any:
    from bionic_core.studies.work_queue import WorkerObserver

    class RichObserver(WorkerObserver):
        def __init__(self) -> None:
            self.task = progress.add_task("waiting for work", total=None, status="")
            self.done = 0

        def queue_opened(self, studies: list[str], tracking_uri: str) -> None:
            progress.console.print(f"worker: queues {', '.join(studies)}; MLflow {tracking_uri}")

        def run_started(self, study: str, spec: Any, resumed_from: int | None) -> None:
            note = f"resuming after epoch {resumed_from}" if resumed_from else ""
            progress.reset(self.task, total=spec.config.epochs, completed=resumed_from or 0,
                           description=f"{spec.configuration} seed {spec.seed}", status=note)

        def epoch_done(self, spec: Any, epoch: int, row: dict[str, float]) -> None:
            progress.update(self.task, completed=epoch,
                            status=f"val acc {100 * row['val_accuracy']:.1f} %  "
                                   f"{row['epoch_time']:.1f}s")

        def run_done(self, record: Any) -> None:
            self.done += 1
            progress.console.print(f"{record.configuration} seed {record.seed} ({record.key}): "
                                   f"{record.outcome}" + (f": {record.reason}"
                                                          if record.reason else ""))

        def waiting(self, running: int) -> None:
            progress.update(self.task, description="waiting",
                            status=f"{running} run(s) still running elsewhere")

    return RichObserver()


def worker(
    queue: str = typer.Option(..., "--queue", help="the queue's storage URL (as given to "
                              "`bionic ablate EXPERIMENT --queue URL`)"),
    study: str | None = typer.Option(None, "--study", help="work on this queue only "
                                     "(default: every queue in the storage)"),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else "
        "the one the queue was made with)"),
    device: str | None = DeviceOpt,
    max_runs: int | None = typer.Option(None, "--max-runs", help="stop after this many runs"),
    no_wait: bool = typer.Option(False, "--no-wait", help="stop when nothing is waiting, "
                                 "even if other workers still run (default: wait, to take "
                                 "over the runs of workers that die)"),
    heartbeat_interval: int = typer.Option(60, "--heartbeat-interval",
                                           help="seconds between heartbeats of a run"),
    grace_period: int | None = typer.Option(
        None, "--grace-period", help="seconds without heartbeat before a run counts as dead "
        "and is queued again (default: twice the heartbeat interval)"),
    max_retry: int = typer.Option(3, "--max-retry", help="times a dead worker's run is "
                                  "queued again"),
    as_json: bool = JsonOpt,
) -> None:
    """Run queued sweep runs until none is left (start one per machine or per GPU)."""
    import signal

    from bionic_core.host import load_catalogue
    from bionic_core.studies.work_queue import Worker

    if max_runs is not None and max_runs < 1:
        raise BionicError(f"--max-runs {max_runs}: expected at least 1")

    def terminate(signum: int, frame: Any) -> None:  # `kill`: give the run back first
        raise KeyboardInterrupt

    opened = Worker(queue, load_catalogue(), study=study, tracking_uri=tracking_uri,
                    device=device, heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period, max_retry=max_retry)
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with epoch_progress(0, "worker") as progress:
            records = opened.run(max_runs=max_runs, wait=not no_wait,
                                 observer=_worker_observer(progress))
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    if as_json:
        typer.echo(json.dumps({"counts": counts, "runs": [
            {"study": r.study, "trial": r.trial, "key": r.key, "configuration": r.configuration,
             "seed": r.seed, "outcome": r.outcome, "run_id": r.run_id, "reason": r.reason,
             "seconds": round(r.seconds, 3)} for r in records]}))
    else:
        table = Table(title="runs of this worker: " + (", ".join(
            f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
        for column in ("queue", "configuration", "seed", "key", "outcome", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for r in records:
            table.add_row(r.study, r.configuration, str(r.seed), r.key, r.outcome,
                          f"{r.seconds:.1f}")
        out_console.print(table)
    if any(r.outcome in ("failed", "error") for r in records):
        raise typer.Exit(1)
