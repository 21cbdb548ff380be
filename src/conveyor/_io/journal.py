"""The resume journal: which keys are finished, and how far the sink is durable.

One SQLite file in WAL mode. Tables::

    meta(name, value)                 fingerprint, sink position, counters
    spans(start, stop)                finished input positions, as [start, stop) runs
    keys(key, state, kind, attempts)  finished keys, when a key= function gives them
                                      (with position keys, the default, only failures):
                                      key: a str or int key as itself, others as JSON
                                      state: 1 done, 2 failed, 3 filtered
                                      kind, attempts: of a failure

Only finished keys are written: ``stage`` puts them into an open transaction while the run
goes on (thousands at a time), and ``record`` commits them with the sink's position, so a
commit has only the last few keys left to write. ``admit`` decides "new, finished earlier, or a
duplicate" with one indexed lookup per batch of keys, plus this run's keys still in
flight (bounded by the items in flight): memory stays flat however many keys the job has,
and a fresh key costs nothing until it finishes. Every run admits its input from the start,
in order, so positions count the same in every run: a finished key whose position is not
finished is a duplicate, in whichever run its first copy finished, and each run counts all
the duplicates it reads.

Durability: ``synchronous=NORMAL``. With WAL, a committed transaction is in the WAL file
before ``COMMIT`` returns, so it survives the process being killed (SIGKILL, OOM); only
an OS crash or power loss can lose the last commits, and that only moves the journal
*back* to an earlier position, which is safe: the sink is fsynced before each ``record``,
so the output is never behind the journal, and a resume cuts it back to the journal.
A new journal is a copy of ``empty.journal``, made and synced by the writer's thread as the
run begins (``prepare``), before its first commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections import deque
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any, TypeGuard, cast

import orjson

from .._engine.ports import KeyOutcome
from .._errors import JobMismatchError, JournalError, SinkError, UsageError
from ._files import describe_oserror, fsync_file

APPLICATION_ID = 0x436F6E76  # "Conv", in the SQLite header at offset 68
SCHEMA_VERSION = 3  # PRAGMA user_version, at offset 60

DONE, FAILED, FILTERED = 1, 2, 3
_STATES = {"done": DONE, "failed": FAILED, "filtered": FILTERED}
_COUNTERS = ("done", "failed", "filtered")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_EMPTY_JOURNAL = Path(__file__).with_name("empty.journal")  # see empty_journal()

# Every SQLite call from a thread lets go of the GIL and must win it back from a busy event
# loop, which can take the interpreter's whole switch interval (5 ms). So each batch is one
# call: keys travel as one JSON array, SQLite unpacks it without the GIL, and a query
# answers in one row of JSON. A key stored as a blob travels as {"b": its JSON text}, cast
# back to the same bytes.
_KEY_IN = "CASE type WHEN 'object' THEN CAST(json_extract(value, '$.b') AS BLOB) ELSE value END"
_KEY_OUT = "CASE typeof(key) WHEN 'blob' THEN json_object('b', CAST(key AS TEXT)) ELSE key END"

# ``record`` is one INSERT into a view, whose trigger writes the keys, the spans and the
# meta rows: one statement, so one transaction and one call. Each argument is a JSON array:
# done: keys that finished plainly; rows: [key, state, kind, attempts] for the others
# (a row already there is an earlier run's failure, retried, as the keys were admitted
# in this run); spans: [start, stop] of finished positions, new to the journal, so no
# span overlaps another; meta: [name, value] pairs.
_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE keys (key BLOB PRIMARY KEY, state INTEGER NOT NULL, kind TEXT,"
    " attempts INTEGER) WITHOUT ROWID",
    "CREATE TABLE spans (start INTEGER PRIMARY KEY, stop INTEGER NOT NULL)",
    "CREATE VIEW record (done, rows, spans, meta) AS SELECT NULL, NULL, NULL, NULL",
    f"""CREATE TRIGGER record INSTEAD OF INSERT ON record BEGIN
    INSERT INTO keys (key, state) SELECT {_KEY_IN}, {DONE} FROM json_each(NEW.done) WHERE true
        ON CONFLICT (key) DO UPDATE SET state = excluded.state, kind = NULL, attempts = NULL;
    INSERT INTO keys (key, state, kind, attempts)
        SELECT CASE json_type(value, '$[0]') WHEN 'object'
            THEN CAST(json_extract(value, '$[0].b') AS BLOB) ELSE json_extract(value, '$[0]')
            END, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
            json_extract(value, '$[3]')
        FROM json_each(NEW.rows) WHERE true
        ON CONFLICT (key) DO UPDATE SET state = excluded.state, kind = excluded.kind,
            attempts = excluded.attempts;
    INSERT INTO spans (start, stop)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(NEW.spans);
    INSERT OR REPLACE INTO meta (name, value)
        SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
        FROM json_each(NEW.meta);
END""",
)
_RECORD = "INSERT INTO record (done, rows, spans, meta) VALUES (?, ?, ?, ?)"

# Finished keys among a batch, as [[key, state], ...].
_LOOKUP = (
    f"SELECT json_group_array(json_array({_KEY_OUT}, state)) FROM keys"
    f" WHERE key IN (SELECT {_KEY_IN} FROM json_each(?))"
)
# The spans that overlap positions [?1, ?2), as [[start, stop], ...]: spans never overlap
# each other, so they are the last one starting at or before ?1, and those starting inside.
_SPANS = (
    "SELECT json_group_array(json_array(start, stop)) FROM spans WHERE start < ?2"
    " AND start >= coalesce((SELECT max(start) FROM spans WHERE start <= ?1), ?1)"
)
_FAILED_IN = (
    f"SELECT json_group_array(key) FROM keys WHERE state = {FAILED} AND key >= ? AND key < ?"
)


# ``stage`` writes key rows into the open transaction once this many have gathered.
_STAGE_ROWS = 4096

_RESTART_HINT = "pass restart=True (--restart) to replace it, or choose another journal path"


@dataclass(slots=True)
class _Staged:
    """Finished keys since the last commit, which commits (or forgets) all of it at once."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    codes: list[Any] = field(default_factory=list)  # forgotten from _pending at the commit
    positions: list[int] = field(default_factory=list)  # made into spans at the commit
    done: list[Any] = field(default_factory=list)  # key rows not in the transaction yet,
    rows: list[Any] = field(default_factory=list)  # up to _STAGE_ROWS of them


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """What a journal records: finished keys by outcome, and duplicates in the input.

    ``duplicates`` counts input items whose key an earlier item of the input has, as the
    last run that read the input counted them (this run, once it has admitted keys).
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


def _fit_int64(keys: Sequence[int]) -> bool:
    return min(keys) in _INT64 and max(keys) in _INT64


def _encode_keys(keys: Sequence[Hashable]) -> tuple[list[Any], list[Any]]:
    """The keys as stored, and as they travel in JSON to SQLite."""
    kinds = set(map(type, keys))
    if kinds == {str} or (kinds == {int} and _fit_int64(cast("Sequence[int]", keys))):
        codes = list(keys)  # the common cases: as themselves, with no per-key work
        return codes, codes
    codes = [_encode_key(key) for key in keys]
    return codes, [{"b": code.decode()} if type(code) is bytes else code for code in codes]


def _spans_of(positions: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` runs covering the positions (which need not come sorted)."""
    if not positions:
        return []
    ordered = sorted(positions)  # nearly sorted already, as items finish: cheap
    count = len(ordered)
    missing = ordered[-1] - ordered[0] + 1 - count  # positions never repeat
    if not missing:
        return [(ordered[0], ordered[-1] + 1)]
    if missing * 8 > count:  # many gaps, so many short runs: one step per position
        return _short_spans(ordered)
    spans = []
    start = 0
    while start < count:
        # Along a run, position - index stays the same, and it only grows after one. So
        # the run's end is found by galloping (1, 2, 4, ... ahead) and then bisecting: a
        # run of length L costs about 2 log L steps, not L, and a short one a step or two.
        offset = ordered[start] - start
        last, step = start, 1
        while True:
            probe = last + step
            if probe >= count or ordered[probe] - probe != offset:
                beyond = min(probe, count)
                break
            last, step = probe, step * 2
        while beyond - last > 1:
            middle = (last + beyond) // 2
            if ordered[middle] - middle == offset:
                last = middle
            else:
                beyond = middle
        spans.append((ordered[start], ordered[last] + 1))
        start = last + 1
    return spans


def _short_spans(ordered: list[int]) -> list[tuple[int, int]]:
    spans = []
    start = previous = ordered[0]
    for position in ordered:
        if position > previous + 1:
            spans.append((start, previous + 1))
            start = position
        previous = position
    spans.append((start, previous + 1))
    return spans


def _stored_position(position: Any) -> str | None:
    """The sink position as the meta table keeps it: JSON text."""
    if position is None:
        return None
    try:
        return orjson.dumps(position).decode()
    except TypeError as exc:
        raise UsageError(f"sink position {position!r} is not JSON: {exc}") from exc


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


def _create(path: Path) -> None:
    """Write a new, empty journal atomically: a copy of ``empty.journal``, renamed into
    place. Its job's fingerprint is stored with its first commit."""
    image = _EMPTY_JOURNAL.read_bytes()
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
    ``_EMPTY_JOURNAL.write_bytes(empty_journal())``.
    """
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        # The header fields the foreign-file check reads without opening SQLite.
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("BEGIN")
        for statement in _SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("position", None), ("done", 0), ("failed", 0), ("filtered", 0),
             ("duplicates", 0)],
        )  # fmt: skip
        db.execute("COMMIT")
        image = bytearray(db.serialize())
    finally:
        db.close()
    # WAL mode is kept in the file, as its read and write format versions (header bytes
    # 18 and 19) set to 2: what "PRAGMA journal_mode = WAL" writes.
    image[18:20] = b"\x02\x02"
    return bytes(image)


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
        if header:
            _check_header(target, header)
        elif not target.parent.is_dir():
            raise SinkError(
                f"cannot create journal {target}: folder {target.parent} does not exist; "
                "create it, or choose another journal path"
            )
        # Else missing, or an empty file (nothing to lose): made when first written to.
    except SinkError:
        raise
    except OSError as exc:
        raise SinkError(f"cannot create journal {target}: {describe_oserror(exc)}") from exc
    return Journal(target, canonical, retry_failed=retry_failed, created=not header)


class Journal:
    """An open resume journal. Implements the engine's ``Ledger``.

    ``admit`` may run on one thread while ``record`` runs on another (a run admits on its
    journal thread and records on its writer thread): each has its own SQLite connection.
    Otherwise use it from one thread at a time. Use :func:`open_journal` to make one.
    """

    def __init__(
        self, path: Path, canonical: str, *, retry_failed: bool, created: bool = False
    ) -> None:
        self.path = path
        self.retry_failed = retry_failed
        self._canonical = canonical
        self._broken = False
        self._reader: sqlite3.Connection | None = None  # admit's own, opened on its thread
        self._reader_uri = f"{path.absolute().as_uri()}?mode=ro"
        self._position: Any = None
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._last_duplicates = 0
        self._spans_end = 0  # positions below this may be finished: others need no lookup
        # Whether the file may hold a key: until then, admit needs no lookup. Set before
        # any key row is written, and a key leaves ``_pending`` only after its row is
        # committed, so admit, checking ``_pending`` first, never misses one.
        self._keys_stored = False
        self._fingerprint_stored = not created  # else stored with the next meta rows
        # A new journal holds what the defaults above say: nothing to read. Its file and
        # the connection that writes are made on the writer's thread (see prepare).
        self._db: sqlite3.Connection | None = None if created else self._load()
        self._duplicates = 0
        self._next = 0  # the input position of the next key admitted
        self._dirty = False  # admitted since the last commit: the counters changed
        # Keys admitted in this run and not yet recorded, with their input positions: what
        # a duplicate is checked against until its first copy finishes. Bounded by the
        # items in flight.
        self._pending: dict[Any, int] = {}
        # Failed keys admitted again (retry_failed): their row still says failed until
        # they finish, so the failed counter drops then. Updated by admit and record on
        # their two threads, each with one atomic set operation.
        self._retried: set[Any] = set()
        self._positional = False  # the keys are the input positions: spans, not rows
        self._staged = _Staged()  # finished keys since the last commit
        self._closed = False

    def _load(self) -> sqlite3.Connection:
        """Open the file and read where the job stands."""
        path, db = self.path, self._connect()
        try:
            meta = dict(db.execute("SELECT name, value FROM meta"))
            spans_end, keys_stored = db.execute(
                "SELECT (SELECT max(stop) FROM spans), EXISTS (SELECT 1 FROM keys)"
            ).fetchone()
            stored = meta.get("fingerprint")
            position = meta.get("position")
            if "fingerprint" not in meta and position is None and not spans_end and not keys_stored:
                # Made by a run stopped before its first commit: nothing in it yet.
                self._fingerprint_stored = False
            elif not isinstance(stored, str):
                raise JournalError(f"journal {path} has no job fingerprint; {_RESTART_HINT}")
            elif stored != self._canonical:
                raise _mismatch(path, stored, self._canonical)
            self._position = None if position is None else orjson.loads(position)
            self._counts = {name: int(meta.get(name) or 0) for name in _COUNTERS}
            self._last_duplicates = int(meta.get("duplicates") or 0)
            self._spans_end = spans_end or 0
            self._keys_stored = bool(keys_stored)
        except (JournalError, UsageError):
            db.close()
            raise
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        except (ValueError, TypeError) as exc:  # meta values that are not ours
            db.close()
            raise JournalError(f"journal {path} is damaged ({exc}); {_RESTART_HINT}") from exc
        except BaseException:
            db.close()
            raise
        return db

    def _writer(self) -> sqlite3.Connection:
        """The connection that writes. A loaded journal has it from the start; a new one
        makes its file and opens it on first use (see prepare)."""
        if self._db is None:
            self._make_file()
            self._db = self._connect()
        return self._db

    def _make_file(self) -> None:
        try:
            _create(self.path)
            # A commit must not rest on a file that a power loss can undo. (Its name need
            # not be synced: a journal lost is a job begun again, and SQLite syncs the
            # folder as it makes the log anyway.)
            fsync_file(self.path)
        except OSError as exc:
            self._broken = True
            raise SinkError(f"cannot create journal {self.path}: {describe_oserror(exc)}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        return db

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
        if self._next_positions(keys):
            return self._admit_positions(keys)
        answer = self._admit_keys(keys, lookup=True)
        assert answer is not None
        return answer

    def admit_now(self, keys: Sequence[Hashable]) -> list[bool] | None:
        """``admit``'s answer when it needs no lookup, else None: all Python, which holds
        the GIL wherever it runs, so the event loop may as well run it. That is position
        keys past every earlier run's (the runner's default keys), and any keys while the
        file holds none (a new job, until its first keys are written)."""
        if not keys or self._closed or self._broken:
            return None
        if self._next_positions(keys):
            return self._admit_positions(keys) if keys.start >= self._spans_end else None
        if self._keys_stored:
            return None
        return self._admit_keys(keys, lookup=False)

    def _next_positions(self, keys: Sequence[Hashable]) -> TypeGuard[range]:
        """Whether the keys are the input positions that come next (the runner's default)."""
        return type(keys) is range and keys.step == 1 and keys.start == self._next

    def _admit_keys(self, keys: Sequence[Hashable], *, lookup: bool) -> list[bool] | None:
        """Decide for keys given by a key function; without ``lookup``, None when the
        file may hold some of them (then nothing has changed here)."""
        encoded, travelling = _encode_keys(keys)
        start, count = self._next, len(encoded)
        answer = [True] * count
        duplicates = 0
        pending = self._pending
        first: dict[Any, int] | None = None  # where each key is first in the batch
        if not pending.keys().isdisjoint(encoded) or len(set(encoded)) < count:
            # A key still in flight, or twice in this batch: decide key by key. (The
            # common case, checked above, runs in C.)
            first = {}
            for i, code in enumerate(encoded):
                if code in first or code in pending:
                    answer[i] = False
                    duplicates += 1
                else:
                    first[code] = i
        if lookup:
            first = self._admit_known(travelling, encoded, first, answer, start)
        elif self._keys_stored:
            # Set on the writer's thread since the check above, before a commit: a key
            # not found in ``pending`` may have left it for the file.
            return None
        self._next = start + count
        self._dirty = True
        self._duplicates += duplicates
        # Order matters for duplicates seen on this thread while record() runs on another:
        # a key enters ``pending`` before it can finish and leaves only after its row is
        # committed, so a later copy always finds it in one place or the other.
        if first is None:  # every key new to this run: all admitted
            pending.update(zip(encoded, range(start, start + count), strict=True))
        else:
            pending.update((code, start + i) for code, i in first.items() if answer[i])
        return answer

    def _admit_known(
        self,
        travelling: list[Any],
        encoded: list[Any],
        first: dict[Any, int] | None,
        answer: list[bool],
        start: int,
    ) -> dict[Any, int] | None:
        """Decide for the keys the file already holds, with one indexed lookup; returns
        ``first``, made when it was None and the file holds some of the keys."""
        if not self._keys_stored or self._db is None:  # no key committed to a file yet
            return first
        found = self._read(_LOOKUP, orjson.dumps(travelling))
        if not found:
            return first
        if first is None:  # the keys are all different
            first = dict(zip(encoded, range(len(encoded)), strict=True))
        finished = self._finished_in(start, start + len(answer))
        for stored, state in found:
            code = stored["b"].encode() if type(stored) is dict else stored
            i = first.get(code)
            if i is None:  # the same key twice in this batch: decided already
                continue
            answer[i] = False
            if not finished[i]:  # an earlier copy of the key finished, not this item
                self._duplicates += 1
            elif state == FAILED and self.retry_failed:
                answer[i] = True
                self._retried.add(code)
        return first

    def _admit_positions(self, positions: range) -> list[bool]:
        """Keys that are the input positions themselves (the runner's default) cannot
        repeat, and finished ones are kept as spans of positions: a batch costs one
        lookup on resume, and none at all past what earlier runs reached."""
        self._positional = True
        self._next = positions.stop
        if positions.start >= self._spans_end:
            return [True] * len(positions)  # past every earlier run: all new
        answer = [not done for done in self._finished_in(positions.start, positions.stop)]
        if self.retry_failed and positions.start < self._spans_end:
            base = positions.start
            for key in self._read(_FAILED_IN, base, positions.stop):
                answer[key - base] = True
                self._retried.add(key)
        return answer

    def _finished_in(self, start: int, stop: int) -> list[bool]:
        """For each input position in [start, stop): whether an earlier run finished it."""
        finished = [False] * (stop - start)
        if start >= self._spans_end:
            return finished  # past every earlier run: no lookup
        for low, high in self._read(_SPANS, start, stop):
            low, high = max(low, start) - start, min(high, stop) - start
            finished[low:high] = [True] * (high - low)
        return finished

    def _read(self, query: str, *params: Any) -> list[Any]:
        """The JSON array a query answers with, on admit's own read-only connection
        (opened on first use)."""
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self._reader_uri, uri=True, check_same_thread=False)
            (answer,) = self._reader.execute(query, params).fetchone()
            return cast("list[Any]", orjson.loads(answer))
        except sqlite3.Error as exc:
            self._broken = True  # the writer's connection is another thread's to roll back
            raise self._error(exc) from exc

    def prepare(self) -> None:
        """Make a new journal's file and open the connection that writes, before the run's
        first commit needs them: the run goes on meanwhile, so these calls (each a wait
        for the GIL on a busy run) are not in the way of that commit."""
        self._check()
        try:
            # Reads the schema and compiles the record statement (kept in the connection's
            # cache): with no rows in its arguments, it writes nothing.
            self._writer().execute(_RECORD, (None, None, None, None))
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def stage(self, outcomes: Sequence[KeyOutcome], done: Sequence[Hashable] = ()) -> None:
        """Write finished keys into the open transaction, for the next ``record`` to commit
        with the sink position that makes their results durable.

        Staged keys are neither visible nor durable before then (a crash rolls them back),
        but the work of storing them is done while the run goes on, not at the commit.
        """
        self._check()
        try:
            self._stage(outcomes, done, commit=False)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def record(
        self, outcomes: Sequence[KeyOutcome], position: Any, done: Sequence[Hashable] = ()
    ) -> None:
        """Mark keys finished (these and those staged) and store the sink's ``position``,
        atomically.

        ``done`` are keys that finished plainly, given bare (the runner's common case);
        ``outcomes`` may hold any others, and plain ones too.
        """
        self._check()
        stored = _stored_position(position)
        try:
            self._stage(outcomes, done, commit=True, position=stored)
            db = self._writer()
            if db.in_transaction:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        self._counts = self._counts_with_staged()
        codes = self._staged.codes
        self._staged = _Staged()
        if not self._positional:
            # Forgotten only now that the rows are committed (see admit); in C, not a loop.
            deque(map(self._pending.pop, codes, repeat(None)), maxlen=0)
        if self._retried:
            self._retried.difference_update(codes)
        self._position = position

    def _stage(
        self,
        outcomes: Sequence[KeyOutcome],
        done: Sequence[Hashable],
        *,
        commit: bool,
        position: str | None = None,
    ) -> None:
        """Write the keys in one statement, with the meta rows when this is the ``commit``;
        otherwise in a transaction opened for the next commit."""
        plain = list(done)
        others = []
        for outcome in outcomes:
            if outcome.status == "done":
                plain.append(outcome.key)
            else:
                others.append(outcome)
        keys = plain + [outcome.key for outcome in others] if others else plain
        retried = self._retried
        if self._positional:
            # Positions need no row when done: their spans say it. A retried failure's row
            # still says failed, so it is updated.
            done_rows: list[Any] = [key for key in plain if key in retried] if retried else []
            travelling: list[Any] = keys
            codes = keys
            positions: list[Any] = keys
        else:
            codes, travelling = _encode_keys(keys)
            done_rows = travelling[: len(plain)]
            positions = list(map(self._pending.get, codes))
        rows = [
            (key, _STATES[outcome.status], outcome.kind, outcome.attempts)
            for key, outcome in zip(travelling[len(plain) :], others, strict=True)
            # A filtered position needs no row either, unless it replaces a failure.
            if not (self._positional and outcome.status == "filtered" and key not in retried)
        ]
        # Every finished position goes into a span, except retried ones (a span of an
        # earlier run holds them already) and keys this run did not admit (no position).
        if retried:
            positions = [p for p, c in zip(positions, codes, strict=True) if c not in retried]
        if not self._positional and None in positions:  # keys this run did not admit
            positions = [p for p in positions if p is not None]
        staged = self._staged
        # Made into spans at the commit, once: a batch alone is rarely one run of them.
        staged.positions += positions
        counts = staged.counts
        counts["done"] += len(plain)
        for outcome in others:
            counts[outcome.status] += 1
        if retried:  # failures from an earlier run that are now replaced
            counts["failed"] -= sum(code in retried for code in codes)
        if not self._positional or retried:
            staged.codes += codes
        if done_rows or rows:
            self._keys_stored = True  # before the commit: see admit
        staged.done += done_rows
        staged.rows += rows
        if commit:  # record() resets what is staged once the commit is through
            self._execute(
                staged.done, staged.rows, _spans_of(staged.positions), self._meta(position)
            )
        elif len(staged.done) + len(staged.rows) >= _STAGE_ROWS:
            # Each SQLite call costs this thread a wait for the GIL: a few big ones.
            db = self._writer()
            if not db.in_transaction:
                db.execute("BEGIN")
            self._execute(staged.done, staged.rows, None, None)
            staged.done, staged.rows = [], []

    def _meta(self, position: str | None) -> list[tuple[str, Any]]:
        fingerprint = [] if self._fingerprint_stored else [("fingerprint", self._canonical)]
        return [
            *fingerprint,
            ("position", position),
            ("duplicates", self._duplicates_now()),
            *self._counts_with_staged().items(),
        ]

    def _counts_with_staged(self) -> dict[str, int]:
        staged = self._staged.counts
        return {name: count + staged[name] for name, count in self._counts.items()}

    def _execute(
        self,
        done: list[Any] | None,
        rows: list[Any] | None,
        spans: list[tuple[int, int]] | None,
        meta: list[tuple[str, Any]] | None,
    ) -> None:
        """Write keys, spans and meta rows in one statement (see ``_SCHEMA``)."""
        self._writer().execute(
            _RECORD,
            (
                orjson.dumps(done) if done else None,
                orjson.dumps(rows) if rows else None,
                orjson.dumps(spans) if spans else None,
                orjson.dumps(meta) if meta else None,
            ),
        )
        if meta:
            self._dirty = False
            self._fingerprint_stored = True

    def close(self) -> None:
        """Store the counters admit() changed since the last record() and close the file."""
        if self._closed:
            return
        self._closed = True
        try:
            # Keys staged after the last commit are not durable: forgotten.
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._staged = _Staged()
            if (self._dirty or not self._fingerprint_stored) and not self._broken:
                self._execute(None, None, None, self._meta(_stored_position(self._position)))
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        finally:
            # The reader first: the last connection to close checkpoints the WAL into the
            # file and removes it, and a read-only one cannot.
            if self._reader is not None:
                self._reader.close()
            if self._db is not None:
                self._db.close()

    # -- reading -------------------------------------------------------------------------

    def statistics(self) -> JournalStatistics:
        return JournalStatistics(
            done=self._counts["done"],
            failed=self._counts["failed"] - len(self._retried),
            filtered=self._counts["filtered"],
            duplicates=self._duplicates_now(),
        )

    def failed_keys(self) -> Iterator[tuple[Any, str | None, int | None]]:
        """``(key, kind, attempts)`` for each failed key (keys as JSON gives them back:
        tuples become lists)."""
        self._check()
        try:
            query = f"SELECT key, kind, attempts FROM keys WHERE state = {FAILED}"
            rows = self._writer().execute(query)
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
        return self._duplicates if self._next else self._last_duplicates

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
            if self._db is not None and self._db.in_transaction:
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
