"""How the command line reports a user's mistake: one line, the fix in it, exit code 2."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130


class CliError(click.ClickException):
    """A mistake the user can fix; shown as ``conveyor: error: ...`` and exit code 2."""

    exit_code = USAGE_EXIT


def fail(message: str) -> NoReturn:
    raise CliError(message)


def show_error(message: str) -> None:
    sys.stderr.write(f"conveyor: error: {message}\n")
