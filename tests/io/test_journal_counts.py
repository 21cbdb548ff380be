"""``read_counts``: a journal's committed counts, read-only, while another connection
writes it (the Ray driver's view of its running shards)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor import Pipeline
from conveyor._io import JournalStatistics, read_counts


def _kept(n: int) -> bool:
    if n == 7:
        raise ValueError("seven")
    return n % 2 == 0


def test_counts_are_what_the_journal_committed(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    assert read_counts(journal) == JournalStatistics(0, 0, 0, 0)  # none yet: nothing done
    Pipeline(list(range(20))).filter(_kept, on="inline").run(journal=str(journal))
    assert read_counts(journal) == JournalStatistics(done=10, failed=1, filtered=9, duplicates=0)


def test_counts_while_another_connection_writes(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    Pipeline(list(range(20))).filter(_kept, on="inline").run(journal=str(journal))
    writer = sqlite3.connect(journal, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a commit under way: not to be seen, nor waited on
        writer.execute("UPDATE meta SET value = 999 WHERE name = 'done'")
        assert read_counts(journal) == JournalStatistics(10, 1, 9, 0)
        writer.execute("COMMIT")
        assert read_counts(journal) == JournalStatistics(999, 1, 9, 0)
    finally:
        writer.close()
    before = journal.read_bytes()
    read_counts(journal)
    assert journal.read_bytes() == before  # read-only


def test_a_file_that_is_no_journal_gives_none(tmp_path: Path) -> None:
    text = tmp_path / "notes.journal"
    text.write_text("not sqlite at all, but long enough to have a header" * 4)
    assert read_counts(text) is None
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert read_counts(other) is None
