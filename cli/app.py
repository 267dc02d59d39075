"""The `bionic` command line: thin Typer commands over bionic_core."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from bionic_core.contract.errors import BionicError

err_console = Console(stderr=True)
out_console = Console()


class BionicGroup(TyperGroup):
    """Turns a user error anywhere below into one stderr line and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BionicError as exc:
            typer.echo(f"bionic: error: {exc}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=BionicGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,
                  help="Switch the biological features of a V1-column network on and off, "
                       "and measure what they do.")
plugins_app = typer.Typer(no_args_is_help=True, help="Feature plugins.")
app.add_typer(plugins_app, name="plugins")


def _mount_subapps() -> None:
    from bionic_cli.connectome_commands import connectome_app
    from bionic_cli.data_commands import data_app
    from bionic_cli.study_commands import ablate, compare, evaluate
    from bionic_cli.tune_commands import tune, worker

    app.add_typer(data_app, name="data", help="Datasets: FER-2013 files and the built-in demo.")
    app.add_typer(connectome_app, name="connectome", help="The MICrONS column connectome.")
    app.command()(ablate)
    app.command()(compare)
    app.command()(evaluate)
    app.command()(tune)
    app.command()(worker)


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


def runtime_sets(compile_: bool, precision: str | None) -> list[str]:
    """``--compile`` and ``--precision`` as ``--set`` overrides of the config."""
    return [*(["compile=true"] if compile_ else []),
            *([f"precision={precision}"] if precision is not None else [])]


def load_config(experiment: str, experiments: Path | None, *, sets: list[str],
                without: list[str], only: str | None, seed: int | None, epochs: int | None,
                device: str | None, data: str | None) -> tuple[Any, Any]:
    """The resolved RunConfig of ``experiment`` with CLI overrides, and the feature catalogue."""
    from bionic_core.config import ExperimentFile, apply_overrides, resolve_features
    from bionic_core.host import load_catalogue

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


def epoch_progress(total: int, description: str) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                    console=err_console, transient=False)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


# ---------------------------------------------------------------- bionic run
@app.command()
def run(
    experiment: str = typer.Argument(..., help="experiment name in experiments.toml"),
    set_: list[str] = SetOpt,
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
) -> None:
    """Train one run of EXPERIMENT and record it in MLflow."""
    from bionic_core.studies.tracked_run import run_tracked
    from bionic_core.studies.tracking import Tracker
    from bionic_core.training.loop import load_run_data

    set_ = [*set_, *runtime_sets(compile_, precision)]
    config, catalogue = load_config(experiment, experiments, sets=set_, without=without,
                                    only=only, seed=seed, epochs=epochs, device=device,
                                    data=data)
    load_run_data(config)  # a bad dataset fails here, before anything is recorded
    tracker = Tracker(tracking_uri)
    tracker.experiment_id(config.experiment)  # fail on a bad tracking URI before training
    with epoch_progress(config.epochs, experiment) as progress:
        task = progress.add_task(f"{experiment} seed {config.seed}", total=config.epochs,
                                 status="")

        def on_epoch(epoch: int, row: dict[str, float]) -> None:
            progress.update(task, completed=epoch,
                            status=f"loss {row['train_loss']:.3f}  val acc "
                                   f"{100 * row['val_accuracy']:.1f} %  {row['epoch_time']:.1f}s")

        result, run_id = run_tracked(config, catalogue, tracker, on_epoch=on_epoch)
        progress.update(task, completed=config.epochs)
    summary = {"experiment": config.experiment, "run_id": run_id, "run_key": result.key,
               "status": result.status, "reason": result.reason, "device": result.device,
               "dataset": result.dataset["name"], "is_demo": result.dataset["is_demo"],
               "features": sorted(config.features), "seed": config.seed,
               "tracking_uri": tracker.uri, **result.summary()}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        table = Table(title=f"bionic run {experiment} — {result.status}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        data_label = result.dataset["name"] + (" (demonstration set, not FER-2013)"
                                               if result.dataset["is_demo"] else "")
        rows = [("dataset", data_label), ("features", ", ".join(sorted(config.features))
                                          or "none"),
                ("validation split", result.dataset["splits"]["val"]["origin"]),
                ("val accuracy", _pct(result.val.get("accuracy"))),
                ("val macro-F1", f"{result.val.get('macro_f1', 0):.4f}")]
        if result.test:
            rows += [("test split", result.dataset["splits"]["test"]["origin"]),
                     ("test accuracy", _pct(result.test["accuracy"])),
                     ("test macro-F1", f"{result.test['macro_f1']:.4f}")]
        rows += [("best epoch / run", f"{result.best_epoch} / {result.epochs_run}"),
                 ("parameters", f"{result.n_parameters:,}"),
                 ("train time", f"{result.train_seconds:.1f} s on {result.device}"),
                 ("MLflow run", f"{run_id} ({tracker.uri})")]
        if result.reason:
            rows.append(("failure", result.reason))
        for name, value in rows:
            table.add_row(name, str(value))
        out_console.print(table)
    if result.status != "finished":
        raise typer.Exit(1)


# ---------------------------------------------------------------- bionic plugins
@plugins_app.command("list")
def plugins_list(as_json: bool = JsonOpt) -> None:
    """Every available feature with its group, source, relations and parameters."""
    from bionic_core.host import load_catalogue

    features = load_catalogue().features()
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in features.values()]))
        return
    table = Table(title="bionic features")
    for column in ("name", "group", "source", "requires", "conflicts", "parameters"):
        table.add_column(column)
    for f in features.values():
        params = ", ".join(f"{p.name}={p.default!r}" for p in f.params)
        table.add_row(f.name, f.group, f.source, ", ".join(f.requires) or "—",
                      ", ".join(f.conflicts) or "—", params or "—")
    out_console.print(table)


@app.command("experiments")
def experiments_list(experiments: Path | None = ExperimentsOpt, as_json: bool = JsonOpt) -> None:
    """The named experiments and their features."""
    from bionic_core.config import ExperimentFile

    file = ExperimentFile.load(experiments)
    configs = [file.config(name) for name in file.names()]
    if as_json:
        typer.echo(json.dumps({c.experiment: c.as_dict() for c in configs}))
        return
    table = Table(title=f"experiments in {file.path}")
    for column in ("name", "dataset", "features", "epochs", "seeds", "description"):
        table.add_column(column)
    for c in configs:
        table.add_row(c.experiment, c.dataset, ", ".join(c.features) or "—", str(c.epochs),
                      ",".join(map(str, c.seeds)), c.description)
    out_console.print(table)


_mount_subapps()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BionicError as exc:  # raised outside a command (e.g. while building the app)
        print(f"bionic: error: {exc}", file=sys.stderr)
        sys.exit(2)
