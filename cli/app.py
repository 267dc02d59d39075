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
from bionic_cli.help_format import BionicCommand, HelpGroup, usage_errors_in_one_line
from bionic_cli.plugin_warnings import plugin_warnings_on_stderr
from bionic_cli.queue_commands import worker
from bionic_cli.results_commands import results_app
from bionic_cli.run_commands import run
from bionic_cli.tune_commands import tune
from typer.core import TyperCommand

from bionic_core.contract.errors import BionicError
from bionic_core.host import FeatureFailure


class BionicGroup(HelpGroup):
    """Turns a user error anywhere below (in the command line too) into one stderr line and
    exit status 2, and a feature that fails while a run trains into one line naming it and exit
    status 1 (its traceback is kept with the failed MLflow run); a plugin that fails to load is
    one warning line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with usage_errors_in_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            with plugin_warnings_on_stderr(), usage_errors_in_one_line():
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
app.command(cls=BionicCommand)(run)
app.command("experiments", cls=BionicCommand)(experiments_list)
app.command(cls=BionicCommand)(ablate)
app.command(cls=BionicCommand)(compare)
app.command(cls=BionicCommand)(evaluate)
app.command(cls=BionicCommand)(tune)
app.command(cls=BionicCommand)(worker)
app.add_typer(plugins_app, name="plugins", cls=HelpGroup)
app.add_typer(data_app, name="data", cls=HelpGroup,
              help="Datasets: FER-2013 files and the built-in demo.")
app.add_typer(connectome_app, name="connectome", cls=HelpGroup,
              help="The MICrONS column connectome.")
app.add_typer(results_app, name="results", cls=HelpGroup,
              help="Published results: export runs from MLflow, rebuild tables from them.")
# their commands read like the others
for group in (plugins_app, data_app, connectome_app, results_app):
    for info in group.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = BionicCommand


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BionicError as exc:  # raised outside a command (e.g. while building the app)
        print(f"bionic: error: {exc}", file=sys.stderr)
        sys.exit(2)
