"""A journal's hook: tables of a job's own, written in the journal's transactions.

A run whose source is its ledger (``_engine.ports.Feed``: a crawl, whose frontier is
its work) keeps its items in tables beside the journal's, through a ``JournalHook``
given to ``open_journal``. The journal calls it on its writing connection, inside the
transaction it is about to commit, so what the hook writes is committed with the keys
and the sink's position, or not at all:

    attach(db, retry_failed)    once, before anything else is written (a transaction is
                                open): make the tables, give back what a killed run
                                had taken, add what the job starts from
    take(db, limit)             items for the run (``Ledger.take``), handed out once
    stage(db, done, others, extras, commit)
                                finished keys and what their items carried
                                (``ports.Carry``); ``commit``: this is the transaction
                                ``record`` commits
    close()                     the journal is closing

With a hook the journal keeps no row per key (``HookKeys``): the hook's tables say which
items are done; the journal keeps the counters, the fingerprint and the sink's position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

from ..._engine.ports import KeyOutcome, Taken
from .strategies import Finished


class JournalHook(Protocol):
    def attach(self, db: sqlite3.Connection, *, retry_failed: bool) -> int:
        """Get ready on the journal's writing connection, in its open transaction; returns
        how many failed items were given back to be tried again (``retry_failed``)."""
        ...

    def take(self, db: sqlite3.Connection, limit: int) -> Taken: ...

    def stage(
        self,
        db: sqlite3.Connection,
        done: Sequence[Hashable],
        others: Sequence[KeyOutcome],
        extras: Sequence[tuple[Hashable, Any]],
        *,
        commit: bool,
    ) -> None: ...

    def close(self) -> None: ...


class HookKeys:
    """Keys a hook keeps in its own tables: the journal writes no row for them."""

    def finished(
        self, plain: list[Hashable], others: list[KeyOutcome], retried: set[Any]
    ) -> Finished:
        return Finished([], [], [], [], remember=False)

    def committed(self, codes: list[Any]) -> None:
        pass
