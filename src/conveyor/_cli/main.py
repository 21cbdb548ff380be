"""``conveyor`` command group."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conveyor")
def cli() -> None:
    """Fetch-and-process pipelines: async I/O, threads and processes, resumable."""


def main() -> None:
    cli()
