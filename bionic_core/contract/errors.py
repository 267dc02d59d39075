"""User-caused errors: one clear line, exit status 2, no traceback."""

from __future__ import annotations


class BionicError(Exception):
    """An error the user can fix (bad file, bad config, unknown feature, ...).

    The CLI prints ``str(error)`` as one line on stderr and exits with status 2.
    Messages name the file (and row / key) first, then the problem.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message``: an exception as one line for a table or a tag."""
    return f"{type(exc).__name__}: {first_line(exc)}"
