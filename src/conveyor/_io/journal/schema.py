"""The journal's file format: its SQL text, its header, and the shipped empty journal.

One SQLite file, in WAL mode (a rollback journal on a network filesystem: ``journal.py``).
Tables::

    meta(name, value)                 fingerprint, sink position, counters, and "holds":
                                      the services' holds ({host: [reason, until]},
                                      ``ports.Holds``), written with each commit
    spans(start, stop)                finished input positions, as [start, stop) runs
    keys(key, state, kind, attempts, until)
                                      finished keys, when a key= function gives them
                                      (with position keys, the default, only failures
                                      and deferred keys):
                                      key: as ``keys.encode_key`` stores it
                                      state: 1 done, 2 failed, 3 filtered, 4 deferred
                                      kind, attempts: of a failure; a deferral's reason
                                      until: a deferral's (Unix time), or NULL

A new journal is a copy of ``empty.journal`` (next to this package), which ``empty_journal``
makes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path

from ..._errors import JournalError
from .._files import describe_oserror

APPLICATION_ID = 0x436F6E76  # "Conv", in the SQLite header at offset 68
SCHEMA_VERSION = 4  # PRAGMA user_version, at offset 60
# Formats this conveyor reads. Format 4 added deferred keys (state 4, with ``until``) and
# the "deferred" and "holds" meta rows: a format-3 journal is brought up to it when opened
# (``UPGRADE_3``), after which an older conveyor, which would take a deferred key for
# finished, refuses it.
READABLE = (3, SCHEMA_VERSION)

DONE, FAILED, FILTERED, DEFERRED = 1, 2, 3, 4
STATES = {"done": DONE, "failed": FAILED, "filtered": FILTERED, "deferred": DEFERRED}
COUNTERS = ("done", "failed", "filtered", "deferred")
_SQLITE_MAGIC = b"SQLite format 3\x00"
EMPTY_JOURNAL = Path(__file__).parent.with_name("empty.journal")  # see empty_journal()

RESTART_HINT = "pass restart=True (--restart) to replace it, or choose another journal path"

# Every SQLite call from a thread lets go of the GIL and must win it back from a busy event
# loop, which can take the interpreter's whole switch interval (5 ms). So each batch is one
# call: keys travel as one JSON array, SQLite unpacks it without the GIL, and a query
# answers in one row of JSON. A key stored as a blob travels as {"b": its JSON text}, cast
# back to the same bytes (see ``keys``).
KEY_IN = "CASE type WHEN 'object' THEN CAST(json_extract(value, '$.b') AS BLOB) ELSE value END"
KEY_OUT = "CASE typeof(key) WHEN 'blob' THEN json_object('b', CAST(key AS TEXT)) ELSE key END"

# ``record`` is one INSERT into a view, whose trigger writes the keys, the spans and the
# meta rows: one statement, so one transaction and one call. Each argument is a JSON array:
# done: keys that finished plainly; rows: [key, state, kind, attempts] for the others
# (a row already there is an earlier run's failure, retried, as the keys were admitted
# in this run); spans: [start, stop] of finished positions, new to the journal, so no
# span overlaps another; meta: [name, value] pairs.
SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE keys (key BLOB PRIMARY KEY, state INTEGER NOT NULL, kind TEXT,"
    " attempts INTEGER, until REAL) WITHOUT ROWID",
    "CREATE TABLE spans (start INTEGER PRIMARY KEY, stop INTEGER NOT NULL)",
    "CREATE VIEW record (done, rows, spans, meta) AS SELECT NULL, NULL, NULL, NULL",
    f"""CREATE TRIGGER record INSTEAD OF INSERT ON record BEGIN
    INSERT INTO keys (key, state) SELECT {KEY_IN}, {DONE} FROM json_each(NEW.done) WHERE true
        ON CONFLICT (key) DO UPDATE SET state = excluded.state, kind = NULL, attempts = NULL,
            until = NULL;
    INSERT INTO keys (key, state, kind, attempts, until)
        SELECT CASE json_type(value, '$[0]') WHEN 'object'
            THEN CAST(json_extract(value, '$[0].b') AS BLOB) ELSE json_extract(value, '$[0]')
            END, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
            json_extract(value, '$[3]'), json_extract(value, '$[4]')
        FROM json_each(NEW.rows) WHERE true
        ON CONFLICT (key) DO UPDATE SET state = excluded.state, kind = excluded.kind,
            attempts = excluded.attempts, until = excluded.until;
    INSERT INTO spans (start, stop)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(NEW.spans);
    INSERT OR REPLACE INTO meta (name, value)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(NEW.meta);
END""",
)
RECORD = "INSERT INTO record (done, rows, spans, meta) VALUES (?, ?, ?, ?)"
# A format-3 journal brought up to format 4, in one transaction: the ``until`` column and
# the trigger that writes it (the trigger's text is the one ``SCHEMA`` makes).
UPGRADE_3 = (
    "ALTER TABLE keys ADD COLUMN until REAL",
    "DROP TRIGGER record",
    SCHEMA[4],
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

# Finished keys among a batch, as [[key, state], ...].
LOOKUP = (
    f"SELECT json_group_array(json_array({KEY_OUT}, state)) FROM keys"
    f" WHERE key IN (SELECT {KEY_IN} FROM json_each(?))"
)
# The spans that overlap positions [?1, ?2), as [[start, stop], ...]: spans never overlap
# each other, so they are the last one starting at or before ?1, and those starting inside.
SPANS = (
    "SELECT json_group_array(json_array(start, stop)) FROM spans WHERE start < ?2"
    " AND start >= coalesce((SELECT max(start) FROM spans WHERE start <= ?1), ?1)"
)
FAILED_IN = (
    f"SELECT json_group_array(key) FROM keys WHERE state = {FAILED} AND key >= ? AND key < ?"
)
# Positions in [?1, ?2) to admit again, as [[key, state], ...]: deferred ones always,
# failed ones with retry_failed.
AGAIN_IN = (
    "SELECT json_group_array(json_array(key, state)) FROM keys"
    f" WHERE state IN ({FAILED}, {DEFERRED}) AND key >= ? AND key < ?"
)
FAILED_KEYS = f"SELECT key, kind, attempts FROM keys WHERE state = {FAILED}"
DEFERRED_KEYS = f"SELECT key, kind, until FROM keys WHERE state = {DEFERRED}"
META = "SELECT name, value FROM meta"
EXTENT = "SELECT (SELECT max(stop) FROM spans), EXISTS (SELECT 1 FROM keys)"


def read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(100)
    except IsADirectoryError:
        raise JournalError(
            f"journal {path} is a folder, not a conveyor journal; {RESTART_HINT}"
        ) from None
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {describe_oserror(exc)}") from exc


def check_header(path: Path, header: bytes) -> None:
    """Refuse a file that is not our journal, before SQLite touches (or creates) anything."""
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise JournalError(f"{path} is not a conveyor journal (not an SQLite file); {RESTART_HINT}")
    application_id = int.from_bytes(header[68:72], "big", signed=True)
    if application_id != APPLICATION_ID:
        raise JournalError(
            f"{path} is not a conveyor journal (an SQLite database of another program); "
            f"{RESTART_HINT}"
        )
    version = int.from_bytes(header[60:64], "big", signed=True)
    if version not in READABLE:
        raise JournalError(
            f"journal {path} has format {version}, this conveyor reads format "
            f"{SCHEMA_VERSION}; finish that job with the conveyor that began it, or "
            f"{RESTART_HINT}"
        )


def remove(path: Path) -> None:
    if path.is_dir():
        raise JournalError(f"journal {path} is a folder; choose another journal path")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def create(path: Path, *, wal: bool = True) -> None:
    """Write a new, empty journal atomically: a copy of ``empty.journal``, renamed into
    place. Its job's fingerprint is stored with its first commit. ``wal=False``: marked
    for a rollback journal instead (a network filesystem: ``_io/filesystems.py``)."""
    image = EMPTY_JOURNAL.read_bytes()
    if not wal:
        # Header bytes 18 and 19 (the read and write format versions): 1 is a rollback
        # journal, 2 is WAL (what the template holds).
        image = image[:18] + b"\x01\x01" + image[20:]
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(image)
        # A write-ahead log left by a killed run of a journal since deleted would be
        # replayed into this new file: SQLite cannot tell whose it is.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def empty_journal() -> bytes:
    """What ``empty.journal`` holds: the schema and the meta rows, with no job yet.

    A new journal is a copy of that file, which costs a run less than building it with
    SQLite (~0.6 ms, most of it SQLite's first use in the process). A test checks the file
    against this; after a change to the schema, write it anew:
    ``EMPTY_JOURNAL.write_bytes(empty_journal())``.
    """
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        # The header fields the foreign-file check reads without opening SQLite.
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("BEGIN")
        for statement in SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("position", None), ("done", 0), ("failed", 0), ("filtered", 0),
             ("deferred", 0), ("duplicates", 0)],
        )  # fmt: skip
        db.execute("COMMIT")
        image = bytearray(db.serialize())
    finally:
        db.close()
    # WAL mode is kept in the file, as its read and write format versions (header bytes
    # 18 and 19) set to 2: what "PRAGMA journal_mode = WAL" writes.
    image[18:20] = b"\x02\x02"
    return bytes(image)
