"""The two Rich consoles of the `bionic` command line: tables to stdout, progress to stderr."""

from __future__ import annotations

from typing import Any

from rich.console import Console

err_console = Console(stderr=True)
out_console = Console()


def print_wide(renderable: Any) -> None:
    """Print to stdout; redirected output is not squeezed into 80 columns."""
    # A terminal keeps its own width.
    console = out_console if out_console.is_terminal else Console(width=200)
    console.print(renderable)
