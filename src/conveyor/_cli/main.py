"""The ``conveyor`` command: one module per sub-command, one-line errors, exit codes."""

from __future__ import annotations

import sys

import click

from .. import __version__
from .._errors import ConveyorError
from .errors import INTERRUPTED_EXIT, USAGE_EXIT, show_error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="conveyor")
def cli() -> None:
    """Fetch-and-process pipelines: async I/O, threads and processes, resumable.

    \b
    conveyor fetch urls.txt -o pages.jsonl            the main job
    conveyor crawl https://a.example/ -o pages.jsonl  follow links from a page
    conveyor demo                                     the main job on a built-in local site
    conveyor serve                                    that site alone, for trying things
    conveyor merge OUTDIR -o pages.jsonl              join the parts of a --backend ray job
    """


def _register() -> None:
    from .crawl import crawl_command
    from .demo import demo_command, serve_command
    from .fetch import fetch_command
    from .merge import merge_command

    cli.add_command(fetch_command)
    cli.add_command(crawl_command)
    cli.add_command(demo_command)
    cli.add_command(serve_command)
    cli.add_command(merge_command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one line with exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="conveyor", standalone_mode=False)
    except click.exceptions.Abort:
        sys.stderr.write("conveyor: interrupted\n")
        sys.exit(INTERRUPTED_EXIT)
    except click.ClickException as exc:
        message = exc.format_message()
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            message = f"{message} (see: {exc.ctx.command_path} --help)"
        show_error(message)
        sys.exit(exc.exit_code if exc.exit_code else USAGE_EXIT)
    except ConveyorError as exc:
        show_error(str(exc))
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:
        sys.stderr.write("conveyor: interrupted\n")
        sys.exit(INTERRUPTED_EXIT)
