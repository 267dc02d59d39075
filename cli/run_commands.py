"""`bionic run`: train one run of an experiment and record it in MLflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from bionic_cli.console import out_console
from bionic_cli.options import (
    CompileOpt,
    DataOpt,
    DeviceOpt,
    EpochsOpt,
    ExperimentArg,
    ExperimentsOpt,
    JsonOpt,
    OnlyOpt,
    PrecisionOpt,
    QuietOpt,
    SeedOpt,
    SetOpt,
    TrackingOpt,
    WithOpt,
    WithoutOpt,
    dataset_label,
    load_config,
    pct,
    runtime_sets,
)
from bionic_cli.progress import Board
from rich.table import Table


def run(
    experiment: str = ExperimentArg,
    set_: list[str] = SetOpt,
    with_: list[str] = WithOpt,
    without: list[str] = WithoutOpt,
    only: str | None = OnlyOpt,
    seed: int | None = SeedOpt,
    epochs: int | None = EpochsOpt,
    device: str | None = DeviceOpt,
    data: str | None = DataOpt,
    experiments: Path | None = ExperimentsOpt,
    tracking_uri: str | None = TrackingOpt,
    compile_: bool = CompileOpt,
    precision: str | None = PrecisionOpt,
    as_json: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Train one run of EXPERIMENT and record it in MLflow."""
    with Board(quiet=quiet) as board:
        board.phase(f"loading experiment {experiment} and its features …")
        from bionic_core.studies.tracking import Tracker
        from bionic_core.training.loop import load_run_data

        set_ = [*set_, *runtime_sets(compile_, precision)]
        config, catalogue = load_config(experiment, experiments, sets=set_, without=without,
                                        only=only, seed=seed, epochs=epochs, device=device,
                                        data=data, with_=with_)
        board.phase(f"loading data {config.dataset} …")
        load_run_data(config)  # a bad dataset fails here, before anything is recorded
        tracker = Tracker(tracking_uri)
        board.phase(f"opening MLflow {tracker.uri} …")
        tracker.experiment_id(config.experiment)  # fail on a bad tracking URI before training
        result, run_id = _train(experiment, config, catalogue, tracker, board)
    if as_json:
        typer.echo(json.dumps(_summary(config, result, run_id, tracker)))
    else:
        out_console.print(_result_table(experiment, config, result, run_id, tracker))
    if result.status != "finished":
        raise typer.Exit(1)


def _train(experiment: str, config: Any, catalogue: Any, tracker: Any,
           board: Board) -> tuple[Any, str]:
    """Train and record the run on ``board``; its result and MLflow run id."""
    from bionic_core.studies.tracked_run import run_tracked

    key = config.key()
    board.run_started(key, f"{experiment} seed {config.seed}", config.epochs)
    board.phase("")
    result, run_id = run_tracked(
        config, catalogue, tracker, on_epoch=lambda epoch, row: board.epoch(key, epoch, row),
        on_batch=lambda epoch, done, batches: board.batch(key, epoch, done, batches))
    board.run_finished(key)
    return result, run_id


def _summary(config: Any, result: Any, run_id: str, tracker: Any) -> dict[str, Any]:
    """The JSON document of `bionic run --json`."""
    return {"experiment": config.experiment, "run_id": run_id, "run_key": result.key,
            "status": result.status, "reason": result.reason, "device": result.device,
            "dataset": result.dataset["name"], "is_demo": result.dataset["is_demo"],
            "features": sorted(config.features), "seed": config.seed,
            "tracking_uri": tracker.uri, **result.summary()}


def _result_table(experiment: str, config: Any, result: Any, run_id: str,
                  tracker: Any) -> Table:
    table = Table(title=f"bionic run {experiment} — {result.status}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in _result_rows(config, result, run_id, tracker):
        table.add_row(name, str(value))
    return table


def _result_rows(config: Any, result: Any, run_id: str, tracker: Any) -> list[tuple[str, Any]]:
    rows = [("dataset", dataset_label(result.dataset["name"], result.dataset["is_demo"])),
            ("features", ", ".join(sorted(config.features)) or "none"),
            ("validation split", result.dataset["splits"]["val"]["origin"]),
            ("val accuracy", pct(result.val.get("accuracy"))),
            ("val macro-F1", f"{result.val.get('macro_f1', 0):.4f}")]
    primary = result.dataset.get("primary_test")
    for split, metrics in result.tests.items():  # each test split with its origin
        mark = " (primary: final_test_*)" if split == primary and len(result.tests) > 1 else ""
        rows += [(f"{split} split{mark}", result.dataset["splits"][split]["origin"]),
                 (f"{split} accuracy", pct(metrics["accuracy"])),
                 (f"{split} macro-F1", f"{metrics['macro_f1']:.4f}")]
    rows += [("best epoch / run", f"{result.best_epoch} / {result.epochs_run}"),
             ("parameters", f"{result.n_parameters:,}"),
             ("train time", f"{result.train_seconds:.1f} s on {result.device}"),
             ("MLflow run", f"{run_id} ({tracker.uri})")]
    if result.reason:
        rows.append(("failure", result.reason))
    return rows
