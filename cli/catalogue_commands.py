"""`bionic plugins list` and `bionic experiments`: the features and the named experiments."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from bionic_cli.console import out_console, print_wide
from bionic_cli.options import ExperimentsOpt, JsonOpt
from rich.table import Table

from bionic_core.experiments import ExperimentFile
from bionic_core.host import load_catalogue

plugins_app = typer.Typer(no_args_is_help=True, help="Feature plugins.")


@plugins_app.command("list")
def plugins_list(as_json: bool = JsonOpt) -> None:
    """Every available feature with its group, source, relations, order (where features act
    in the same phase, lower runs first), what it touches, and its parameters."""
    catalogue = load_catalogue()
    entries = [catalogue.entries[name] for name in catalogue.features()]
    if as_json:
        typer.echo(json.dumps([{**e.feature.as_dict(), "hooks": list(e.hooks)}
                               for e in entries]))
        return
    table = Table(title="bionic features")
    for column in ("name", "group", "source", "requires", "conflicts", "order", "touches",
                   "parameters"):
        table.add_column(column)
    for f in (e.feature for e in entries):
        params = ", ".join(f"{p.name}={p.default!r}" for p in f.params)
        table.add_row(f.name, f.group, f.source, ", ".join(f.requires) or "—",
                      ", ".join(f.conflicts) or "—", str(f.order), ", ".join(f.touches) or "—",
                      params or "—")
    print_wide(table)


def experiments_list(experiments: Path | None = ExperimentsOpt, as_json: bool = JsonOpt) -> None:
    """The named experiments and their features."""
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
