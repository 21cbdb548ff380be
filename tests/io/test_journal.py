"""The resume journal: admit, record, resume, mismatches, foreign and damaged files."""

from __future__ import annotations

import queue
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from conveyor import JobMismatchError, JournalError, SinkError, UsageError
from conveyor._engine.ports import KeyOutcome, Ledger
from conveyor._io import Journal, open_journal
from conveyor._io import journal as journal_module

PRINT = {"source": {"path": "urls.txt", "size": 10}, "stages": ["fetch"]}


def journal(path: Path, **options: bool) -> Journal:
    return open_journal(path / "run.journal", fingerprint=PRINT, **options)


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    """What a query finds in the journal file, read with SQLite directly."""
    db = sqlite3.connect(path / "run.journal")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_a_fresh_journal_admits_new_keys_and_catches_duplicates(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        assert j.sink_position is None
        assert j.admit(["a", "b", "a", "c"]) == [True, True, False, True]
        assert j.admit(["c", "d", "b"]) == [False, True, False]
        assert j.admit([]) == []
        assert j.statistics().duplicates == 3


def test_it_implements_the_engines_ledger(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        ledger: Ledger = j
        assert ledger.sink_position is None


def test_resume_skips_done_reruns_unfinished_and_counts_again(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit(["a", "b", "c", "d", "a"])
        j.record(
            [KeyOutcome("a", "done"), KeyOutcome("b", "failed", "timeout", 3),
             KeyOutcome("c", "filtered")],
            {"bytes": 10},
        )  # fmt: skip
        # "d" was admitted but never finished: a crash would lose it.
    with journal(tmp_path) as j:
        assert j.sink_position == {"bytes": 10}
        assert j.statistics().done == 1
        assert j.statistics().duplicates == 1  # the last run's, until this one admits
        assert j.admit(["a", "b", "c", "d", "e", "a"]) == [False, False, False, True, True, False]
        assert j.statistics().duplicates == 1
        assert list(j.failed_keys()) == [("b", "timeout", 3)]


def test_retry_failed_admits_failed_keys_again(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit(["a", "b"])
        j.record([KeyOutcome("a", "done"), KeyOutcome("b", "failed", "dns", 1)], {"bytes": 1})
    with journal(tmp_path, retry_failed=True) as j:
        assert j.admit(["a", "b"]) == [False, True]
        assert j.statistics().failed == 0
        j.record([KeyOutcome("b", "done", None, 2)], {"bytes": 2})
        assert j.statistics() == type(j.statistics())(done=2, failed=0, filtered=0, duplicates=0)


def test_keys_of_different_types_stay_apart(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        assert j.admit(["1", 1, (1,), 1.5, True, b"1", None, ("a", 2)]) == [True] * 8
        assert j.admit([1, "1", (1,), ("a", 2)]) == [False] * 4
        with pytest.raises(UsageError, match="key="):
            j.admit([object()])


def test_bare_done_keys_of_every_type_are_recorded_and_skipped_on_resume(
    tmp_path: Path,
) -> None:
    """The runner passes plain successes as bare keys; blobs (tuples, bytes) included."""
    keys = ["1", 1, (1,), b"1", ("a", 2), "x"]
    with journal(tmp_path) as j:
        assert j.admit(keys) == [True] * 6
        j.record([KeyOutcome("x", "failed", "dns", 2)], {"bytes": 9}, done=keys[:5])
    spans = rows(tmp_path, "SELECT start, stop FROM spans")
    failed = rows(tmp_path, "SELECT kind, attempts FROM keys WHERE state = 2")
    assert spans == [(0, 6)]  # keyed journals keep finished positions as spans too
    assert failed == [("dns", 2)]
    with journal(tmp_path) as j:
        assert j.statistics() == type(j.statistics())(done=5, failed=1, filtered=0, duplicates=0)
        # The same input: nothing to do. A copy of a finished key elsewhere is a duplicate.
        assert j.admit([*keys, (1,), "new"]) == [False] * 7 + [True]
        assert j.statistics().duplicates == 1


def test_record_is_atomic_with_the_position(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit(["a", "b"])
        j.record([KeyOutcome("a", "done")], {"bytes": 5})
        j.admit(["c"])  # not recorded: no commit for it
    states = dict(rows(tmp_path, "SELECT key, state FROM keys"))
    assert states["a"] == 1


def test_another_job_gets_a_mismatch_error_naming_the_ways_out(tmp_path: Path) -> None:
    journal(tmp_path).close()
    other = {**PRINT, "source": {"path": "other.txt", "size": 10}}
    with pytest.raises(JobMismatchError) as caught:
        open_journal(tmp_path / "run.journal", fingerprint=other)
    message = str(caught.value)
    assert "restart=True" in message
    assert "--restart" in message
    assert "--retry-failed" in message
    assert "source" in message
    assert "\n" not in message
    # restart=True begins again.
    with open_journal(tmp_path / "run.journal", fingerprint=other, restart=True) as j:
        assert j.sink_position is None
        assert j.statistics().done == 0


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"url\nhttp://example.com\n" * 20, "not an SQLite file"),
        (b"SQLite format 3\x00" + b"\x00" * 10, "not an SQLite file"),
        (None, "another program"),
    ],
)
def test_a_foreign_file_is_refused_and_left_untouched(
    tmp_path: Path, content: bytes | None, why: str
) -> None:
    target = tmp_path / "run.journal"
    if content is None:
        db = sqlite3.connect(target)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
    else:
        target.write_bytes(content)
    before = target.read_bytes()
    with pytest.raises(JournalError, match=why) as caught:
        open_journal(target, fingerprint=PRINT)
    assert "--restart" in str(caught.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.journal"]
    with open_journal(target, fingerprint=PRINT, restart=True) as j:  # asked for: replaced
        assert j.admit(["a"]) == [True]


def test_a_damaged_journal_gives_a_clear_error(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit([f"key-{i}" for i in range(5000)])
        j.record([KeyOutcome(f"key-{i}", "done") for i in range(5000)], {"bytes": 1})
    target = tmp_path / "run.journal"
    data = bytearray(target.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first
    target.write_bytes(bytes(data))

    def resume() -> None:
        with open_journal(target, fingerprint=PRINT) as j:
            j.admit(["key-1"])

    with pytest.raises(JournalError, match=r"damaged|not a conveyor journal"):
        resume()


def test_a_journal_of_another_format_version_is_refused(tmp_path: Path) -> None:
    journal(tmp_path).close()
    db = sqlite3.connect(tmp_path / "run.journal")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="format 99"):
        journal(tmp_path)


def test_an_empty_file_is_a_fresh_journal(tmp_path: Path) -> None:
    (tmp_path / "run.journal").write_bytes(b"")
    with journal(tmp_path) as j:
        assert j.admit(["a"]) == [True]


def test_staged_keys_count_only_once_committed(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit(["a", "b", "c"])
        j.stage([KeyOutcome("b", "failed", "dns", 2)], done=["a"])
        assert j.statistics().done == 0
        # Until the commit they are in flight: a second copy is still a duplicate.
        assert j.admit(["a"]) == [False]
    with journal(tmp_path) as j:  # closed without a commit: the staged keys are gone
        assert j.statistics() == type(j.statistics())(done=0, failed=0, filtered=0, duplicates=1)
        assert j.admit(["a", "b", "c"]) == [True, True, True]
        j.stage([], done=["a"])
        j.record([KeyOutcome("b", "failed", "dns", 2)], {"bytes": 3}, done=["c"])
    with journal(tmp_path) as j:
        assert j.sink_position == {"bytes": 3}
        assert j.statistics().done == 2
        assert j.admit(["a", "b", "c", "d"]) == [False, False, False, True]


_KILLED_WITH_STAGED_KEYS = """
import os, sys
from conveyor._engine.ports import KeyOutcome
from conveyor._io import open_journal
j = open_journal(sys.argv[1], fingerprint={"job": "old"})
j.admit(range(0, 200))
j.record([], {"bytes": 100}, done=list(range(100)))
j.stage([KeyOutcome(150, "failed", "dns", 1)], done=list(range(100, 150)))
os.kill(os.getpid(), 9)
"""


def test_a_killed_run_keeps_its_last_commit_not_its_staged_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    subprocess.run([sys.executable, "-c", _KILLED_WITH_STAGED_KEYS, str(path)], check=False)
    with open_journal(path, fingerprint={"job": "old"}) as j:
        assert j.sink_position == {"bytes": 100}
        assert j.statistics().done == 100
        assert j.admit(range(200)) == [False] * 100 + [True] * 100


def test_a_new_journal_ignores_the_log_of_a_deleted_one(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    subprocess.run([sys.executable, "-c", _KILLED_WITH_STAGED_KEYS, str(path)], check=False)
    assert (tmp_path / "run.journal-wal").exists()  # killed: SQLite never cleaned up
    path.unlink()  # what a user does to begin again by hand
    with open_journal(path, fingerprint={"job": "new"}) as j:
        assert j.sink_position is None
        assert j.admit(range(3)) == [True, True, True]
        j.record([], {"bytes": 3}, done=[0, 1, 2])
    with open_journal(path, fingerprint={"job": "new"}) as j:  # not "a different job"
        assert j.sink_position == {"bytes": 3}
        assert j.statistics().done == 3


_KILLED_BEFORE_ITS_FIRST_COMMIT = """
import os, sys
from conveyor._io import open_journal
j = open_journal(sys.argv[1], fingerprint={"job": "old"})
j.prepare()  # as a run does: the file is made
j.admit(range(0, 200))
j.stage([], done=list(range(100)))
os.kill(os.getpid(), 9)
"""


def test_a_journal_killed_before_its_first_commit_holds_no_job_yet(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    subprocess.run([sys.executable, "-c", _KILLED_BEFORE_ITS_FIRST_COMMIT, str(path)], check=False)
    assert path.exists()
    # Nothing was committed, so nothing is lost by taking it as new, for any job.
    with open_journal(path, fingerprint={"job": "new"}) as j:
        assert j.sink_position is None
        assert j.statistics().done == 0
        assert j.admit(range(3)) == [True, True, True]
        j.record([], {"bytes": 3}, done=[0, 1, 2])
    with pytest.raises(JobMismatchError):  # from its first commit on, it holds its job
        open_journal(path, fingerprint={"job": "old"})


def test_a_journal_closed_with_no_commit_still_holds_its_job(tmp_path: Path) -> None:
    journal(tmp_path).close()
    assert rows(tmp_path, "SELECT value FROM meta WHERE name = 'fingerprint'") != []
    with pytest.raises(JobMismatchError):
        open_journal(tmp_path / "run.journal", fingerprint={"job": "other"})


def test_prepare_opens_a_new_journal_for_writing_and_writes_nothing(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.prepare()  # what the writer's thread does while a run begins
        log = tmp_path / "run.journal-wal"
        assert log.exists()  # the connection that writes is open
        assert log.stat().st_size == 0
        assert j.admit(["a", "b"]) == [True, True]
        j.record([], {"bytes": 2}, done=["a", "b"])
    with journal(tmp_path) as j:
        assert j.sink_position == {"bytes": 2}
        assert j.admit(["a", "b", "c"]) == [False, False, True]


def test_the_shipped_empty_journal_is_what_the_schema_makes(tmp_path: Path) -> None:
    # A new journal is a copy of empty.journal; after a schema change it must be written
    # anew (see empty_journal()).
    def describe(image: bytes) -> tuple[object, ...]:
        file = tmp_path / f"{len(list(tmp_path.iterdir()))}.db"
        file.write_bytes(image)
        db = sqlite3.connect(file)
        try:
            return (
                db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
                db.execute("SELECT name, value FROM meta ORDER BY name").fetchall(),
                db.execute("PRAGMA application_id").fetchall(),
                db.execute("PRAGMA user_version").fetchall(),
                db.execute("PRAGMA journal_mode").fetchall(),
            )
        finally:
            db.close()

    assert describe(journal_module._EMPTY_JOURNAL.read_bytes()) == describe(
        journal_module.empty_journal()
    )


def test_a_journal_in_a_missing_folder_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=r"^cannot create journal [^:]*: folder .* does not exist"):
        open_journal(tmp_path / "nowhere" / "run.journal", fingerprint=PRINT)


def test_a_folder_is_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "run.journal").mkdir()
    with pytest.raises(JournalError, match="folder"):
        journal(tmp_path)


def test_use_after_close_is_an_error(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.close()
    j.close()  # twice is fine
    with pytest.raises(UsageError, match="closed"):
        j.admit(["a"])


def test_memory_stays_flat_with_many_keys(tmp_path: Path) -> None:
    """Keys live in SQLite, not in a Python set: memory does not grow with the job."""
    with journal(tmp_path) as j:
        tracemalloc.start()
        try:
            for start in range(0, 200_000, 1000):
                keys = [f"https://example.com/page/{i}" for i in range(start, start + 1000)]
                j.admit(keys)
                j.record([KeyOutcome(k, "done") for k in keys], {"bytes": start})
                if start == 20_000:
                    tracemalloc.reset_peak()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert j.statistics().done == 200_000
    assert peak < 2 * 1024 * 1024  # one batch's worth, not 180,000 keys' worth


def test_position_keys_are_kept_as_spans_and_resume_skips_them(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        assert j.admit(range(6)) == [True] * 6
        j.record(
            [KeyOutcome(p, "done") for p in (0, 1, 2, 4)] + [KeyOutcome(5, "filtered")],
            {"bytes": 5},
        )  # 3 never finished
        assert j.admit(range(6, 9)) == [True] * 3
        j.record([KeyOutcome(7, "done"), KeyOutcome(8, "failed", "timeout", 2)], {"bytes": 7})
    spans = rows(tmp_path, "SELECT start, stop FROM spans ORDER BY start")
    keys = rows(tmp_path, "SELECT key, state FROM keys")
    assert spans == [(0, 3), (4, 6), (7, 9)]  # one row per run of positions
    assert keys == [(8, 2)]  # only the failure has a row of its own
    with journal(tmp_path) as j:
        assert j.statistics() == type(j.statistics())(done=5, failed=1, filtered=1, duplicates=0)
        # Batches cut across the spans anywhere.
        assert j.admit(range(2)) == [False, False]
        assert j.admit(range(2, 5)) == [False, True, False]
        assert j.admit(range(5, 10)) == [False, True, False, False, True]
        assert list(j.failed_keys()) == [(8, "timeout", 2)]


def test_batches_across_gaps_in_the_spans_are_answered_whole(tmp_path: Path) -> None:
    # The span before a batch may end well before it (a gap of unfinished positions): it
    # covers nothing of the batch. (It once cut the answer short -- an IndexError, or
    # wrong answers -- on a resume with gaps, found by the fuzzed-input CLI test.)
    done = {0, 1, 2, 6, 7, 8, 15, 16, 30}
    for size in (1, 2, 3, 4, 5, 7, 11):
        folder = tmp_path / f"size-{size}"
        folder.mkdir()
        with journal(folder) as j:
            j.admit(range(40))
            j.record([KeyOutcome(p, "done") for p in sorted(done)], {"bytes": 1})
        with journal(folder) as j:  # every run reads the input from the start
            answers: list[bool] = []
            for begin in range(0, 40, size):
                batch = range(begin, min(begin + size, 40))
                answer = j.admit(batch)
                assert len(answer) == len(batch), (size, begin)
                answers += answer
        assert answers == [p not in done for p in range(40)], size


def test_retry_failed_with_position_keys(tmp_path: Path) -> None:
    with journal(tmp_path) as j:
        j.admit(range(4))
        j.record(
            [KeyOutcome(0, "done"), KeyOutcome(1, "failed", "dns"), KeyOutcome(2, "done"),
             KeyOutcome(3, "failed", "reset")],
            {"bytes": 1},
        )  # fmt: skip
    with journal(tmp_path, retry_failed=True) as j:
        assert j.admit(range(4)) == [False, True, False, True]
        assert j.statistics().failed == 0
        j.record([KeyOutcome(1, "done"), KeyOutcome(3, "failed", "reset", 3)], {"bytes": 2})
        assert j.statistics() == type(j.statistics())(done=3, failed=1, filtered=0, duplicates=0)
    with journal(tmp_path) as j:
        assert j.admit(range(4)) == [False] * 4
        assert list(j.failed_keys()) == [(3, "reset", 3)]


@pytest.mark.parametrize("ask", ["admit", "admit_now first"])
def test_admit_and_record_on_two_threads_catch_every_duplicate(tmp_path: Path, ask: str) -> None:
    """A run admits on its journal thread (or on the loop, when ``admit_now`` can answer)
    while its writer thread stages and records: a repeated key is caught whether its first
    copy is still in flight, staged or already committed."""
    keys = []
    for block in range(20):  # each key twice, 150 items apart: in flight or committed
        first = [f"k{block}-{i}" for i in range(150)]
        keys += first + first
    admitted: queue.Queue[list[str] | None] = queue.Queue(maxsize=4)
    with journal(tmp_path) as j:

        def record_all() -> None:
            count = 0
            while (batch := admitted.get()) is not None:
                count += 1
                if count % 3:  # two batches staged, the third commits all three
                    j.stage([], done=batch)
                else:
                    j.record([KeyOutcome(k, "done") for k in batch], {"bytes": count})
            j.record([], {"bytes": count})

        recorder = threading.Thread(target=record_all)
        recorder.start()
        try:
            for start in range(0, len(keys), 100):
                batch = keys[start : start + 100]
                answer = j.admit_now(batch) if ask == "admit_now first" else None
                if answer is None:
                    answer = j.admit(batch)
                admitted.put([k for k, ok in zip(batch, answer, strict=True) if ok])
        finally:
            admitted.put(None)
            recorder.join()
        assert j.statistics().done == 3000
        assert j.statistics().duplicates == 3000


# -- keys of any characters --------------------------------------------------------------

# SQLite's JSON functions (how keys travel to it) end a string at a NUL, so such keys were
# stored cut short and never found again: each repeat was run and written once more.
AWKWARD = [
    "a\x00b", "a\x00c", "a", "\x00", "\x00\x00", "", "tab\there", "\x01\x02\x1f\x7f",
    "esc\x1b[0m", "\u2028\ufeff", "\U0001f600\x00", '"\\u0000"', "\ud800", "x\udfffy",
    "a\x00\ud800",
]  # fmt: skip


def test_keys_of_any_characters_are_each_kept_apart_and_found_again(tmp_path: Path) -> None:
    huge = "h" * 5_000_000 + "\x00"
    keys = [*AWKWARD, huge, ("a\x00", "\ud801"), b"\x00"]
    with journal(tmp_path) as j:
        assert j.admit(keys) == [True] * len(keys)
        assert j.admit([*keys, "a\x00d"]) == [False] * len(keys) + [True]
        j.record([KeyOutcome("a\x00b", "failed", "dns", 1), KeyOutcome("\ud800", "filtered")],
                 {"bytes": 1}, done=[k for k in keys if k not in ("a\x00b", "\ud800")])  # fmt: skip
        # Committed now: found in the file, not among the keys in flight.
        assert j.admit([*keys, "a\x00e"]) == [False] * len(keys) + [True]
    stored = rows(tmp_path, "SELECT count(*) FROM keys")
    assert stored == [(len(keys),)]  # none cut short onto another
    with journal(tmp_path) as j:
        assert j.statistics().done == len(keys) - 2
        assert j.admit([*keys, "a\x00f", "\udc00"]) == [False] * len(keys) + [True, True]
        assert list(j.failed_keys()) == [("a\x00b", "dns", 1)]
    with journal(tmp_path, retry_failed=True) as j:
        assert j.admit(keys) == [k == "a\x00b" for k in keys]


def _awkward_lines(count: int) -> list[str]:
    """A URL list, every other line malformed on purpose (NUL and control characters
    inside), each malformed line ``count`` apart from its copy: by the copy, the first
    one's key is committed (every 10,000 items)."""
    lines = []
    for i in range(count):
        lines.append(f"https://example.com/page/{i}")
        lines.append(f"bad\x00{i % (count // 2)}\x01" if i % 3 else f"\x07\x00{i % (count // 2)}")
    return lines


def _one_record_per_key(output: Path, lines: list[str]) -> None:
    from .helpers import read_records

    written = [record["key"] for record in read_records(output)]
    assert len(written) == len(set(lines))
    assert sorted(written) == sorted(ascii(line) for line in set(lines))


def _as_record(line: str) -> dict[str, str]:
    return {"key": ascii(line)}  # ascii(): a lone surrogate cannot go into a JSON file


def _own_key(line: str) -> str:
    return line


def test_a_pipeline_writes_each_key_once_whatever_characters_it_holds(tmp_path: Path) -> None:
    import conveyor as cv
    from conveyor._io import JsonLines, read_lines

    lines = _awkward_lines(15_000)
    (tmp_path / "urls.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    output, path = tmp_path / "out.jsonl", tmp_path / "run.journal"

    def run() -> cv.RunStats:
        pipeline = cv.Pipeline(read_lines(tmp_path / "urls.txt"), key=_own_key).map(_as_record)
        return pipeline.run(sink=JsonLines(output), journal=path)

    result = run()
    assert result.results == len(set(lines)) == 22_500
    assert result.skipped == len(lines) - len(set(lines))
    _one_record_per_key(output, lines)
    before = output.read_bytes()
    again = run()  # resumed with everything done: nothing new
    assert again.results == 0
    assert again.skipped == len(lines)
    assert output.read_bytes() == before


def test_keys_with_lone_surrogates_go_through_a_pipeline_once(tmp_path: Path) -> None:
    import conveyor as cv
    from conveyor._io import JsonLines

    lines = [*AWKWARD, *(f"s\ud800{i % 5000}" for i in range(10_000))] * 2
    for _ in range(2):  # the second run resumes a finished job: nothing new
        pipeline = cv.Pipeline(lines, key=_own_key).map(_as_record)
        pipeline.run(sink=JsonLines(tmp_path / "out.jsonl"), journal=tmp_path / "run.journal")
        _one_record_per_key(tmp_path / "out.jsonl", lines)


# Killed at the first item past ``kill_at`` once a commit has landed (the journal says so):
# the moment comes from observed progress, so a busy machine whose writer thread lags
# behind still dies midway, never before its first commit.
_KILLED_MIDWAY = """
import os, sqlite3, sys, threading, time
import conveyor as cv
from conveyor._io import JsonLines, read_lines
seen = 0
lock = threading.Lock()
def committed():
    db = sqlite3.connect(sys.argv[1] + ".journal")
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'done'").fetchone()
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()
    return bool(row and row[0])
def work(line):
    global seen
    with lock:
        seen += 1
        if seen == int(sys.argv[3]):
            for _ in range(6000):
                if committed():
                    break
                time.sleep(0.01)
            os.kill(os.getpid(), 9)
    return {"key": ascii(line)}
pipeline = cv.Pipeline(read_lines(sys.argv[1]), key=lambda line: line).map(work)
pipeline.run(sink=JsonLines(sys.argv[2]), journal=sys.argv[1] + ".journal")
"""


def test_a_killed_run_with_awkward_keys_resumes_to_each_key_once(tmp_path: Path) -> None:
    lines = _awkward_lines(15_000)
    source, output = tmp_path / "urls.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(kill_at: int) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", _KILLED_MIDWAY, str(source), str(output), str(kill_at)]
        return subprocess.run(command, check=False, capture_output=True, text=True)

    killed = run(kill_at=20_000)
    assert killed.returncode == -9, killed.stderr
    db = sqlite3.connect(f"{source}.journal")
    try:
        (done,) = db.execute("SELECT value FROM meta WHERE name = 'done'").fetchone()
    finally:
        db.close()
    assert 0 < done < len(set(lines))  # it committed some of the job, not all
    resumed = run(kill_at=0)  # the same job, to its end
    assert resumed.returncode == 0, resumed.stderr
    _one_record_per_key(output, lines)


def test_a_format_3_journal_is_read_and_marked_format_4(tmp_path: Path) -> None:
    # Format 4 only added deferred keys and meta rows: a format-3 journal (no "deferred"
    # row) resumes as is, and is marked format 4 so an older conveyor refuses it now.
    with journal(tmp_path) as j:
        j.admit(["a", "b"])
        j.record([KeyOutcome("a", "done"), KeyOutcome("b", "failed", "dns")], None)
    db = sqlite3.connect(tmp_path / "run.journal", isolation_level=None)
    db.execute("DROP TRIGGER record")  # what format 3 had: no until, its own trigger
    db.execute("ALTER TABLE keys DROP COLUMN until")
    db.execute(_FORMAT_3_TRIGGER)
    db.execute("DELETE FROM meta WHERE name = 'deferred'")
    db.execute("PRAGMA user_version = 3")
    db.close()
    with journal(tmp_path) as j:
        assert j.admit(["a", "b", "c"]) == [False, False, True]
        stats = j.statistics()
        assert (stats.done, stats.failed, stats.deferred) == (1, 1, 0)
        j.record([KeyOutcome("c", "deferred", "paused", until=123.5)], None)
    assert rows(tmp_path, "PRAGMA user_version") == [(4,)]
    assert rows(tmp_path, "SELECT state, kind, until FROM keys WHERE key = 'c'") == [
        (4, "paused", 123.5)
    ]


# The record trigger of format 3 (conveyor before deferred keys), as it was.
_FORMAT_3_TRIGGER = """CREATE TRIGGER record INSTEAD OF INSERT ON record BEGIN
    INSERT INTO keys (key, state) SELECT CASE type WHEN 'object' THEN
        CAST(json_extract(value, '$.b') AS BLOB) ELSE value END, 1 FROM json_each(NEW.done)
        WHERE true
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
END"""


@pytest.mark.parametrize("keyed", [False, True])
def test_deferred_keys_are_admitted_again_by_every_run(tmp_path: Path, keyed: bool) -> None:
    keys = ["a", "b", "c", "d"] if keyed else range(4)
    first, second, third, fourth = list(keys)
    with journal(tmp_path) as j:
        assert j.admit(keys) == [True] * 4
        j.record(
            [KeyOutcome(second, "deferred", "paused"), KeyOutcome(fourth, "deferred", "breaker")],
            None,
            done=[first, third],
        )
        assert j.statistics().deferred == 2
    with journal(tmp_path) as j:
        assert sorted(map(str, (k for k, _, _ in j.deferred_keys()))) == sorted(
            map(str, [second, fourth])
        )
        assert j.admit(keys) == [False, True, False, True]  # no flag needed
        # One ends for good, one is deferred again.
        j.record([KeyOutcome(fourth, "deferred", "tail")], None, done=[second])
        stats = j.statistics()
        assert (stats.done, stats.deferred) == (3, 1)
    with journal(tmp_path) as j:
        assert j.admit(keys) == [False, False, False, True]
        assert [reason for _, reason, _ in j.deferred_keys()] == ["tail"]


def test_holds_are_kept_with_the_commit_and_expire(tmp_path: Path) -> None:
    import time

    later, past = time.time() + 3600, time.time() - 1
    with journal(tmp_path) as j:
        assert j.held() == {}
        j.admit(["a"])
        j.hold({"h1:80": ("paused", later), "h2:80": ("breaker", past)})
        assert j.held() == {}  # kept with the next commit, not before
        j.record([], None, done=["a"])
        assert j.held() == {"h1:80": ("paused", later)}
    with journal(tmp_path) as j:
        assert j.held() == {"h1:80": ("paused", later)}
        j.hold({})  # the services hold nothing now
        assert j.admit(["a", "b"]) == [False, True]
        j.record([], None, done=["b"])
    with journal(tmp_path) as j:
        assert j.held() == {}
