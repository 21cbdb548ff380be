"""How the command line reports a user's mistake: one line, the fix in it, exit code 2."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

USAGE_EXIT = 2
# The run ended with items deferred (a site's long pause, a breaker, --finish-at,
# --deadline): run the same command again to finish them. 75 is EX_TEMPFAIL (sysexits.h),
# "try again later", which is what it says.
DEFERRED_EXIT = 75
INTERRUPTED_EXIT = 130


class CliError(click.ClickException):
    """A mistake the user can fix; shown as ``conveyor: error: ...`` and exit code 2."""

    exit_code = USAGE_EXIT


def fail(message: str) -> NoReturn:
    raise CliError(message)


def show_error(message: str) -> None:
    sys.stderr.write(f"conveyor: error: {message}\n")
