"""Reading a sharded job's parts back, in any of the four formats, and joining them.

``conveyor merge`` and a shard's own count of its records use these readers. A reader
yields plain dicts, so parts of one format can be joined into another; JSON lines into JSON
lines and CSV into CSV are joined byte for byte (CSV without the repeated header).
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .._errors import UsageError
from .plan import read_manifest

_BATCH = 4096


def iter_rows(part: Path) -> Iterator[dict[str, Any]]:
    """Every record of one part file (or Parquet folder), as a dict."""
    suffix = part.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with open(part, "rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)
    elif suffix == ".csv":
        with open(part, newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    elif suffix in (".parquet", ".pq"):
        from .._io._arrow import pyarrow_modules

        pyarrow_modules()  # the error that names the extra, when pyarrow is missing
        import pyarrow.dataset as ds

        for batch in ds.dataset(str(part), format="parquet").to_batches():
            yield from batch.to_pylist()
    elif suffix in (".db", ".sqlite", ".sqlite3"):
        db = sqlite3.connect(f"{part.absolute().as_uri()}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
                return
            for row in db.execute('SELECT * FROM "results" ORDER BY rowid'):
                yield dict(row)
        finally:
            db.close()
    else:
        raise UsageError(f"cannot read part {part}: unknown format {suffix!r}")


def count_rows(part: Path) -> int:
    """How many records a part holds (0 when it does not exist yet)."""
    if not part.exists():
        return 0
    if part.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        db = sqlite3.connect(f"{part.absolute().as_uri()}?mode=ro", uri=True)
        try:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'results'").fetchone():
                return 0
            return int(db.execute('SELECT count(*) FROM "results"').fetchone()[0])
        finally:
            db.close()
    return sum(1 for _ in iter_rows(part))


def merge_parts(outdir: Path, output: Path) -> int:
    """Join the parts the manifest of ``outdir`` names into ``output`` (its extension picks
    the format); return the number of records. Raises ``UsageError`` with the fix when the
    folder holds no finished job."""
    manifest = read_manifest(outdir)
    if manifest is None:
        if not outdir.is_dir():
            raise UsageError(f"{outdir} is not a folder; give the output folder of a sharded job")
        raise UsageError(
            f"{outdir} has no _MANIFEST.json: the job is unfinished; run the same "
            "`conveyor fetch ... --backend ray` command again to finish it, then merge"
        )
    # A shard whose slice was empty ran nothing and left no part.
    parts = [
        outdir / str(part["name"])
        for part in manifest["parts"]
        if part["records"] or (outdir / str(part["name"])).exists()
    ]
    out_suffix = output.suffix.lower()
    in_suffix = parts[0].suffix.lower() if parts else out_suffix
    total = 0
    if in_suffix == out_suffix and out_suffix in (".jsonl", ".csv"):
        with open(output, "wb") as target:
            header_written = False
            for part in parts:
                with open(part, "rb") as source:
                    if out_suffix == ".csv":
                        header = source.readline()
                        if header and not header_written:
                            target.write(header)
                            header_written = True
                    shutil.copyfileobj(source, target, 1 << 20)
        return int(manifest["records"])
    from .._io import sink_for

    if out_suffix == ".parquet" and output.exists():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    sink = sink_for(output)
    sink.open(None)
    try:
        batch: list[dict[str, Any]] = []
        for part in parts:
            for row in iter_rows(part):
                batch.append(row)
                if len(batch) >= _BATCH:
                    sink.write(batch)
                    total += len(batch)
                    batch = []
        if batch:
            sink.write(batch)
            total += len(batch)
        sink.flush()
    finally:
        sink.close()
    return total
