"""Plugin-loading warnings on the command line: one ``bionic: warning: ...`` line each."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from bionic_core.host import log as plugin_log


class WarningLines(logging.Handler):
    """Writes each record as ``bionic: warning: <message>`` to stderr, each message once (a
    command may load the plugins more than once)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.seen:
            self.seen.add(message)
            typer.echo(f"bionic: warning: {message}", err=True)


@contextmanager
def plugin_warnings_on_stderr() -> Iterator[None]:
    """While a command runs, plugin warnings go to stderr as one line each, and only there
    (not also to handlers further up, which would print them a second time)."""
    handler, propagate = WarningLines(), plugin_log.propagate
    plugin_log.addHandler(handler)
    plugin_log.propagate = False
    try:
        yield
    finally:
        plugin_log.removeHandler(handler)
        plugin_log.propagate = propagate
