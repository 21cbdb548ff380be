"""Deferred items: a third end state beside ok, failed and filtered. A stage raises
``conveyor.Deferred``; the item ends with nothing in the output and no failure record,
the journal keeps it with its reason, and the next run of the same job takes it (and only
it) up again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import conveyor as cv
from conveyor._io import open_journal, read_counts

from . import defer_fns
from .defer_fns import DEFER


@pytest.fixture
def defer() -> Iterator[Any]:
    """Set which items the test functions defer (``defer_fns``), for this test only."""

    def choose(rule: str) -> None:
        os.environ[DEFER] = rule

    yield choose
    os.environ.pop(DEFER, None)


def _numbers(path: Path) -> list[int]:
    return sorted(orjson.loads(line)["n"] for line in path.read_bytes().splitlines())


@pytest.mark.parametrize(
    ("on", "fn"),
    [("loop", defer_fns.on_loop), ("threads", defer_fns.plain), ("processes", defer_fns.plain)],
)
@pytest.mark.parametrize("keyed", [False, True])
def test_deferred_items_are_left_out_then_done_once_by_the_next_run(
    tmp_path: Path, defer: Any, on: str, fn: Any, keyed: bool
) -> None:
    out, journal = tmp_path / "out.jsonl", tmp_path / "job.journal"
    key = (lambda n: f"k{n}") if keyed else None
    pipeline = cv.Pipeline(range(40), key=key).map(fn, on=on, name="work")  # type: ignore[arg-type]

    defer("odd")
    first = pipeline.run(out, journal=str(journal))
    assert (first.results, first.failed, first.deferred) == (20, 0, 20)
    assert first.deferred_by_reason == {"paused": 20}
    assert first.ok
    assert not first.complete
    assert "20 deferred (paused 20): run the same command again to finish" in first.summary()
    assert first.stages[0].deferred == 20
    assert first.stages[0].failed == 0
    assert _numbers(out) == list(range(0, 40, 2))  # nothing of a deferred item written
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.failed, counts.deferred) == (20, 0, 20)

    defer("none")
    second = pipeline.run(out, journal=str(journal))
    assert (second.items, second.skipped, second.results, second.deferred) == (20, 20, 20, 0)
    assert second.complete
    assert _numbers(out) == list(range(40))  # each once
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.deferred) == (40, 0)

    third = pipeline.run(out, journal=str(journal))
    assert (third.items, third.skipped) == (0, 40)


def test_an_item_deferred_again_stays_deferred_and_counts_reconcile(
    tmp_path: Path, defer: Any
) -> None:
    out, journal = tmp_path / "out.jsonl", tmp_path / "job.journal"
    pipeline = cv.Pipeline(range(30)).map(defer_fns.plain, on="inline")
    defer("odd")
    pipeline.run(out, journal=str(journal))
    defer("third")  # of the odd ones, 3, 9, 15, 21, 27 are deferred again
    again = pipeline.run(out, journal=str(journal))
    assert (again.items, again.results, again.deferred) == (15, 10, 5)
    with open_journal(journal, fingerprint=_fingerprint(journal)) as opened:
        stats = opened.statistics()
        assert (stats.done, stats.deferred) == (25, 5)
        deferred = list(opened.deferred_keys())
        assert sorted(key for key, _, _ in deferred) == [3, 9, 15, 21, 27]
        assert {reason for _, reason, _ in deferred} == {"paused"}
        # The deferral's own time is kept with it (``defer_fns.check``: a minute on).
        assert all(until is not None and until > time.time() for _, _, until in deferred)
    counts = read_counts(journal)
    assert counts is not None
    # The journal, the output and the runs' results tell the same story.
    assert counts.done == len(_numbers(out)) == 15 + 10
    assert counts.deferred == again.deferred
    defer("none")
    last = pipeline.run(out, journal=str(journal))
    assert (last.items, last.deferred) == (5, 0)
    assert _numbers(out) == list(range(30))


def _fingerprint(journal: Path) -> Any:
    import sqlite3

    db = sqlite3.connect(journal)
    try:
        (stored,) = db.execute("SELECT value FROM meta WHERE name = 'fingerprint'").fetchone()
    finally:
        db.close()
    return orjson.loads(stored)


@pytest.mark.parametrize("ordered", [False, True])
def test_a_root_with_a_deferred_child_is_deferred_whole(
    tmp_path: Path, defer: Any, ordered: bool
) -> None:
    out, journal = tmp_path / "out.jsonl", tmp_path / "job.journal"
    pipeline = (
        cv.Pipeline(range(10)).flat_map(defer_fns.children).map(lambda child: child, on="inline")
    )
    defer("odd")
    first = pipeline.run(out, journal=str(journal), ordered=ordered)
    assert first.deferred == 5
    assert first.results == 15
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted({row["n"] for row in rows}) == [0, 2, 4, 6, 8]
    defer("none")
    pipeline.run(out, journal=str(journal), ordered=ordered)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted((row["n"], row["child"]) for row in rows) == [
        (n, i) for n in range(10) for i in range(3)
    ]


def test_a_deferred_batch_defers_every_item_in_it(tmp_path: Path, defer: Any) -> None:
    out, journal = tmp_path / "out.jsonl", tmp_path / "job.journal"
    pipeline = cv.Pipeline(range(12)).batch(4).map(defer_fns.batch_of).flat_map(lambda b: b)
    defer("third")  # the batch holding 9 defers all four of its items
    first = pipeline.run(out, journal=str(journal), ordered=True)
    assert first.deferred == 4
    assert _numbers(out) == list(range(8))
    defer("none")
    pipeline.run(out, journal=str(journal), ordered=True)
    assert _numbers(out) == list(range(12))


def test_loop_processes_send_a_deferral_back_as_one(tmp_path: Path, defer: Any) -> None:
    out, journal = tmp_path / "out.jsonl", tmp_path / "job.journal"
    pipeline = cv.Pipeline(range(60)).map(defer_fns.on_loop)
    defer("third")
    first = pipeline.run(out, journal=str(journal), loops=2)
    assert (first.results, first.failed, first.deferred) == (40, 0, 20)
    assert first.deferred_by_reason == {"paused": 20}
    defer("none")
    second = pipeline.run(out, journal=str(journal), loops=2)
    assert (second.items, second.results) == (20, 20)
    assert _numbers(out) == list(range(60))


def test_without_a_journal_deferred_items_are_counted_and_not_written(defer: Any) -> None:
    out: list[Any] = []
    defer("odd")
    result = cv.Pipeline(range(10)).map(defer_fns.plain, on="inline").run(out)
    assert sorted(row["n"] for row in out) == [0, 2, 4, 6, 8]
    assert (result.deferred, result.failed, len(result.failures)) == (5, 0, 0)


def test_a_deferral_is_never_retried(defer: Any) -> None:
    calls: list[int] = []

    def counted(n: int) -> int:
        calls.append(n)
        defer_fns.check(n)
        return n

    defer("odd")
    result = (
        cv.Pipeline(range(4))
        .map(counted, on="threads", retries=cv.Retry(attempts=3, backoff=0.0))
        .run([])
    )
    assert result.deferred == 2
    assert sorted(calls) == [0, 1, 2, 3]
