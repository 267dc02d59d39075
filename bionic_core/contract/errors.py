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
