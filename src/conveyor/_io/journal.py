"""The resume journal: which keys are finished, and how far the sink is durable.

One SQLite file in WAL mode. Tables::

    meta(name, value)                 fingerprint, sink position, counters, admit batch
    keys(key, state, seen, kind, attempts)
                                      key: a str or int key as itself, others as JSON
                                      state: 0 admitted, 1 done, 2 failed, 3 filtered
                                      seen: the admit batch that last saw the key

``admit`` inserts each new key as *admitted* with the current batch number, so deciding
"new, already done, or a duplicate" is one indexed lookup per key in SQLite: memory stays
flat however many keys the job has. A key whose ``seen`` is later than the batch number at
open was already admitted in this run: a duplicate. ``record`` marks keys finished and
stores the sink's position in the same transaction.

Durability: ``synchronous=NORMAL``. With WAL, a committed transaction is in the WAL file
before ``COMMIT`` returns, so it survives the process being killed (SIGKILL, OOM); only
an OS crash or power loss can lose the last commits, and that only moves the journal
*back* to an earlier position, which is safe: the sink is fsynced before each ``record``,
so the output is never behind the journal, and a resume cuts it back to the journal.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .._engine.ports import KeyOutcome
from .._errors import JobMismatchError, JournalError, SinkError, UsageError
from ._files import describe_oserror

APPLICATION_ID = 0x436F6E76  # "Conv", in the SQLite header at offset 68
SCHEMA_VERSION = 1  # PRAGMA user_version, at offset 60

ADMITTED, DONE, FAILED, FILTERED = 0, 1, 2, 3
_STATES = {"done": DONE, "failed": FAILED, "filtered": FILTERED}
_COUNTERS = ("done", "failed", "filtered")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 500  # keys per SELECT ... IN (...), well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE keys (
    key BLOB PRIMARY KEY,
    state INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    kind TEXT,
    attempts INTEGER
) WITHOUT ROWID;
"""

_RESTART_HINT = "pass restart=True (--restart) to replace it, or choose another journal path"


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """What a journal records: finished keys by outcome, and duplicates in the input.

    ``duplicates`` counts input items whose key was already admitted earlier in the same
    run (the last run, if this one has admitted nothing yet).
    """

    done: int
    failed: int
    filtered: int
    duplicates: int


def _canonical(fingerprint: Mapping[str, Any]) -> str:
    try:
        data = orjson.dumps(
            dict(fingerprint),
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the job's fingerprint cannot be stored as JSON: {exc}") from exc
    return data.decode()


_INT64 = range(-(2**63), 2**63)


def _bytes_key(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    raise TypeError


def _encode_key(key: Hashable) -> str | int | bytes:
    """The key as stored: a str or an int as itself (the common, fast case), anything
    else as canonical JSON in a blob. SQLite never finds text, integer and blob values
    equal, so ``"1"``, ``1`` and ``(1,)`` stay three keys."""
    kind = type(key)
    if kind is str:
        return key  # type: ignore[return-value]
    if kind is int and key in _INT64:
        return key  # type: ignore[return-value]
    try:
        return orjson.dumps(key, default=_bytes_key)
    except TypeError as exc:
        raise UsageError(
            f"key {key!r} ({type(key).__name__}) cannot be stored in the journal; make the "
            "key= function return a str, an int, or a tuple of them"
        ) from exc


def _decode_key(stored: str | int | bytes) -> Any:
    return orjson.loads(stored) if isinstance(stored, bytes) else stored


def _read_header(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(100)
    except IsADirectoryError:
        raise JournalError(
            f"journal {path} is a folder, not a conveyor journal; {_RESTART_HINT}"
        ) from None
    except OSError as exc:
        raise JournalError(f"cannot read journal {path}: {describe_oserror(exc)}") from exc


def _check_header(path: Path, header: bytes) -> None:
    """Refuse a file that is not our journal, before SQLite touches (or creates) anything."""
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise JournalError(
            f"{path} is not a conveyor journal (not an SQLite file); {_RESTART_HINT}"
        )
    application_id = int.from_bytes(header[68:72], "big", signed=True)
    if application_id != APPLICATION_ID:
        raise JournalError(
            f"{path} is not a conveyor journal (an SQLite database of another program); "
            f"{_RESTART_HINT}"
        )
    version = int.from_bytes(header[60:64], "big", signed=True)
    if version != SCHEMA_VERSION:
        raise JournalError(
            f"journal {path} has format {version}, this conveyor reads format "
            f"{SCHEMA_VERSION}; finish that job with the conveyor that began it, or "
            f"{_RESTART_HINT}"
        )


def _remove(path: Path) -> None:
    if path.is_dir():
        raise JournalError(f"journal {path} is a folder; choose another journal path")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _create(path: Path, canonical: str) -> None:
    """Write a new, empty journal atomically: built aside, then renamed into place."""
    folder = path.parent
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=folder)
    os.close(fd)
    try:
        db = sqlite3.connect(temp, isolation_level=None)
        try:
            # The header fields are set before WAL mode, so they are in the main file and
            # the foreign-file check can read them without opening SQLite.
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("BEGIN")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [("fingerprint", canonical), ("position", None), ("batch", 0),
                 ("done", 0), ("failed", 0), ("filtered", 0), ("duplicates", 0)],
            )  # fmt: skip
            db.execute("COMMIT")
            db.execute("PRAGMA journal_mode = WAL")
        finally:
            db.close()
        with open(temp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mismatch(path: Path, stored: str, canonical: str) -> JobMismatchError:
    try:
        old = orjson.loads(stored)
    except orjson.JSONDecodeError:
        old = {}
    new = orjson.loads(canonical)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    detail = ""
    if changed:
        name = changed[0]
        was, now = orjson.dumps(old.get(name)).decode(), orjson.dumps(new.get(name)).decode()
        detail = f" ({', '.join(changed)} changed; {name} was {was[:100]}, now {now[:100]})"
    return JobMismatchError(
        f"journal {path} records a different job{detail}. Pass restart=True (--restart) to "
        "begin again (the output is rewritten); to resume the recorded job, run it "
        "unchanged, with retry_failed=True (--retry-failed) to re-attempt only its failed keys"
    )


def open_journal(
    path: str | os.PathLike[str],
    *,
    fingerprint: Mapping[str, Any],
    restart: bool = False,
    retry_failed: bool = False,
) -> Journal:
    """Open the journal at ``path``, creating it when missing.

    Args:
        path: the journal file.
        fingerprint: what identifies the job (its source, stages, key and sink).
        restart: replace an existing journal (and so start the output afresh).
        retry_failed: admit keys that failed in earlier runs again.

    Raises:
        JobMismatchError: the journal records a job with another fingerprint.
        JournalError: the file is not a conveyor journal, or is damaged. It is left as is.
    """
    target = Path(path)
    canonical = _canonical(fingerprint)
    try:
        if restart:
            _remove(target)
        exists = target.exists()
        header = _read_header(target) if exists else b""
        if not header:  # missing, or an empty file: nothing to lose
            _create(target, canonical)
        else:
            _check_header(target, header)
    except OSError as exc:
        raise SinkError(f"cannot create journal {target}: {describe_oserror(exc)}") from exc
    return Journal(target, canonical, retry_failed=retry_failed)


class Journal:
    """An open resume journal. Implements the engine's ``Ledger``.

    Not thread-safe: use it from one thread at a time (the run's writer thread does).
    Use :func:`open_journal` to make one.
    """

    def __init__(self, path: Path, canonical: str, *, retry_failed: bool) -> None:
        self.path = path
        self.retry_failed = retry_failed
        self._broken = False
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._db.execute("PRAGMA synchronous = NORMAL")
            meta = dict(self._db.execute("SELECT name, value FROM meta"))
            stored = meta.get("fingerprint")
            if not isinstance(stored, str):
                raise JournalError(f"journal {path} has no job fingerprint; {_RESTART_HINT}")
            if stored != canonical:
                raise _mismatch(path, stored, canonical)
            position = meta.get("position")
            self._position: Any = None if position is None else orjson.loads(position)
            self._counts = {name: int(meta.get(name) or 0) for name in _COUNTERS}
            self._run_start = self._batch = int(meta.get("batch") or 0)
            self._last_duplicates = int(meta.get("duplicates") or 0)
        except (JournalError, UsageError):
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from exc
        except (ValueError, TypeError) as exc:  # meta values that are not ours
            self._db.close()
            raise JournalError(f"journal {path} is damaged ({exc}); {_RESTART_HINT}") from exc
        except BaseException:
            self._db.close()
            raise
        self._duplicates = 0
        self._closed = False

    # -- the Ledger protocol ---------------------------------------------------------------

    @property
    def sink_position(self) -> Any:
        """The sink's durable position at the last commit; None before the first."""
        return self._position

    def admit(self, keys: Sequence[Hashable]) -> list[bool]:
        """For each key, True to process it; False when finished earlier, failed earlier
        (unless ``retry_failed``), or already admitted in this run (a duplicate)."""
        if not keys:
            return []
        self._check()
        encoded = [_encode_key(key) for key in keys]
        answer = [True] * len(encoded)
        first = dict.fromkeys(encoded, 0)
        if len(first) != len(encoded):  # the same key twice in one batch
            first.clear()
            for i, code in enumerate(encoded):
                if code in first:
                    answer[i] = False
                    self._duplicates += 1
                else:
                    first[code] = i
        else:
            first = {code: i for i, code in enumerate(encoded)}
        self._batch += 1
        batch = self._batch
        db = self._db
        try:
            if not db.in_transaction:
                db.execute("BEGIN")
            before = db.total_changes
            db.executemany(
                "INSERT INTO keys (key, state, seen) VALUES (?, 0, ?) ON CONFLICT DO NOTHING",
                [(code, batch) for code in first],
            )
            if db.total_changes - before != len(first):
                self._admit_known(first, answer, batch)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        return answer

    def _admit_known(self, first: dict[Any, int], answer: list[bool], batch: int) -> None:
        """Decide for keys that were in the journal before this batch."""
        db, updates = self._db, []
        codes = list(first)
        for start in range(0, len(codes), _CHUNK):
            chunk = codes[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT key, state, seen FROM keys WHERE key IN ({marks}) AND seen != ?",
                [*chunk, batch],
            ).fetchall()
            for code, state, seen in rows:
                i = first[code]
                if seen > self._run_start:  # admitted earlier in this run
                    answer[i] = False
                    self._duplicates += 1
                    continue
                if state == FAILED and self.retry_failed:
                    state = ADMITTED
                    self._counts["failed"] -= 1
                answer[i] = state == ADMITTED  # not finished in an earlier run: run it again
                updates.append((state, batch, code))
        db.executemany("UPDATE keys SET state = ?, seen = ? WHERE key = ?", updates)

    def record(self, outcomes: Sequence[KeyOutcome], position: Any) -> None:
        """Mark ``outcomes``' keys finished and store the sink's ``position``, atomically."""
        self._check()
        try:
            stored = None if position is None else orjson.dumps(position).decode()
        except TypeError as exc:
            raise UsageError(f"sink position {position!r} is not JSON: {exc}") from exc
        groups: dict[int, list[tuple[Any, int, int, str | None, int]]] = {}
        batch = self._batch
        for outcome in outcomes:
            state = _STATES[outcome.status]
            groups.setdefault(state, []).append(
                (_encode_key(outcome.key), state, batch, outcome.kind, outcome.attempts)
            )
        db = self._db
        try:
            if not db.in_transaction:
                db.execute("BEGIN")
            for state, rows in groups.items():
                before = db.total_changes
                # A key finishes once: only an admitted key (state 0) changes.
                db.executemany(
                    "INSERT INTO keys (key, state, seen, kind, attempts) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET state = excluded.state,"
                    " kind = excluded.kind, attempts = excluded.attempts WHERE keys.state = 0",
                    rows,
                )
                name = _COUNTERS[state - 1]
                self._counts[name] += db.total_changes - before
            self._commit(stored)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        self._position = position

    def _commit(self, stored_position: str | None) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
            [
                ("position", stored_position),
                ("batch", self._batch),
                ("duplicates", self._duplicates_now()),
                *self._counts.items(),
            ],
        )
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Commit what admit() changed since the last record() and close the file."""
        if self._closed:
            return
        self._closed = True
        db = self._db
        try:
            if db.in_transaction and not self._broken:
                position = self._position
                self._commit(None if position is None else orjson.dumps(position).decode())
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        finally:
            db.close()

    # -- reading -------------------------------------------------------------------------

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(
            done=self._counts["done"],
            failed=self._counts["failed"],
            filtered=self._counts["filtered"],
            duplicates=self._duplicates_now(),
        )

    def failed_keys(self) -> Iterator[tuple[Any, str | None, int | None]]:
        """``(key, kind, attempts)`` for each failed key (keys as JSON gives them back:
        tuples become lists)."""
        self._check()
        try:
            rows = self._db.execute(f"SELECT key, kind, attempts FROM keys WHERE state = {FAILED}")
            for code, kind, attempts in rows:
                yield _decode_key(code), kind, attempts
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {os.fspath(self.path)!r} {self.statistics()}>"

    # -- errors ----------------------------------------------------------------------------

    def _duplicates_now(self) -> int:
        return self._duplicates if self._batch > self._run_start else self._last_duplicates

    def _check(self) -> None:
        if self._closed:
            raise UsageError(f"journal {self.path} is closed")
        if self._broken:
            raise JournalError(
                f"journal {self.path}: an earlier write failed; nothing more is recorded"
            )

    def _fail(self, exc: sqlite3.Error) -> Exception:
        """Roll back the open transaction: the file keeps its last commit."""
        self._broken = True
        with contextlib.suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        return self._error(exc)

    def _error(self, exc: sqlite3.Error) -> Exception:
        text = str(exc)
        lowered = text.lower()
        if "full" in lowered or "disk i/o" in lowered or "readonly" in lowered:
            return SinkError(
                f"cannot write journal {self.path}: {text}; free some space (or fix its "
                "permissions) and run again to resume"
            )
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return JournalError(f"journal {self.path} is damaged ({text}); {_RESTART_HINT}")
        return JournalError(f"journal {self.path}: {text}")
