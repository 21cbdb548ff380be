"""A sharded crawl's links between shards, and the driver's question "any work left?".

Each shard owns scope units (hosts, or registrable domains with ``--scope domain``):
``shard_of(unit, shards)``. A link to a unit another shard owns goes to that shard's
inbox, one folder per shard::

    OUTDIR/_shards/inbox/00003/from-00001-<nanoseconds>-<random>.jsonl

A segment is a batch of links, one JSON array a line (``[key hex, url, depth, host]``),
written by the sending shard's journal commit before the transaction commits (to a
temporary name, synced, renamed: a reader sees all of it or nothing). Names are never
reused, so a segment a killed sender left behind (its transaction never committed) is
only links that will be sent again: a frontier ignores links it knows. The receiving
shard reads each segment it has not read in the transaction that records its name as
read (``crawl_imported`` in its journal): each segment is imported exactly once.

``CrawlWork`` is the driver's test between rounds: a shard has work while its frontier
has rows to fetch (under its page cap) or its inbox a segment it has not read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from .layout import Layout, fsync_dir

INBOX = "inbox"
IMPORTED = "CREATE TABLE IF NOT EXISTS crawl_imported (name TEXT PRIMARY KEY)"
_SUFFIX = ".jsonl"


def inbox_dir(control: str | os.PathLike[str], index: int) -> Path:
    """Shard ``index``'s inbox, in the job's control folder (``Layout.control``)."""
    return Path(control) / INBOX / f"{index:05d}"


def write_segment(folder: Path, sender: int, lines: list[bytes]) -> str:
    """Write a segment of links (JSON lines) into ``folder`` whole; its name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"from-{sender:05d}-{time.time_ns()}-{secrets.token_hex(4)}{_SUFFIX}"
    temporary = folder / f".{name}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(b"\n".join(lines) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / name)
    fsync_dir(folder)
    return name


def segments(folder: Path) -> list[str]:
    """The whole segments in an inbox, oldest first."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if name.endswith(_SUFFIX) and not name.startswith("."))


def read_segment(path: Path) -> Iterator[list[object]]:
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def encode_link(key: bytes, url: str, depth: int, host: str) -> bytes:
    return orjson.dumps([key.hex(), url, depth, host])


@dataclass(frozen=True)
class CrawlWork:
    """Whether a crawl shard that has run still has work: frontier rows to fetch (while
    under ``max_pages``, a per-shard cap) or inbox segments it has not read. Read-only:
    the driver asks between rounds, when no shard runs."""

    max_pages: int | None = None

    def __call__(self, layout: Layout, index: int) -> bool:
        if any(
            name not in _imported(layout.journal(index))
            for name in segments(inbox_dir(layout.control, index))
        ):
            return True
        pending, fetched = _frontier(layout.journal(index))
        return pending > 0 and (self.max_pages is None or fetched < self.max_pages)


def _read(journal: Path, query: str) -> list[tuple[object, ...]]:
    if not journal.exists():
        return []
    with contextlib.closing(
        sqlite3.connect(f"{journal.absolute().as_uri()}?mode=ro", uri=True)
    ) as db:
        try:
            return db.execute(query).fetchall()
        except sqlite3.OperationalError:  # no such table: nothing of it yet
            return []


def _imported(journal: Path) -> set[str]:
    return {str(name) for (name,) in _read(journal, "SELECT name FROM crawl_imported")}


def _frontier(journal: Path) -> tuple[int, int]:
    rows = _read(
        journal,
        "SELECT coalesce(sum(state IN (0, 1, 7)), 0),"
        " coalesce(sum(state IN (2, 3) AND kind = 0), 0) FROM frontier",
    )
    if not rows:
        return 0, 0
    pending, fetched = rows[0]
    return int(pending or 0), int(fetched or 0)  # type: ignore[call-overload]
