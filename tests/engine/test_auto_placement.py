"""``on="auto"`` measures a plain function on the first items and places it.

Each test runs real work and reads the choice back from the stage's statistics; none
asserts on a timing. Where the machine's load could blur the two-thread probe (another
process on the other core), a test allows a few attempts, as the GIL test does.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import conveyor as cv
from conveyor._engine import auto

from .procfns import compress, count_up


def placed(fn: Callable[[Any], Any], n: int = 24, **options: Any) -> cv.StageStatistics:
    out: list[Any] = []
    result = cv.Pipeline(range(n)).map(fn, **options).run(sink=out)
    assert sorted(out) == sorted(fn(i) for i in range(n))
    assert result.results == n
    return result.stages[0]


def test_a_cheap_function_runs_inline_on_the_loop() -> None:
    stage = placed(lambda x: x + 1)
    assert stage.place == "inline"
    assert "µs a call" in stage.reason


def test_pure_python_cpu_work_goes_to_processes() -> None:
    for _ in range(3):
        stage = placed(count_up)
        if stage.place == "processes":
            break
    assert stage.place == "processes", stage.reason
    assert "holds the GIL" in stage.reason or "CPU work" in stage.reason


def test_work_that_lets_the_gil_go_stays_on_threads() -> None:
    for _ in range(3):  # a probe thread that waits for a core is told apart; spare a try
        stage = placed(compress)
        if stage.place == "threads":
            break
    assert stage.place == "threads", stage.reason
    assert "lets the GIL go" in stage.reason


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"), reason="Linux figures")
def test_the_gil_is_told_apart_while_every_core_is_busy() -> None:
    # One busy process per core: two threads that let the GIL go then get half a core
    # each, and their wall time against their CPU time alone looks like taking turns (it
    # did, before: zlib went to processes). The probe tells a thread waiting for a core
    # from one blocked on the GIL. (Pure Python is still read as such most of the time;
    # an unclear reading goes to threads, the safe side: one right of three is asked.)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        free = [placed(compress).place for _ in range(3)]
        held = [placed(count_up).place for _ in range(3)]
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert free.count("threads") >= 2, free
    assert "processes" in held, held


def test_async_def_stays_on_the_loop() -> None:
    async def wait(x: int) -> int:
        await asyncio.sleep(0)
        return x

    result = cv.Pipeline(range(10)).map(wait).run()
    assert result.stages[0].place == "loop"
    assert result.stages[0].reason == ""


def test_without_a_gil_cpu_work_stays_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "gil_enabled", lambda: False)  # as on a free-threaded build
    stage = placed(count_up)
    assert stage.place == "threads"
    assert "no GIL" in stage.reason or "lets the GIL go" in stage.reason


def test_an_explicit_on_always_wins() -> None:
    stage = placed(lambda x: x + 1, on="threads")
    assert stage.place == "threads"
    assert stage.reason == ""


def test_gil_bound_work_that_cannot_be_pickled_stays_on_threads() -> None:
    def local_spin(n: int) -> int:  # a local function: no pickling, so no processes
        return count_up(n)

    for _ in range(3):
        stage = placed(local_spin, n=8)
        if "cannot be pickled" in stage.reason:
            break
    assert stage.place == "threads"
    assert "cannot be pickled" in stage.reason or "lets the GIL go" in stage.reason


def test_every_item_is_called_once_during_the_probe() -> None:
    calls: list[int] = []

    def record(x: int) -> int:
        calls.append(x)
        return x

    out: list[int] = []
    cv.Pipeline(range(50)).map(record).run(sink=out)
    assert sorted(calls) == list(range(50))
    assert sorted(out) == list(range(50))


def test_probe_calls_that_raise_are_failures_and_the_probe_goes_on() -> None:
    calls: dict[int, int] = {}

    def first_try_fails(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if calls[x] == 1:
            raise ValueError(f"not yet {x}")
        return x

    out: list[int] = []
    result = cv.Pipeline(range(6)).map(first_try_fails, retries=2).run(sink=out)
    assert sorted(out) == list(range(6))
    assert result.failed == 0
    assert all(n == 2 for n in calls.values())  # each item: one failure, one success


def test_a_function_that_always_raises_fails_every_item_and_ends() -> None:
    def broken(x: int) -> int:
        raise RuntimeError("broken")

    result = cv.Pipeline(range(20)).map(broken).run()
    assert result.failed == 20
    assert result.failures_by_kind == {"error": 20}


def _burn(x: int) -> int:
    """Dear enough (a millisecond of CPU) that the first call does not decide: the next
    two items make the pair."""
    total = 0
    for i in range(20_000):
        total += i
    return x


def test_a_third_item_that_comes_as_the_pair_gives_up_waiting_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second item waits a moment for a third to pair with. A third that came just as
    that wait ran out (the timeout fired, the second not yet resumed) handed its item over
    and waited for the pair's answer, which never came: the run hung on that item (a Ray
    shard on a busy machine, 'oldest in flight: 29 181 s'). Here the third comes in that
    window on purpose: the wait is 0, so the timeout fires on the loop's next turn, and the
    third's first step is queued before the second resumes."""
    from conveyor._engine.spec import StageSpec

    monkeypatch.setattr(auto, "_PARTNER_WAIT", 0)

    async def main() -> list[int]:
        placement = auto.AutoPlacement(
            _burn, StageSpec("map", "burn", _burn, place="auto", workers=4, concurrency=4)
        )
        await placement.start()
        try:
            assert await placement.call(1) == 1  # the first probe: not cheap
            second = asyncio.create_task(placement.call(2))
            await asyncio.sleep(0)  # the second waits for a partner; its timeout is due
            third = asyncio.create_task(placement.call(3))
            done, _ = await asyncio.wait((second, third), timeout=30)
            assert {second, third} == done, "an item of the pair was never answered"
            return [second.result(), third.result()]
        finally:
            placement.close()
            await placement.shutdown()

    assert asyncio.run(main()) == [2, 3]
