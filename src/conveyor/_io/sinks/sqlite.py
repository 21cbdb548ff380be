"""``Sqlite``: one row a record in a table; the position is the highest rowid committed."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import Any, ClassVar

from ..._errors import SinkError, UsageError
from ..filesystems import sqlite_journal_mode
from ..records import dumps
from ._base import Failures, FileSink, position_field

_JOURNAL_APPLICATION_ID = 0x436F6E76  # keep in step with journal.APPLICATION_ID


def quote(name: str) -> str:
    """An SQL identifier, quoted so any text is safe as a table or column name."""
    return '"' + name.replace('"', '""') + '"'


def _value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bytes):
        return value
    # Nested values as JSON text (SQLite's json functions read it).
    return dumps(value).decode()


class Sqlite(FileSink):
    """Write each result as one row of ``table`` in an SQLite database (WAL mode).

    Columns are created as records bring new fields (``ALTER TABLE ... ADD COLUMN``), with
    no declared type, so each cell keeps its own: integers, reals, text, blobs, NULL; nested
    values are stored as JSON text. ``flush()`` commits with ``synchronous=FULL`` (fsync)
    and returns the highest rowid; resuming deletes the rows above it.

    Args:
        path: the database file (created if missing; other tables are left alone).
        table: the table for the results. Without a journal (or with ``restart``) it is
            dropped and made again.
        failures: ``"inline"`` (rows with error fields in the same table), a path for a
            separate JSON-lines file, or None.
    """

    kind: ClassVar[str] = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        table: str = "results",
        failures: Failures = "inline",
    ) -> None:
        super().__init__(path, failures=failures)
        if not isinstance(table, str) or not table or table.lower().startswith("sqlite_"):
            raise UsageError(f"Sqlite(table={table!r}): give a table name such as 'results'")
        self.table = table
        self._db: sqlite3.Connection | None = None
        self._columns: dict[str, None] = {}
        self._broken = False  # a write failed: commit nothing more

    def _options(self) -> dict[str, Any]:
        return {"table": self.table}

    def _open(self, position: Any) -> None:
        rowid = None if position is None else position_field(position, "rowid", self.kind)
        if rowid and not self.path.exists():
            raise SinkError(
                f"{self.path} is missing but the journal says rows were written to it: "
                "pass restart=True (--restart) to begin again"
            )
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db = self._db
            if db.execute("PRAGMA application_id").fetchone()[0] == _JOURNAL_APPLICATION_ID:
                raise UsageError(
                    f"Sqlite({os.fspath(self.path)!r}) is a conveyor journal; write the "
                    "results to another file"
                )
            if sqlite_journal_mode(self.path) == "wal":
                db.execute("PRAGMA journal_mode=WAL")
            else:  # a network filesystem: a rollback journal (_io/filesystems.py)
                db.execute("PRAGMA busy_timeout=30000")
                db.execute("PRAGMA journal_mode=DELETE")
            # The sink's flush() must be durable even against power loss (see docs/io.md).
            db.execute("PRAGMA synchronous=FULL")
            table = quote(self.table)
            if rowid is None:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            names = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            if rowid and not names:
                raise SinkError(
                    f"{self.path} has no table {self.table!r} but the journal says rows were "
                    "written to it: pass restart=True (--restart) to begin again"
                )
            if names and rowid is not None:
                db.execute(f"DELETE FROM {table} WHERE rowid > ?", (rowid,))
            self._columns = dict.fromkeys(names)
            self._broken = False
        except sqlite3.Error as exc:
            self._close_output()
            raise self._error("open", exc) from exc
        except BaseException:
            self._close_output()
            raise

    def _error(self, action: str, exc: sqlite3.Error) -> SinkError:
        text = str(exc)
        if "disk" in text.lower() or "full" in text.lower():
            return SinkError(
                f"cannot {action} {self.path}: {text}; free some space (or lift the file size "
                "limit) and run again to resume"
            )
        return SinkError(f"cannot {action} {self.path}: {text}")

    def _add_columns(self, names: Iterable[str]) -> None:
        assert self._db is not None
        new = [name for name in names if name not in self._columns]
        if not new:
            return
        table = quote(self.table)
        if not self._columns:
            # Columns without a declared type: each cell keeps its own type.
            self._db.execute(f"CREATE TABLE {table} ({', '.join(map(quote, new))})")
        else:
            for name in new:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {quote(name)}")
        self._columns.update(dict.fromkeys(new))

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        db = self._db
        assert db is not None
        if self._broken:
            raise SinkError(f"{self.path}: an earlier write failed; nothing more is written")
        try:
            if not db.in_transaction:
                db.execute("BEGIN")
            seen: dict[str, None] = {}
            for record in records:
                seen.update(dict.fromkeys(map(str, record)))
            self._add_columns(seen)
            names = list(seen)
            marks = ", ".join("?" * len(names))
            columns = ", ".join(map(quote, names))
            db.executemany(
                f"INSERT INTO {quote(self.table)} ({columns}) VALUES ({marks})",
                [[_value(record.get(name)) for name in names] for record in records],
            )
        except sqlite3.Error as exc:
            self._broken = True
            raise self._error("write", exc) from exc

    def _flush_output(self) -> dict[str, int]:
        db = self._db
        assert db is not None
        try:
            if self._broken:
                raise SinkError(f"{self.path}: an earlier write failed; nothing more is written")
            if db.in_transaction:
                db.execute("COMMIT")
            if not self._columns:
                return {"rowid": 0}
            row = db.execute(f"SELECT max(rowid) FROM {quote(self.table)}").fetchone()
        except sqlite3.Error as exc:
            self._broken = True
            raise self._error("write", exc) from exc
        return {"rowid": row[0] or 0}

    def _close_output(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        try:
            if db.in_transaction:
                # After a failed write, keep nothing of the batch it was part of.
                db.execute("ROLLBACK" if self._broken else "COMMIT")
        except sqlite3.Error as exc:
            if not self._broken:
                raise self._error("write", exc) from exc
        finally:
            db.close()
