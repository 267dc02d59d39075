"""How the command line reads: usage lines with arguments as ``EXPERIMENT`` (Typer writes
``{experiment}``), no ``<bool>`` after flags that take no value, and mistakes in what was typed
(an unknown option, a missing argument, a value that is no number) as one line, exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # Typer 0.2x carries its own copy of Click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older Typer runs on Click itself
    from click import exceptions as click_errors

_HELP_ERRORS = tuple(getattr(click_errors, name) for name in ("NoArgsIsHelpError",)
                     if hasattr(click_errors, name))


def usage_name(param: Any) -> str:
    """An argument as the usage line shows it: ``NAME``, ``[NAME]``, ``NAME...``."""
    name = (param.metavar or param.name or "").upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


class TidyHelp:
    """Mixed into a Typer command or group: flags show no value type, arguments are NAME."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # a flag takes no value: nothing to show after it
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        names = {param._usage_display_name(): usage_name(param)
                 for param in self.get_params(ctx) if param.param_type_name == "argument"
                 and hasattr(param, "_usage_display_name")}
        return [names.get(piece, piece) for piece in pieces]


class BionicCommand(TidyHelp, TyperCommand):
    """Every `bionic` command."""


class HelpGroup(TidyHelp, TyperGroup):
    """Every `bionic` command group."""


def command_words(ctx: Any) -> str:
    """``bionic data info``: the command of ``ctx`` however bionic was started."""
    words = []
    while ctx is not None and ctx.parent is not None:
        words.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["bionic", *reversed(words)])


def usage_error_line(exc: Any) -> str:
    """A Click usage error as ``<command>: <problem>`` on one line."""
    return f"{command_words(getattr(exc, 'ctx', None))}: {' '.join(exc.format_message().split())}"


@contextmanager
def usage_errors_in_one_line() -> Iterator[None]:
    """A mistake in the command line becomes ``bionic: error: <command>: <problem>`` and exit
    status 2 (a command given no arguments still shows its help)."""
    try:
        yield
    except _HELP_ERRORS:
        raise
    except click_errors.UsageError as exc:
        typer.echo(f"bionic: error: {usage_error_line(exc)}", err=True)
        raise typer.Exit(2) from None
