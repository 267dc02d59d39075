"""The `bionic` command line: thin Typer commands over bionic_core.

This module only builds the app and mounts the commands; each command group lives in its own
``*_commands`` module, and what they share in :mod:`bionic_cli.options`.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from bionic_cli.ablate_commands import ablate
from bionic_cli.catalogue_commands import experiments_list, plugins_app
from bionic_cli.compare_commands import compare
from bionic_cli.connectome_commands import connectome_app
from bionic_cli.data_commands import data_app
from bionic_cli.evaluate_commands import evaluate
from bionic_cli.queue_commands import worker
from bionic_cli.run_commands import run
from bionic_cli.tune_commands import tune
from typer.core import TyperGroup

from bionic_core.contract.errors import BionicError
from bionic_core.host import FeatureFailure


class BionicGroup(TyperGroup):
    """Turns a user error anywhere below into one stderr line and exit status 2, and a feature
    that fails while a run trains into one line naming it and exit status 1 (its traceback is
    kept with the failed MLflow run)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BionicError as exc:
            typer.echo(f"bionic: error: {exc}", err=True)
            raise typer.Exit(2) from None
        except FeatureFailure as exc:
            typer.echo(f"bionic: run failed: {exc}", err=True)
            raise typer.Exit(FeatureFailure.exit_code) from None


app = typer.Typer(cls=BionicGroup, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,
                  help="Switch the biological features of a V1-column network on and off, "
                       "and measure what they do.")

# `bionic --help` lists the commands in this order, then the groups in theirs.
app.command()(run)
app.command("experiments")(experiments_list)
app.command()(ablate)
app.command()(compare)
app.command()(evaluate)
app.command()(tune)
app.command()(worker)
app.add_typer(plugins_app, name="plugins")
app.add_typer(data_app, name="data", help="Datasets: FER-2013 files and the built-in demo.")
app.add_typer(connectome_app, name="connectome", help="The MICrONS column connectome.")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BionicError as exc:  # raised outside a command (e.g. while building the app)
        print(f"bionic: error: {exc}", file=sys.stderr)
        sys.exit(2)
