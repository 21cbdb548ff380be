"""``loops="auto"``: the head starts on the run's own loop and moves to loop processes
once that loop is CPU-bound (``_engine/loops/grow.py``, ``measure.py``); and what loop
processes tell each other (``ports.Peered``).

Whether a loop is CPU-bound is read from the kernel, not from timings: a head that burns
its CPU reads bound on any machine (waiting for a core counts as wanting one), a head that
waits on timers never does.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

import conveyor as cv
from conveyor._engine.loops import measured_loops, resolve_loops
from conveyor._engine.loops.measure import Demand, ThreadWaits, demand_clock
from conveyor._engine.runner import Runner
from conveyor._engine.spec import make_stage

from .counter_service import CounterFactory, CountingServer, ListSink
from .peer_service import PeerFactory
from .timed_service import TimedFactory

several_cores = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="loops='auto' moves only with a core to spare"
)


def test_demand_says_bound_after_windows_in_a_row() -> None:
    demand = Demand(bound=0.8, windows=2)
    assert not demand.sample(0.0, 0.0)  # the first sample only sets where windows begin
    assert not demand.sample(1.0, 0.9)
    assert demand.leaning
    assert demand.share == pytest.approx(0.9)
    assert demand.sample(2.0, 1.85)  # a second bound window in a row
    # A window that is not bound, or one with no items, starts the count again.
    demand = Demand(bound=0.8, windows=2)
    demand.sample(0.0, 0.0)
    demand.sample(1.0, 0.9)
    assert not demand.sample(2.0, 1.3)
    assert not demand.leaning
    assert not demand.sample(3.0, 2.2)
    assert not demand.sample(4.0, 3.1, working=False)
    assert not demand.sample(5.0, 4.0)


def test_the_demand_clock_counts_what_this_thread_runs() -> None:
    clock = demand_clock()
    before = clock()
    end = time.thread_time() + 0.05
    while time.thread_time() < end:  # bounded: 50 ms of this thread's CPU
        pass
    assert clock() - before >= 0.04  # run or waited: at least the CPU it used
    if os.path.exists("/proc/thread-self/schedstat"):
        assert clock is not time.thread_time  # the kernel's figures, waits included


@pytest.mark.skipif(not os.path.exists("/proc/thread-self/schedstat"), reason="Linux figures")
def test_a_thread_reads_its_own_waits_for_a_core() -> None:
    waits = ThreadWaits.open()
    assert waits is not None
    try:
        first = waits.seconds()
        end = time.thread_time() + 0.02
        while time.thread_time() < end:  # bounded: 20 ms of this thread's CPU
            pass
        assert waits.seconds() >= first >= 0.0  # a count so far: it never goes back
    finally:
        waits.close()


def test_auto_is_measured_and_never_for_a_source_known_to_be_small() -> None:
    assert measured_loops("auto")
    assert not measured_loops(2)
    assert resolve_loops("auto", range(100)) == 1  # small: one loop, nothing to measure
    cores = len(os.sched_getaffinity(0))
    assert resolve_loops("auto", iter(range(100))) == (cores if cores > 1 else 1)


async def burn(item: int) -> tuple[int, int]:
    """An async head that keeps its loop busy: 1 ms of this thread's CPU an item."""
    end = time.thread_time() + 0.001
    while time.thread_time() < end:
        pass
    return item, os.getpid()


async def wait(item: int) -> tuple[int, int]:
    """An async head that only waits: its loop is idle."""
    await asyncio.sleep(0.01)
    return item, os.getpid()


def keep(result: Any) -> Any:
    """A plain map after the head (module-level: it moves with the head)."""
    return result


def unsized(n: int) -> Iterator[int]:
    """A source of unknown size: loops="auto" measures it."""
    yield from range(n)


@several_cores
def test_a_cpu_bound_head_moves_to_loop_processes() -> None:
    out: list[tuple[int, int]] = []
    result = (
        cv.Pipeline(unsized(3000))
        .map(burn, concurrency=8)
        .map(keep, on="inline")
        .run(sink=out, loops="auto")
    )
    assert result.results == 3000
    assert result.failed == 0
    assert sorted(item for item, _ in out) == list(range(3000))
    stage = result.stages[0]
    assert stage.place == "loops"
    assert stage.reason.startswith("moved to"), stage.reason
    pids = {pid for _, pid in out}
    assert os.getpid() in pids  # the first items ran here
    assert len(pids) > 1  # the rest in the loop processes


@several_cores
def test_a_head_that_waits_stays_on_the_run_loop() -> None:
    out: list[tuple[int, int]] = []
    result = cv.Pipeline(unsized(1000)).map(wait, concurrency=10).run(sink=out, loops="auto")
    assert result.results == 1000
    assert {pid for _, pid in out} == {os.getpid()}
    assert result.stages[0].reason == "one loop until it is CPU-bound"


@several_cores
async def test_a_head_whose_calls_show_no_lag_stays_though_its_loop_is_bound() -> None:
    # Every call burns CPU (the loop reads bound), but the calls' own times say the
    # loop's lag is no part of them (``ports.Timed``: 100 ms answers read a few ms
    # late): more loops would buy nothing, and the head stays.
    result, out = await _timed_run(2000, lag_shows=False)
    assert result.results == 2000
    assert {pid for _, pid, _ in out} == {os.getpid()}
    assert result.stages[0].reason == "one loop until it is CPU-bound"


@several_cores
async def test_what_the_head_learnt_reaches_the_loop_processes_before_their_items() -> None:
    # The same head, its calls showing the loop's lag: it moves, and every item the loop
    # processes ran found their service told what the service here learnt
    # (``ports.Learns``), the first one included.
    result, out = await _timed_run(4000, lag_shows=True)
    assert result.results == 4000
    assert result.stages[0].reason.startswith("moved to"), result.stages[0].reason
    here = os.getpid()
    there = [learnt for _, pid, learnt in out if pid != here]
    assert there  # the loop processes ran the later items
    assert all(learnt == [("learnt", here)] for learnt in there)
    assert all(learnt == [] for _, pid, learnt in out if pid == here)


async def _timed_run(items: int, *, lag_shows: bool) -> tuple[Any, list[Any]]:
    """``items`` through a ``TimedFactory`` head on ``loops="auto"`` (two loop processes)."""
    factory = TimedFactory(lag_shows)
    stage = make_stage("map", _unused, on="loop", concurrency=8, factory=factory)
    out: list[tuple[int, int, list[Any]]] = []
    runner = Runner(unsized(items), [stage], sink=ListSink(out), loops=2, measured=True)
    return await runner.run(), out


async def _unused(item: Any) -> Any:  # pragma: no cover - the service's call runs instead
    raise AssertionError("the stage calls its service")


@several_cores
async def test_before_the_move_the_run_loop_holds_the_first_stage_concurrency() -> None:
    # The folded stage has more workers than the service's budget (items that will wait
    # in the loop processes after a move); on the run's own loop they wait their turn,
    # so the server never sees more than the budget, and every item still ends.
    async with CountingServer(gather=4) as server:
        stage = make_stage(
            "map", _unused, on="loop", concurrency=4, factory=CounterFactory(server.port)
        )
        out: list[Any] = []
        runner = Runner(unsized(200), [stage], sink=ListSink(out), loops=2, measured=True)
        result = await runner.run()
    assert result.results == 200
    assert server.max_in_flight == 4
    assert result.stages[0].reason == "one loop until it is CPU-bound"


async def test_what_a_loop_tells_its_peers_reaches_the_other_loops() -> None:
    # Spread (PeerFactory.spreads): "tell" goes to loop 0 and "listen" to loop 1 (the
    # least busy), whose service waits until it has heard loop 0's notice.
    stage = make_stage("map", _unused, on="loop", concurrency=4, factory=PeerFactory())
    out: list[tuple[str, int, list[Any]]] = []
    result = await Runner(["tell", "listen"], [stage], sink=ListSink(out), loops=2).run()
    assert result.results == 2
    told = {item: (pid, heard) for item, pid, heard in out}
    teller, _ = told["tell"]
    listener, heard = told["listen"]
    assert listener != teller
    assert heard == [("paused", teller)]
    assert told["tell"][1] == []  # a loop does not hear itself
