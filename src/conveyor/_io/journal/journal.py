"""The resume journal: which keys are finished, and how far the sink is durable.

One SQLite file (its tables: see ``schema``), in WAL mode, or with a rollback journal on a
network filesystem (``_io/filesystems.py``, docs/io.md). Only finished keys are written:
``stage`` puts them into an open transaction while the run goes on (thousands at a time),
and ``record`` commits them with the sink's position, so a commit has only the last few keys
left to write. ``admit`` decides "new, finished earlier, or a duplicate" with one indexed
lookup per batch of keys, plus this run's keys still in flight (bounded by the items in
flight): memory stays flat however many keys the job has, and a fresh key costs nothing
until it finishes. Every run admits its input from the start, in order, so positions count
the same in every run: a finished key whose position is not finished is a duplicate, in
whichever run its first copy finished, and each run counts all the duplicates it reads. How
keys are admitted and kept depends on what they are (see ``strategies``).

Durability: ``synchronous=NORMAL``. With WAL, a committed transaction is in the WAL file
before ``COMMIT`` returns (with a rollback journal, in the database file), so it survives
the process being killed (SIGKILL, OOM); only
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
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard, cast

import orjson

from ..._engine.ports import Holds, KeyOutcome, Taken
from ..._errors import JobMismatchError, JournalError, SinkError, UsageError
from .._files import describe_oserror, fsync_file
from ..filesystems import sqlite_journal_mode
from . import schema
from .hooks import HookKeys, JournalHook
from .keys import decode_key
from .schema import COUNTERS, RESTART_HINT
from .spans import spans_of
from .strategies import KeyedKeys, PositionKeys, Strategy

# ``stage`` writes key rows into the open transaction once this many have gathered.
_STAGE_ROWS = 4096


@dataclass(slots=True)
class _Staged:
    """Finished keys since the last commit, which commits (or forgets) all of it at once."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    codes: list[Any] = field(default_factory=list)  # for the strategy, at the commit
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
    deferred: int = 0  # keys left for the next run (``Deferred``), which admits them again


def _unexpired(holds: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """The holds whose time has not passed, as ``(reason, until)`` pairs."""
    now = time.time()
    kept = {}
    for key, (reason, until) in holds.items():
        if float(until) > now:
            kept[str(key)] = (str(reason), float(until))
    return kept


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


def _stored_position(position: Any) -> str | None:
    """The sink position as the meta table keeps it: JSON text."""
    if position is None:
        return None
    try:
        return orjson.dumps(position).decode()
    except TypeError as exc:
        raise UsageError(f"sink position {position!r} is not JSON: {exc}") from exc


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
    hook: JournalHook | None = None,
) -> Journal:
    """Open the journal at ``path``, creating it when missing.

    Args:
        path: the journal file.
        fingerprint: what identifies the job (its source, stages, key and sink).
        restart: replace an existing journal (and so start the output afresh).
        retry_failed: admit keys that failed in earlier runs again.
        hook: tables of the job's own, written in the journal's transactions (a crawl's
            frontier: ``hooks``); the journal then keeps no row per key.

    Raises:
        JobMismatchError: the journal records a job with another fingerprint.
        JournalError: the file is not a conveyor journal, or is damaged. It is left as is.
    """
    target = Path(path)
    canonical = _canonical(fingerprint)
    try:
        if restart:
            schema.remove(target)
        exists = target.exists()
        header = schema.read_header(target) if exists else b""
        if header:
            schema.check_header(target, header)
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
    return Journal(target, canonical, retry_failed=retry_failed, created=not header, hook=hook)


class Journal:
    """An open resume journal. Implements the engine's ``Ledger``.

    ``admit`` may run on one thread while ``record`` runs on another (a run admits on its
    journal thread and records on its writer thread): each has its own SQLite connection.
    Otherwise use it from one thread at a time. Use :func:`open_journal` to make one.
    """

    def __init__(
        self,
        path: Path,
        canonical: str,
        *,
        retry_failed: bool,
        created: bool = False,
        hook: JournalHook | None = None,
    ) -> None:
        self.path = path
        self._hook = hook
        self._attached = False  # the hook has its tables ready on the writing connection
        self.retry_failed = retry_failed
        self._canonical = canonical
        self._broken = False
        self._reader: sqlite3.Connection | None = None  # admit's own, opened on its thread
        self._reader_uri = f"{path.absolute().as_uri()}?mode=ro"
        # WAL, or a rollback journal on a network filesystem (see _io/filesystems.py).
        self._mode = sqlite_journal_mode(path)
        self._position: Any = None
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._last_duplicates = 0
        self._spans_end = 0  # positions below this may be finished: others need no lookup
        # Whether the file may hold a key: until then, admit needs no lookup. Set before
        # any key row is written, and a key leaves ``pending`` (see KeyedKeys) only after
        # its row is committed, so admit, checking ``pending`` first, never misses one.
        self._keys_stored = False
        self._fingerprint_stored = not created  # else stored with the next meta rows
        # A new journal holds what the defaults above say: nothing to read. Its file and
        # the connection that writes are made on the writer's thread (see prepare).
        self._holds: dict[str, tuple[str, float]] = {}  # kept by the last run (meta "holds")
        self._db: sqlite3.Connection | None = None if created else self._load()
        self._duplicates = 0
        self._next = 0  # the input position of the next key admitted
        self._dirty = False  # admitted since the last commit: the counters changed
        # Failed keys admitted again (retry_failed): their row still says failed until
        # they finish, so the failed counter drops then. Updated by admit and record on
        # their two threads, each with one atomic set operation.
        self._retried: set[Any] = set()
        # Deferred keys admitted again (every run does: no flag), kept as failed ones are
        # for retry_failed: their row says deferred until they end again.
        self._again: set[Any] = set()
        self._new_holds: dict[str, tuple[str, float]] | None = None  # for the next commit
        # How keys are admitted and kept: by a key function's keys (the default), or, once
        # admit is given the input positions, as spans of them.
        self._keyed = KeyedKeys(self)
        self._positions = PositionKeys(self)
        self._strategy: Strategy = self._keyed if hook is None else HookKeys()
        self._staged = _Staged()  # finished keys since the last commit
        self._closed = False

    def _load(self) -> sqlite3.Connection:
        """Open the file and read where the job stands."""
        path, db = self.path, self._connect()
        try:
            meta = dict(db.execute(schema.META))
            spans_end, keys_stored = db.execute(schema.EXTENT).fetchone()
            stored = meta.get("fingerprint")
            position = meta.get("position")
            if "fingerprint" not in meta and position is None and not spans_end and not keys_stored:
                # Made by a run stopped before its first commit: nothing in it yet.
                self._fingerprint_stored = False
            elif not isinstance(stored, str):
                raise JournalError(f"journal {path} has no job fingerprint; {RESTART_HINT}")
            elif stored != self._canonical:
                raise _mismatch(path, stored, self._canonical)
            self._position = None if position is None else orjson.loads(position)
            self._counts = {name: int(meta.get(name) or 0) for name in COUNTERS}
            self._last_duplicates = int(meta.get("duplicates") or 0)
            self._spans_end = spans_end or 0
            self._keys_stored = bool(keys_stored)
            self._holds = _unexpired(orjson.loads(meta.get("holds") or "{}"))
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version == 3:
                # Brought up to format 4 (schema.UPGRADE_3); from now on it may hold
                # deferred keys, which an older conveyor would take for finished.
                db.execute("BEGIN IMMEDIATE")
                for statement in schema.UPGRADE_3:
                    db.execute(statement)
                db.execute("COMMIT")
        except (JournalError, UsageError):
            db.close()
            raise
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        except (ValueError, TypeError) as exc:  # meta values that are not ours
            db.close()
            raise JournalError(f"journal {path} is damaged ({exc}); {RESTART_HINT}") from exc
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
            schema.create(self.path, wal=self._mode == "wal")
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
            if self._mode != "wal":
                self._roll_back_mode(db)
        except sqlite3.Error as exc:
            db.close()
            raise self._error(exc) from exc
        return db

    @staticmethod
    def _roll_back_mode(db: sqlite3.Connection) -> None:
        """A rollback journal, for a network filesystem. Readers then hold off the writer
        (and it them) for the moment of a commit: each waits rather than fails. Normal
        locking, not exclusive: admit's own reading connection must still get in (one
        writer per journal is the fence's business in a sharded job)."""
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA journal_mode = DELETE")

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
        answer = self._keyed.admit(keys, lookup=True)
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
        return self._keyed.admit(keys, lookup=False)

    def _next_positions(self, keys: Sequence[Hashable]) -> TypeGuard[range]:
        """Whether the keys are the input positions that come next (the runner's default)."""
        return type(keys) is range and keys.step == 1 and keys.start == self._next

    def _admit_positions(self, positions: range) -> list[bool]:
        self._strategy = self._positions  # from now on: spans, not rows
        return self._positions.admit(positions)

    def _finished_in(self, start: int, stop: int) -> list[bool]:
        """For each input position in [start, stop): whether an earlier run finished it."""
        finished = [False] * (stop - start)
        if start >= self._spans_end:
            return finished  # past every earlier run: no lookup
        for low, high in self._read(schema.SPANS, start, stop):
            low, high = max(low, start) - start, min(high, stop) - start
            # The query also answers the span starting at or before ``start``, which may
            # end before it: that one covers nothing here (a negative slice would cut the
            # list short instead).
            if high > low:
                finished[low:high] = [True] * (high - low)
        return finished

    def _read(self, query: str, *params: Any) -> list[Any]:
        """The JSON array a query answers with, on admit's own read-only connection
        (opened on first use)."""
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(self._reader_uri, uri=True, check_same_thread=False)
                if self._mode != "wal":
                    self._reader.execute("PRAGMA busy_timeout = 30000")
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
            self._writer().execute(schema.RECORD, (None, None, None, None))
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def stage(
        self,
        outcomes: Sequence[KeyOutcome],
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        """Write finished keys into the open transaction, for the next ``record`` to commit
        with the sink position that makes their results durable.

        Staged keys are neither visible nor durable before then (a crash rolls them back),
        but the work of storing them is done while the run goes on, not at the commit.
        ``extras`` go to the hook (``hooks``), in the same transaction.
        """
        self._check()
        try:
            if self._hook is not None:
                self._hook.stage(self._hooked(), done, outcomes, extras, commit=False)
            self._stage(outcomes, done, commit=False)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def record(
        self,
        outcomes: Sequence[KeyOutcome],
        position: Any,
        done: Sequence[Hashable] = (),
        extras: Sequence[tuple[Hashable, Any]] = (),
    ) -> None:
        """Mark keys finished (these and those staged) and store the sink's ``position``,
        atomically.

        ``done`` are keys that finished plainly, given bare (the runner's common case);
        ``outcomes`` may hold any others, and plain ones too. With a hook, what it writes
        of these keys and their ``extras`` is in the same transaction.
        """
        self._check()
        stored = _stored_position(position)
        try:
            if self._hook is not None:
                self._hook.stage(self._hooked(), done, outcomes, extras, commit=True)
            self._stage(outcomes, done, commit=True, position=stored)
            db = self._writer()
            if db.in_transaction:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc
        self._counts = self._counts_with_staged()
        codes = self._staged.codes
        self._staged = _Staged()
        self._strategy.committed(codes)
        if self._retried:
            self._retried.difference_update(codes)
        if self._again:
            self._again.difference_update(codes)
        if self._new_holds is not None:
            self._holds, self._new_holds = self._new_holds, None
        self._position = position

    def take(self, limit: int) -> Taken:
        """Items for a run this journal's hook feeds (``Ledger.take``), in the open
        transaction: what they take is given back if it is never committed."""
        self._check()
        if self._hook is None:
            raise UsageError(
                f"journal {self.path} has no items to give: it was opened without a hook"
            )
        try:
            return self._hook.take(self._hooked(), limit)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def _hooked(self) -> sqlite3.Connection:
        """The writing connection in a transaction, the hook attached to it."""
        assert self._hook is not None
        db = self._writer()
        if not db.in_transaction:
            db.execute("BEGIN")
        if not self._attached:
            self._attached = True
            retried = self._hook.attach(db, retry_failed=self.retry_failed)
            self._counts["failed"] -= min(retried, self._counts["failed"])
            # The hook gives every deferred item back to this run (a crawl's frontier
            # reopens them): none is left deferred until this run defers it again.
            self._counts["deferred"] = 0
            self._dirty = True
        return db

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
        others: list[KeyOutcome] = []
        for outcome in outcomes:
            if outcome.status == "done":
                plain.append(outcome.key)
            else:
                others.append(outcome)
        retried, again = self._retried, self._again
        # Keys admitted again (failed, deferred) are treated alike: a row and a span each
        # already.
        finished = self._strategy.finished(plain, others, retried | again if again else retried)
        staged = self._staged
        # Made into spans at the commit, once: a batch alone is rarely one run of them.
        staged.positions += finished.positions
        counts = staged.counts
        counts["done"] += len(plain)
        for outcome in others:
            counts[outcome.status] += 1
        if retried:  # failures from an earlier run that are now replaced
            counts["failed"] -= sum(code in retried for code in finished.codes)
        if again:  # deferred keys of an earlier run that ended now (perhaps deferred again)
            counts["deferred"] -= sum(code in again for code in finished.codes)
        if finished.remember or again:
            staged.codes += finished.codes
        if finished.done_rows or finished.rows:
            self._keys_stored = True  # before the commit: see admit
        staged.done += finished.done_rows
        staged.rows += finished.rows
        if commit:  # record() resets what is staged once the commit is through
            self._execute(
                staged.done, staged.rows, spans_of(staged.positions), self._meta(position)
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
        holds = self._new_holds
        if holds is not None:
            fingerprint.append(("holds", orjson.dumps(holds).decode()))
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
        """Write keys, spans and meta rows in one statement (see ``schema.SCHEMA``)."""
        self._writer().execute(
            schema.RECORD,
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
            if self._hook is not None:
                self._hook.close()
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
            deferred=self._counts["deferred"] - len(self._again),
        )

    def deferred_keys(self) -> Iterator[tuple[Any, str | None, float | None]]:
        """``(key, reason, until)`` for each key left deferred (keys as JSON gives them
        back; ``until``: a Unix time, or None)."""
        self._check()
        try:
            rows = self._writer().execute(schema.DEFERRED_KEYS)
            for code, kind, until in rows:
                yield decode_key(code), kind, until
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # -- holds (``ports.KeepsHolds``) --------------------------------------------------------

    def hold(self, holds: Holds) -> None:
        """The services' holds now: written with the next ``record``, in its transaction,
        replacing those kept before (the expired ones left out)."""
        self._new_holds = _unexpired(holds)

    def held(self) -> Holds:
        """The holds the last run kept that have not expired."""
        return _unexpired(self._holds)

    def failed_keys(self) -> Iterator[tuple[Any, str | None, int | None]]:
        """``(key, kind, attempts)`` for each failed key (keys as JSON gives them back:
        tuples become lists)."""
        self._check()
        try:
            rows = self._writer().execute(schema.FAILED_KEYS)
            for code, kind, attempts in rows:
                yield decode_key(code), kind, attempts
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
            return JournalError(f"journal {self.path} is damaged ({text}); {RESTART_HINT}")
        return JournalError(f"journal {self.path}: {text}")
