"""`bionic tune`: Optuna studies of an experiment's hyper-parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.console import err_console, out_console
from bionic_cli.options import (
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentArg,
    ExperimentsOpt,
    JsonOpt,
    OnlyOpt,
    QuietOpt,
    SetOpt,
    TrackingOpt,
    WithOpt,
    WithoutOpt,
    load_config,
    number_range,
)
from bionic_cli.progress import Board
from bionic_cli.progress_observers import tune_observer
from rich.table import Table

from bionic_core.contract.errors import BionicError
from bionic_core.experiments import default_experiments_path

TrialsOpt = typer.Option(
    None, "--trials", help="trials to run now (default: the experiment's tune.trials, "
    "else 20; 0 = only report and export)", callback=number_range(0))
TimeoutOpt = typer.Option(None, "--timeout", help="stop starting new trials "
                          "after this many seconds (more than 0)",
                          callback=number_range(0, open_low=True))
StorageOpt = typer.Option("sqlite:///optuna.db", "--storage",
                          help="Optuna storage: any SQLAlchemy URL (PostgreSQL to tune "
                               "from several machines)")
StudyOpt = typer.Option(None, "--study", help="study name (default: "
                        "tune-EXPERIMENT); an existing study continues")
SamplerOpt = typer.Option(None, "--sampler", help="tpe | random | gp "
                          "(default: tune.sampler, else tpe)")
PrunerOpt = typer.Option(None, "--pruner", help="median | hyperband | none "
                         "(default: tune.pruner, else median)")
ExportOpt = typer.Option(
    None, "--export", help="write the best parameters as a named experiment into this "
    "TOML file (e.g. experiments.tuned.toml; appended when it exists)")
ExportNameOpt = typer.Option(None, "--export-name",
                             help="name of the exported experiment "
                                  "(default: EXPERIMENT_tuned)")
SearchOpt = typer.Option(
    None, "--search", help="explore only these parameters, comma-separated (lr, "
    "batch_size, activation, FEATURE.PARAM); default: tune.search, else all with a range")


def tune(
    experiment: str = ExperimentArg,
    trials: int | None = TrialsOpt,
    timeout: float | None = TimeoutOpt,
    storage: str = StorageOpt,
    study: str | None = StudyOpt,
    sampler: str | None = SamplerOpt,
    pruner: str | None = PrunerOpt,
    export: Path | None = ExportOpt,
    export_name: str | None = ExportNameOpt,
    search: str | None = SearchOpt,
    set_: list[str] = SetOpt,
    with_: list[str] = WithOpt,
    without: list[str] = WithoutOpt,
    only: str | None = OnlyOpt,
    epochs: int | None = EpochsOpt,
    device: str | None = DeviceOpt,
    data: str | None = DataOpt,
    experiments: Path | None = ExperimentsOpt,
    tracking_uri: str | None = TrackingOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Tune EXPERIMENT's hyper-parameters with Optuna; every trial is an MLflow run.

    The search space is the core's (lr, batch_size, activation) plus every enabled feature's
    parameter ranges, narrowed or fixed by the experiment's `tune` table. Rerunning continues
    the same study. Watch it with `optuna-dashboard STORAGE_URL`.
    """
    with Board(quiet=quiet) as board:
        board.phase(f"loading experiment {experiment} and its features …")
        from bionic_core.studies.tracking import Tracker
        from bionic_core.training.loop import load_run_data

        # The exported experiment keeps the file's epochs: --epochs is a tuning budget.
        config, catalogue = load_config(experiment, experiments, sets=set_, without=without,
                                        only=only, seed=None, epochs=None, device=device,
                                        data=data, with_=with_)
        config = _narrow_search(config, search)
        options, space = _search_space(config, catalogue, experiment, experiments)
        base = _tuning_budget(config, epochs if epochs is not None else options.get("epochs"))
        n_trials = trials if trials is not None else options.get("trials", 20)
        board.phase(f"loading data {base.dataset} …")
        load_run_data(base)  # a bad dataset fails here, before the study is touched
        tracker = Tracker(tracking_uri)
        board.phase(f"opening the study in {storage} and MLflow {tracker.uri} …")
        tuning = _open_study(base, catalogue, tracker, space, options, experiment=experiment,
                             storage=storage, study=study, sampler=sampler, pruner=pruner)
        board.start_sweep(f"study {experiment}", n_trials)
        board.phase("")
        result = tuning.optimize(n_trials, timeout,
                                 observer=tune_observer(board, base.epochs))
    name = export_name or f"{experiment}_tuned"
    exported = (None if export is None else
                _export_best(export, name, config, catalogue, space, result, experiment,
                             base.epochs))
    if as_json:
        typer.echo(json.dumps(_tune_summary(result, tracker, exported), default=str))
    else:
        _print_tune_report(result, tracker, exported, name)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items())


# ---------------------------------------------------------------- the study
def _narrow_search(config: Any, search: str | None) -> Any:
    """``--search a,b``: explore only these parameters (the experiment's tune.search)."""
    if search is None:
        return config
    names = [n.strip() for n in search.split(",") if n.strip()]
    return config.replace(tune={**config.tune, "search": names})


def _search_space(config: Any, catalogue: Any, experiment: str,
                  experiments: Path | None) -> tuple[dict[str, Any], Any]:
    """The experiment's tune options and the search space they narrow."""
    from bionic_core.studies.tuning import build_search_space, tune_options

    path = experiments or default_experiments_path()
    where = f"{path}: experiments.{experiment}.tune"
    options = tune_options(config, where)
    return options, build_search_space(config, catalogue, where)


def _tuning_budget(config: Any, epochs: int | None) -> Any:
    """The config the trials train: ``--epochs`` (else the tune table's ``epochs``) replaces
    the experiment's epochs."""
    base = config.replace(epochs=epochs) if epochs is not None else config
    if epochs is not None and epochs < 1:
        raise BionicError(f"--epochs {epochs}: expected at least 1")
    return base


def _open_study(base: Any, catalogue: Any, tracker: Any, space: Any, options: dict[str, Any],
                *, experiment: str, storage: str, study: str | None, sampler: str | None,
                pruner: str | None) -> Any:
    """Open (or continue) the Optuna study; the options win over the experiment's tune table."""
    from bionic_core.studies.tuning import default_study_name, open_tuning

    return open_tuning(base, catalogue, tracker, space, storage_url=storage,
                       study_name=study or default_study_name(experiment),
                       sampler=sampler or options.get("sampler", "tpe"),
                       pruner=pruner or options.get("pruner", "median"),
                       metric=options.get("metric", "val_accuracy"))


def _export_best(export: Path, name: str, config: Any, catalogue: Any, space: Any,
                 result: Any, experiment: str, epochs: int) -> Path:
    """`--export`: write the best trial's parameters as experiment ``name``; the file."""
    from bionic_core.studies.tuning import best_config, export_experiment

    if result.best is None:
        raise BionicError(f"--export {export}: no trial of study {result.study_name} has "
                          "completed yet; nothing to export")
    best = best_config(config, space, result.best)
    note = (f"study {result.study_name} in {result.storage}, trial {result.best.number}: "
            f"{result.metric} {result.best.value:.4f} (trained {epochs} epochs)")
    return export_experiment(export, name, best.replace(
        description=f"{experiment} with the parameters tuned in study {result.study_name}"),
        catalogue, note)


# ---------------------------------------------------------------- the report
def _tune_summary(result: Any, tracker: Any, exported: Path | None) -> dict[str, Any]:
    """The JSON document of `bionic tune --json`."""
    best = result.best
    return {
        "study": result.study_name, "storage": result.storage,
        "parent_run_id": result.parent_run_id, "tracking_uri": tracker.uri,
        "metric": result.metric, "counts": result.counts(), "new_trials": result.new_trials,
        "best": None if best is None else {
            "trial": best.number, "value": best.value, "params": best.params,
            "run_id": best.user_attrs.get("mlflow_run_id")},
        "export": None if exported is None else str(exported)}


def _print_tune_report(result: Any, tracker: Any, exported: Path | None, name: str) -> None:
    best = result.best
    out_console.print(_trials_table(result))
    if best is not None:
        out_console.print(f"best: trial {best.number}, {result.metric} {best.value:.4f}: "
                          + _params_text(best.params))
    err_console.print(f"MLflow parent run {result.parent_run_id} in {tracker.uri}; watch the "
                      f"study with: optuna-dashboard {result.storage}")
    if exported is not None:
        err_console.print(f"exported experiments.{name} to {exported}: "
                          f"bionic run {name} --experiments {exported}")


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
                      _params_text(t.params))
    return table
