"""What the command modules share: Typer options, config loading, progress and formatting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from bionic_cli.console import err_console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bionic_core.config import ExperimentFile, apply_overrides, resolve_features
from bionic_core.host import load_catalogue

# ---------------------------------------------------------------- shared options
ExperimentsOpt = typer.Option(None, "--experiments",
                              help="experiments file (default: $BIONIC_EXPERIMENTS, "
                                   "./experiments.toml, the installed one)")
SetOpt = typer.Option([], "--set", help="override: KEY=VALUE or FEATURE.PARAM=VALUE (repeatable)")
WithoutOpt = typer.Option([], "--without", help="turn a feature off (repeatable)")
OnlyOpt = typer.Option(None, "--only", help="exactly these features, comma-separated")
SeedOpt = typer.Option(None, "--seed", help="run with this seed")
EpochsOpt = typer.Option(None, "--epochs", help="maximum epochs")
DeviceOpt = typer.Option(None, "--device", help="auto | cpu | cuda")
DataOpt = typer.Option(None, "--data", help="built-in dataset name, FER-2013 CSV, folder, "
                       ".npz file, or a directory of npz files named by split")
TrackingOpt = typer.Option(None, "--tracking-uri",
                           help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or "
                                "sqlite:///mlflow.db)")
JsonOpt = typer.Option(False, "--json", help="print one JSON object instead of tables")
CompileOpt = typer.Option(False, "--compile", help="torch.compile the model (minutes to start; "
                          "see benchmarks/README.md for what it gains)")
PrecisionOpt = typer.Option(None, "--precision", help="fp32 (default) | bf16: bf16 autocast of "
                            "the forward pass on CUDA (the CPU stays fp32)")


# ---------------------------------------------------------------- the run configuration
def runtime_sets(compile_: bool, precision: str | None) -> list[str]:
    """``--compile`` and ``--precision`` as ``--set`` overrides of the config."""
    return [*(["compile=true"] if compile_ else []),
            *([f"precision={precision}"] if precision is not None else [])]


def load_config(experiment: str, experiments: Path | None, *, sets: list[str],
                without: list[str], only: str | None, seed: int | None, epochs: int | None,
                device: str | None, data: str | None) -> tuple[Any, Any]:
    """The resolved RunConfig of ``experiment`` with CLI overrides, and the feature catalogue."""
    catalogue = load_catalogue()
    file = ExperimentFile.load(experiments)
    config = file.config(experiment)
    only_list = [s.strip() for s in only.split(",") if s.strip()] if only is not None else None
    catalogue.require(without, "--without")
    if only_list is not None:
        catalogue.require(only_list, "--only")
    config = apply_overrides(config, sets=sets, without=without, only=only_list, seed=seed,
                             epochs=epochs, device=device, dataset=data)
    config = resolve_features(config, catalogue, f"{file.path}: experiments.{experiment}")
    return config, catalogue


# ---------------------------------------------------------------- progress
def epoch_progress(total: int, description: str) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                    console=err_console, transient=False)


def epoch_status(row: dict[str, float], *, loss: bool = True) -> str:
    """The status of a finished epoch: its loss (unless ``loss`` is false), val accuracy, time."""
    head = f"loss {row['train_loss']:.3f}  " if loss else ""
    return f"{head}val acc {100 * row['val_accuracy']:.1f} %  {row['epoch_time']:.1f}s"


def start_run_task(progress: Progress, task: Any, spec: Any, resumed_from: int | None) -> None:
    """Reset ``task`` to follow the run ``spec`` (of a sweep), resumed after an epoch or not."""
    note = f"resuming after epoch {resumed_from}" if resumed_from else ""
    progress.reset(task, total=spec.config.epochs, completed=resumed_from or 0,
                   description=f"{spec.configuration} seed {spec.seed}", status=note)


# ---------------------------------------------------------------- formatting
def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def dataset_label(name: str, is_demo: bool) -> str:
    """A dataset's name, marked when it is a demonstration set."""
    return name + (" (demonstration set, not FER-2013)" if is_demo else "")
