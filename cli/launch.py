"""The `bionic` console script: for the commands that train, one line at once — importing
PyTorch, MLflow and the app takes seconds — then the app."""

from __future__ import annotations

import sys

TRAINING_COMMANDS = ("run", "ablate", "tune", "worker")
SILENT = ("--help", "-h", "--quiet", "-q", "--dry-run")


def first_line(args: list[str]) -> str | None:
    """What ``bionic ARGS`` says before anything is imported, or None (a command that answers
    at once, help, ``--quiet``, ``--dry-run``)."""
    if not args or args[0] not in TRAINING_COMMANDS or any(a in SILENT for a in args):
        return None
    return f"bionic {args[0]}: starting (loading PyTorch, MLflow and the data) …"


def main() -> None:
    """Console-script entry point."""
    line = first_line(sys.argv[1:])
    if line is not None and sys.stderr.isatty():  # a log gets no line but the error, if any
        print(line, file=sys.stderr, flush=True)
    from bionic_cli.app import main as run_app

    run_app()
