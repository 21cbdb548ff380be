"""The run's tail: holds kept in the journal and handed to the next run's factory, the
``deadline`` and ``finish_at`` flags (services hear ``WindDown``), and the stall notice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import conveyor as cv
from conveyor._engine.events import Tick
from conveyor._engine.runner import Runner
from conveyor._engine.spec import make_stage
from conveyor._errors import UsageError
from conveyor._io import open_journal, read_counts

from . import defer_fns
from .counter_service import CollectingSink
from .defer_fns import GatedHoldFactory, HoldFactory, WindFactory


async def _unused(item: Any) -> Any:  # pragma: no cover - the service's call runs instead
    raise AssertionError("the stage calls its service")


def _journal(path: Path) -> Any:
    return lambda: open_journal(path, fingerprint={"job": "tail"})


async def test_holds_are_kept_in_the_journal_and_given_to_the_next_runs_factory(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "job.journal"
    later = time.time() + 3600
    hold = {"a.example:80": ("paused", later), "b.example:80": ("breaker", time.time() - 1)}
    stage = make_stage("map", _unused, on="loop", factory=HoldFactory(hold=hold))
    first = await Runner(range(5), [stage], open_ledger=_journal(journal)).run()
    assert first.results == 5
    # The next run's factory is given the holds that have not expired (and its services
    # report none: the journal then keeps none).
    plain = make_stage("map", _unused, on="loop", factory=HoldFactory())
    sink = CollectingSink()
    await Runner(range(8), [plain], sink=sink, open_ledger=_journal(journal)).run()
    assert [row["given"] for row in sink.out] == [["a.example:80"]] * 3
    with open_journal(journal, fingerprint={"job": "tail"}) as opened:
        assert opened.held() == {}


async def test_a_hold_is_kept_while_nothing_finishes(tmp_path: Path) -> None:
    """A site's pause must reach the journal even when no item has finished since (every
    host paused): a SIGKILL then must not let the next run hit the host early."""
    journal = tmp_path / "job.journal"
    later = time.time() + 3600
    factory = GatedHoldFactory(hold={"a.example:80": ("paused", later)})
    stage = make_stage("map", _unused, on="loop", factory=factory)
    runner = Runner(range(3), [stage], open_ledger=_journal(journal), commit_interval=0.01)
    run = asyncio.create_task(runner.run())
    kept = None
    for _ in range(2000):  # bounded: the run writes it within a few of its ticks
        await asyncio.sleep(0.01)
        if journal.exists():
            with contextlib.closing(sqlite3.connect(journal)) as db:
                with contextlib.suppress(sqlite3.OperationalError):  # not made yet
                    kept = db.execute("SELECT value FROM meta WHERE name = 'holds'").fetchone()
        if kept and kept[0] and "a.example" in kept[0]:
            break
    assert runner.statistics().results == 0  # nothing finished: the hold alone was written
    factory.gate.set()
    result = await run
    assert result.results == 3
    assert kept is not None
    assert "a.example:80" in kept[0]


async def test_the_deadline_winds_down_and_what_is_left_is_deferred(tmp_path: Path) -> None:
    defer_fns.HEARD.clear()
    journal = tmp_path / "job.journal"
    # Items 0-4 end at once; the others wait until the service hears the run wind down,
    # and then defer themselves; 7 never ends by itself: the run cuts it after the grace.
    factory = WindFactory(quick=5, stubborn=frozenset({7}))
    stage = make_stage("map", _unused, on="loop", concurrency=4, factory=factory)
    sink = CollectingSink()
    runner = Runner(
        list(range(1000)),
        [stage],
        sink=sink,
        open_ledger=_journal(journal),
        deadline=0.3,
        grace=0.2,
    )
    result = await runner.run()
    assert [notice.reason for notice in defer_fns.HEARD] == ["deadline"]
    assert sorted(row["n"] for row in sink.out) == [0, 1, 2, 3, 4]
    # Every item taken in and not ended: those the service deferred when it heard, and
    # the stubborn one, cut after the grace.
    assert result.deferred == result.items - 5
    assert result.deferred_by_reason == {"deadline": result.deferred}
    assert result.unread == 1000 - result.items  # never read: left for the next run
    assert result.unread > 0
    assert not result.complete
    assert not result.interrupted
    assert "not read: run the same command again to finish" in result.summary()
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.deferred) == (5, result.deferred)
    # The next run, given the time, does the rest, each once.
    rest = make_stage("map", _unused, on="loop", concurrency=4, factory=WindFactory(quick=1000))
    again = await Runner(list(range(1000)), [rest], sink=sink, open_ledger=_journal(journal)).run()
    assert again.complete
    assert sorted(row["n"] for row in sink.out) == list(range(1000))
    counts = read_counts(journal)
    assert counts is not None
    assert (counts.done, counts.deferred) == (1000, 0)


def test_the_deadline_on_loop_processes_reaches_every_loop(tmp_path: Path) -> None:
    # The services are in the loop processes: each hears the WindDown through the pool,
    # and defers its waiting items itself.
    from conveyor._pipeline.pipeline import Pipeline

    stage = make_stage("map", _unused, on="loop", concurrency=8, factory=WindFactory(quick=10))
    pipeline = Pipeline(list(range(200)), _stages=(stage,))
    out, journal = tmp_path / "out.jsonl", str(tmp_path / "j")
    result = pipeline.run(out, journal=journal, loops=2, deadline=1.0)
    assert result.results == 10
    assert result.deferred_by_reason == {"deadline": result.deferred}
    assert result.deferred >= 1
    assert result.unread == 200 - result.items


async def test_finish_at_tells_the_services_once_that_share_has_ended() -> None:
    defer_fns.HEARD.clear()
    stage = make_stage("map", _unused, on="loop", concurrency=4, factory=WindFactory(quick=9))
    result = await Runner(list(range(10)), [stage], sink=CollectingSink(), finish_at=0.9).run()
    assert [notice.reason for notice in defer_fns.HEARD] == ["tail"]
    assert (result.results, result.deferred, result.deferred_by_reason) == (9, 1, {"tail": 1})


def test_finish_at_needs_a_source_that_knows_its_length() -> None:
    with pytest.raises(UsageError, match="needs the input's length"):
        cv.Pipeline(n for n in range(3)).map(str, on="inline").run([], finish_at=0.5)
    with pytest.raises(UsageError, match="a crawl's is not known ahead"):
        cv.crawl("http://127.0.0.1:9/").run([], finish_at=0.5)
    with pytest.raises(UsageError, match="finish_at=2"):
        cv.Pipeline(range(3)).run([], finish_at=2)
    with pytest.raises(UsageError, match="deadline=0"):
        cv.Pipeline(range(3)).run([], deadline=0)
    with pytest.raises(UsageError, match="backend='ray'"):
        cv.Pipeline(range(3)).run("out", backend="ray", deadline=60)


def test_a_stall_is_named_in_the_statistics_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    seen: list[Any] = []

    def stuck(n: int) -> int:
        if n == 3:
            release.wait(60)  # set by the test once it saw the stall named
        return n

    def watch(event: Any) -> None:
        if isinstance(event, Tick) and event.statistics.stall is not None:
            seen.append(event.statistics.stall)
            release.set()

    with caplog.at_level(logging.WARNING, logger="conveyor"):
        result = (
            cv.Pipeline(range(5))
            .map(stuck, on="threads", workers=5, concurrency=5, name="slow")
            .run([], observers=(watch,), stall_after=0.3)
        )
    assert result.results == 5
    stall = seen[0]
    assert stall.stage == "slow"
    assert [key for key, _ in stall.oldest] == ["3"]
    assert stall.seconds >= 0.3
    warnings = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(warnings) >= 1
    assert "stage 'slow'" in warnings[0]
    assert "3 " in warnings[0]


async def test_quiet_while_every_host_with_work_is_held_is_no_stall() -> None:
    # A service whose report says its hosts are held back by their sites: nothing
    # finishes for a while, and that is politeness, not a stall.
    from .held_service import HeldFactory

    factory = HeldFactory()
    stage = make_stage("map", _unused, on="loop", concurrency=2, factory=factory)
    stage = dataclasses.replace(stage, route=lambda n: "h:80")
    runner = Runner(list(range(3)), [stage], stall_after=0.2)
    task = asyncio.ensure_future(runner.run())
    await asyncio.sleep(1.0)  # five stall periods of quiet, all of it held politely
    assert runner.statistics().stall is None
    factory.release()
    result = await task
    assert result.results == 3


async def test_a_report_whose_held_is_a_count_is_no_polite_hold() -> None:
    # ``held`` is a name other reports use for counts (a crawl's held pages): the stall
    # check reads it only as a mapping of hosts, and the run goes on either way.
    from .held_service import CountingFactory

    factory = CountingFactory()
    stage = make_stage("map", _unused, on="loop", concurrency=2, factory=factory)
    stage = dataclasses.replace(stage, route=lambda n: "h:80")
    seen: list[Any] = []

    def watch(event: Any) -> None:
        if isinstance(event, Tick) and event.statistics.stall is not None:
            seen.append(event.statistics.stall)
            factory.release()

    result = await Runner(list(range(3)), [stage], stall_after=0.2, observers=(watch,)).run()
    assert result.results == 3
    assert seen[0].hosts == ("h:80",)
