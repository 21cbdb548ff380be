"""``conveyor merge OUTDIR -o FILE``: join the parts of a sharded job into one file."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import fail


@click.command("merge")
@click.argument("outdir", metavar="OUTDIR")
@click.option(
    "-o",
    "--output",
    required=True,
    help="The joined file: .jsonl .csv .parquet .db/.sqlite (the extension picks the format).",
)
def merge_command(outdir: str, output: str) -> None:
    """Join the parts of a job run with --backend ray (OUTDIR) into one file.

    Only a finished job can be joined: one whose OUTDIR holds _MANIFEST.json.
    """
    from .._errors import UsageError
    from .._shards.parts import merge_parts

    target = Path(output)
    if not target.resolve().parent.is_dir():
        fail(f"cannot write {output}: folder {target.resolve().parent} does not exist")
    try:
        records = merge_parts(Path(outdir), target)
    except UsageError as exc:
        fail(str(exc))
    click.echo(f"merged {records:,} records into {output}", err=True)
