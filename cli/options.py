"""What the command modules share: Typer options, numeric ranges, config loading, formatting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bionic_core.config import apply_overrides, resolve_features
from bionic_core.contract.errors import BionicError
from bionic_core.experiments import ExperimentFile
from bionic_core.host import load_catalogue


# ---------------------------------------------------------------- numeric options
def number_range(low: float | None = None, high: float | None = None, *,
                 open_low: bool = False, open_high: bool = False) -> Callable[..., Any]:
    """A Typer callback that refuses a number outside ``low``..``high`` (``open_*``: the bound
    itself too) while the command line is read, as one line: ``--epochs -3: expected at least
    1`` (exit status 2, before anything is loaded)."""
    text = _range_text(low, high, open_low, open_high)

    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return value
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            raise BionicError(f"{param.opts[0]} {value}: expected {text}")
        return value

    return check


def _range_text(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if low is not None and high is not None:
        return f"a number between {low} and {high}"
    if low is not None:
        return f"more than {low}" if open_low else f"at least {low}" if low else "0 or more"
    return f"less than {high}" if open_high else f"at most {high}"


# ---------------------------------------------------------------- shared options
ExperimentArg = typer.Argument(..., metavar="EXPERIMENT",
                               help="a named experiment (see `bionic experiments`)")


ExperimentsOpt = typer.Option(None, "--experiments",
                              help="your experiments file, read on top of the shipped one "
                                   "(default: $BIONIC_EXPERIMENTS, else ./experiments.toml)")
SetOpt = typer.Option([], "--set", help="override: KEY=VALUE or FEATURE.PARAM=VALUE (repeatable)")
WithOpt = typer.Option([], "--with", help="turn a feature on (repeatable)")
WithoutOpt = typer.Option([], "--without", help="turn a feature off (repeatable)")
OnlyOpt = typer.Option(None, "--only", help="exactly these features, comma-separated")
SeedOpt = typer.Option(None, "--seed", help="run with this seed (0 or more)",
                       callback=number_range(0))
EpochsOpt = typer.Option(None, "--epochs", help="maximum epochs (at least 1)",
                         callback=number_range(1))
QuietOpt = typer.Option(False, "--quiet", "-q", help="print only the result, no progress")
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
                device: str | None, data: str | None,
                with_: list[str] | None = None) -> tuple[Any, Any]:
    """The resolved RunConfig of ``experiment`` (the shipped experiments with the user's file on
    top) with CLI overrides, and the feature catalogue."""
    catalogue = load_catalogue()
    file = ExperimentFile.load(experiments)
    config = file.config(experiment)
    only_list = [s.strip() for s in only.split(",") if s.strip()] if only is not None else None
    catalogue.require(with_ or [], "--with")
    catalogue.require(without, "--without")
    if only_list is not None:
        catalogue.require(only_list, "--only")
    config = apply_overrides(config, sets=sets, without=without, only=only_list, seed=seed,
                             epochs=epochs, device=device, dataset=data, with_=with_ or [])
    config = resolve_features(config, catalogue,
                              f"{file.origin(experiment)}: experiments.{experiment}")
    return config, catalogue


# ---------------------------------------------------------------- formatting
def count(n: int, noun: str) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def dataset_label(name: str, is_demo: bool) -> str:
    """A dataset's name, marked when it is a demonstration set."""
    return name + (" (demonstration set, not FER-2013)" if is_demo else "")
