"""A journal's committed counts, read from outside the run that writes it.

The Ray driver shows the keys its shards have finished while they run, each shard's run
writing its own journal in another process (on another node). It reads them here, never
with its own SQL: read-only (``mode=ro``, so it can neither write the file nor make one),
and what it sees is the last commit, since a reader in SQLite sees committed transactions
only. A reading that would have to wait for the writer (a rollback journal mid-commit on a
network filesystem), or that finds the file damaged or not a journal, gives None: the
caller keeps the reading it had.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .journal import JournalStatistics
from .schema import COUNTERS

_QUERY = (
    "SELECT name, value FROM meta"
    " WHERE name IN ('done', 'failed', 'filtered', 'deferred', 'duplicates')"
)


def read_counts(path: str | os.PathLike[str]) -> JournalStatistics | None:
    """The finished keys (done, failed, filtered), the deferred ones (left for the next
    run) and the duplicates the journal at ``path`` has committed: zeros when the file
    does not exist yet, None when it cannot be read now (busy, damaged, not a journal)."""
    target = Path(path)
    if not target.exists():
        return JournalStatistics(done=0, failed=0, filtered=0, duplicates=0, deferred=0)
    try:
        # A short busy timeout: a progress line must not wait behind a commit.
        db = sqlite3.connect(f"{target.absolute().as_uri()}?mode=ro", uri=True, timeout=0.1)
    except sqlite3.Error:
        return None
    try:
        rows = dict(db.execute(_QUERY).fetchall())
        counts = {name: int(rows.get(name) or 0) for name in (*COUNTERS, "duplicates")}
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        db.close()
    return JournalStatistics(**counts)
