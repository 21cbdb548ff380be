"""Pipelines end to end: placement, outcomes, ordering, iteration, errors and limits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import conveyor as cv

pytestmark = pytest.mark.usefixtures("no_leftovers")


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


def add_one(x: int) -> int:
    return x + 1


def test_stages_run_where_they_belong() -> None:
    seen: dict[str, set[str]] = {"loop": set(), "threads": set()}
    main = threading.get_ident()

    async def on_loop(x: int) -> int:
        seen["loop"].add("main" if threading.get_ident() == main else "other")
        return x

    def on_threads(x: int) -> int:
        seen["threads"].add(threading.current_thread().name)
        return x

    out: list[int] = []
    result = (
        cv.Pipeline(range(200)).map(on_loop).map(on_threads, on="threads", workers=3).run(sink=out)
    )
    assert sorted(out) == list(range(200))
    assert result.items == 200
    assert result.results == 200
    assert result.failed == 0
    assert seen["loop"] == {"main"}  # run() drives the loop on this thread
    assert seen["threads"]
    assert all(n.startswith("conveyor-on_threads") for n in seen["threads"])
    assert [s.place for s in result.stages] == ["loop", "threads"]


def test_map_filter_flat_map_batch() -> None:
    def split(x: int) -> list[int]:
        return [x] * (x % 3)

    out: list[list[int]] = []
    result = (
        cv.Pipeline(range(30))
        .map(double)
        .filter(lambda x: x % 4 == 0)
        .flat_map(split)
        .batch(4)
        .run(sink=out, ordered=True)
    )
    flat = [v for batch in out for v in batch]
    expected = [v for x in range(30) if (x * 2) % 4 == 0 for v in [x * 2] * ((x * 2) % 3)]
    assert flat == expected
    assert all(len(b) <= 4 for b in out)
    assert result.filtered == 15


async def overtaken(x: int) -> int:
    """The first items of every ten take the most turns of the loop: later ones overtake
    them. Item 5 fails, before any batch sees it."""
    for _ in range(10 - x % 10):
        await asyncio.sleep(0)
    if x == 5:
        raise ValueError("five")
    return x


def test_an_ordered_batch_groups_consecutive_items_whatever_overtook_them() -> None:
    batches: list[list[int]] = []
    pipeline = cv.Pipeline(range(60)).map(overtaken, concurrency=10)
    pipeline.batch(4).run(sink=batches, ordered=True)
    kept = [x for x in range(60) if x != 5]
    assert batches == [kept[i : i + 4] for i in range(0, len(kept), 4)]

    flat: list[int] = []
    pipeline.batch(4).flat_map(lambda batch: batch).run(sink=flat, ordered=True)
    assert flat == kept

    # Children of a flat_map before the batch keep their order within their root.
    pairs: list[tuple[int, int]] = []
    (
        pipeline.flat_map(lambda x: [(x, 0), (x, 1)])
        .batch(3)
        .flat_map(lambda batch: batch)
        .run(sink=pairs, ordered=True)
    )
    assert pairs == [(x, i) for x in kept for i in (0, 1)]


async def test_async_generators_and_async_sources() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(5):
            await asyncio.sleep(0)
            yield i

    async def twice(x: int) -> AsyncIterator[int]:
        yield x
        yield x + 100

    got = [x async for x in cv.Pipeline(source()).flat_map(twice).stream(ordered=True)]
    assert got == [0, 100, 1, 101, 2, 102, 3, 103, 4, 104]


def test_ordered_results_follow_input_order_despite_random_delays() -> None:
    async def jitter(x: int) -> int:
        await asyncio.sleep((x * 7919 % 13) / 2000)
        return x

    out: list[int] = []
    cv.Pipeline(range(300)).map(jitter, concurrency=50).run(sink=out, ordered=True)
    assert out == list(range(300))


def test_failures_are_recorded_with_stage_kind_and_attempts() -> None:
    calls: dict[int, int] = {}

    def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        if x % 5 == 0:
            raise ValueError(f"bad {x}")
        return x

    out: list[int] = []
    result = cv.Pipeline(range(20)).map(flaky, retries=cv.Retry(3, backoff=0)).run(sink=out)
    assert sorted(out) == [x for x in range(20) if x % 5]
    assert result.failed == 4
    assert result.failures_by_kind == {"error": 4}
    failure = next(f for f in result.failures if f.key == 5)
    assert (failure.stage, failure.kind, failure.attempts, failure.error_type) == (
        "flaky",
        "error",
        3,
        "ValueError",
    )
    assert "bad 5" in failure.message
    assert failure.item == 5
    assert calls[5] == 3
    assert calls[1] == 1


def test_retry_then_success() -> None:
    attempts: dict[int, int] = {}

    async def twice_flaky(x: int) -> int:
        attempts[x] = attempts.get(x, 0) + 1
        if attempts[x] < 3:
            raise ConnectionError("try again")
        return x

    result = cv.Pipeline(range(10)).map(twice_flaky, retries=cv.Retry(3, backoff=0.001)).run()
    assert result.results == 10
    assert result.failed == 0
    assert result.stages[0].retried == 20


def test_on_error_raise_reraises_the_first_failure() -> None:
    def boom(x: int) -> int:
        if x == 50:
            raise KeyError("fifty")
        return x

    with pytest.raises(KeyError, match="fifty") as caught:
        cv.Pipeline(range(1000)).map(boom).run(on_error="raise")
    assert any("stage 'boom'" in note for note in caught.value.__notes__)


def test_timeouts_on_the_loop_and_on_threads() -> None:
    async def slow_async(x: int) -> int:
        if x == 2:
            await asyncio.sleep(30)
        return x

    release = threading.Event()

    def slow_thread(x: int) -> int:
        if x == 2:
            release.wait(30)
        return x

    result = cv.Pipeline(range(5)).map(slow_async, timeout=0.2).run()
    assert result.failures_by_kind == {"timeout": 1}
    assert result.failures[0].key == 2
    releaser = threading.Timer(0.5, release.set)
    releaser.start()
    result = cv.Pipeline(range(5)).map(slow_thread, timeout=0.2, workers=2).run()
    releaser.join()
    assert result.failures_by_kind == {"timeout": 1}
    assert result.failures[0].key == 2
    assert result.stages[0].abandoned_threads in (0, 1)  # counted until the thread finished


def test_a_timeout_error_raised_by_the_function_is_not_our_timeout() -> None:
    async def own_timeout(x: int) -> int:
        raise TimeoutError("the callee's own")

    result = cv.Pipeline([1]).map(own_timeout, timeout=10).run()
    assert result.failures[0].kind == "error"


def test_concurrency_and_per_key_limits_are_obeyed() -> None:
    state = {"now": 0, "max": 0}
    per_key: dict[int, int] = {}
    per_key_max: dict[int, int] = {}

    async def tracked(x: int) -> int:
        state["now"] += 1
        per_key[x % 3] = per_key.get(x % 3, 0) + 1
        state["max"] = max(state["max"], state["now"])
        per_key_max[x % 3] = max(per_key_max.get(x % 3, 0), per_key[x % 3])
        await asyncio.sleep(0.002)
        state["now"] -= 1
        per_key[x % 3] -= 1
        return x

    cv.Pipeline(range(300)).map(tracked, concurrency=7).run()
    assert state["max"] == 7
    state["max"] = 0
    per_key_max.clear()
    cv.Pipeline(range(300)).map(tracked, concurrency=50, limit_per=(lambda x: x % 3, 2)).run()
    assert max(per_key_max.values()) == 2
    assert state["max"] == 6


def test_rate_limit_spaces_starts() -> None:
    starts: list[float] = []

    async def stamp(x: int) -> int:
        starts.append(time.monotonic())
        return x

    cv.Pipeline(range(11)).map(stamp, rate="50/s", concurrency=20).run()
    assert len(starts) == 11
    # Ten intervals at 50/s take at least ~0.2 s of clock time (not a speed assertion:
    # it checks a lower bound that only the limiter can produce).
    assert starts[-1] - starts[0] >= 0.18


def test_infinite_generator_streams_and_stops() -> None:
    def naturals() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    taken = []
    for value in cv.Pipeline(naturals()).map(add_one).map(double):
        taken.append(value)
        if len(taken) == 1000:
            break
    assert len(taken) == 1000
    assert len(set(taken)) == 1000


async def test_async_iteration_can_stop_early() -> None:
    async def forever() -> AsyncIterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    got = []
    async for value in cv.Pipeline(forever()).map(double):
        got.append(value)
        if len(got) == 1000:
            break
    assert len(got) == 1000


async def test_run_inside_a_running_loop_uses_a_background_thread() -> None:
    out: list[int] = []
    result = cv.Pipeline(range(100)).map(double).run(sink=out)  # as in Jupyter
    assert result.results == 100
    assert sorted(out) == [x * 2 for x in range(100)]
    assert sorted(cv.Pipeline(range(10)).map(add_one)) == list(range(1, 11))


async def test_run_async_and_stream_failures() -> None:
    result = await cv.Pipeline(range(10)).map(double).run_async()
    assert result.results == 10
    got = [x async for x in cv.Pipeline([1, 0, 2]).map(lambda x: 1 // x).stream(failures=True)]
    assert sorted(v for v in got if not isinstance(v, cv.Failure)) == [0, 1]
    assert [f.key for f in got if isinstance(f, cv.Failure)] == [1]


def test_events_reach_observers_and_a_broken_observer_is_detached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Any] = []

    def broken(event: cv.Event) -> None:
        raise RuntimeError("observer bug")

    result = cv.Pipeline(range(10)).map(add_one).run(observers=(events.append, broken))
    kinds = {type(e).__name__ for e in events}
    assert {"RunStarted", "ItemStarted", "ItemFinished", "RunFinished"} <= kinds
    assert sum(isinstance(e, cv.ItemFinished) for e in events) == 10
    assert result.results == 10
    assert sum("observer bug" in r.getMessage() or "detached" in r.getMessage()
               for r in caplog.records) == 1  # fmt: skip


def test_sink_callables_and_summary() -> None:
    got: list[int] = []
    result = cv.Pipeline(range(5)).map(add_one).run(sink=got.append)
    assert sorted(got) == [1, 2, 3, 4, 5]
    text = result.summary()
    assert "5 items" in text
    assert "add_one" in text
    assert "p95" in text


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: p.map(lambda x: x, on="processes"), "module level"),
        (lambda p: p.map(add_one, on="loop"), "async def"),
        (lambda p: p.map(double, on="threads"), "async def"),
        (lambda p: p.map(add_one, on="gpu"), "choose one of"),
        (lambda p: p.map(add_one, rate="fast"), "20/s"),
        (lambda p: p.map(add_one, workers=0), "workers"),
        (lambda p: p.map(add_one, timeout=-1), "timeout"),
        (lambda p: p.map(add_one, limit_per=4), "limit_per"),
        (lambda p: p.batch(0), "batch size"),
        (lambda p: p.flat_map(add_one, on="processes"), "flat_map"),
        # A plain call on the loop cannot be interrupted: the timeout would go unkept.
        (lambda p: p.map(add_one, on="inline", timeout=0.05), "use on='threads'"),
    ],
)
def test_misuse_is_refused_when_building(build: Any, message: str) -> None:
    with pytest.raises(cv.UsageError, match=message):
        build(cv.Pipeline([1]))


def test_not_iterable_source_is_refused() -> None:
    with pytest.raises(cv.UsageError, match="not iterable"):
        cv.Pipeline(42)


def test_ticks_carry_queue_depths_and_in_flight_counts() -> None:
    ticks: list[cv.Tick] = []

    async def slow(x: int) -> int:
        await asyncio.sleep(0.05)
        return x

    def on_event(event: cv.Event) -> None:
        if isinstance(event, cv.Tick):
            ticks.append(event)

    cv.Pipeline(range(40)).map(slow, concurrency=4).run(observers=(on_event,))
    assert ticks, "a half-second run sends at least one tick"
    stage = ticks[0].statistics.stages[0]
    assert stage.name == "slow"
    assert stage.in_flight == 4
    assert stage.queue_depth > 0  # the source filled the inbox while the stage was busy


@pytest.mark.parametrize("ordered", [False, True])
def test_cheap_inline_stages_run_inside_the_previous_stage_and_keep_their_books(
    ordered: bool,
) -> None:
    """Inline map and filter stages after a loop stage are called by its workers (no
    queue between them), and still count, fail and filter under their own names."""
    threads: set[int] = set()
    tasks: set[str] = set()

    async def fetchish(x: int) -> int:
        await asyncio.sleep(0.001 * (x % 3))
        return x

    def parse(x: int) -> int:
        threads.add(threading.get_ident())
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task.get_name().rpartition(" ")[0])
        if x % 10 == 7:
            raise ValueError(f"bad page {x}")
        return x * 10

    def keep(x: int) -> bool:
        return x % 20 != 0

    pipeline = (
        cv.Pipeline(range(100)).map(fetchish, concurrency=8).map(parse, on="inline").filter(keep)
    )
    out: list[int] = []
    result = pipeline.run(sink=out, ordered=ordered)
    expected = [x * 10 for x in range(100) if x % 10 != 7 and (x * 10) % 20 != 0]
    assert (out if ordered else sorted(out)) == expected
    assert threads == {threading.get_ident()}  # on the loop's thread, like any inline stage
    assert tasks == {"conveyor fetchish worker"}  # called by the first stage's workers
    assert result.failed == 10
    assert {f.stage for f in result.failures} == {"parse"}
    assert all(f.kind == "error" for f in result.failures)
    fetch, parse_stage, keep_stage = result.stages
    assert (fetch.succeeded, parse_stage.succeeded, parse_stage.failed) == (100, 90, 10)
    assert (keep_stage.started, keep_stage.filtered) == (90, 50)
    assert parse_stage.queue_depth == keep_stage.queue_depth == 0


def test_a_user_exception_keeps_its_traceback_and_conveyors_own_outcomes_carry_none() -> None:
    def broken(x: int) -> int:
        raise KeyError(x)

    result = cv.Pipeline(range(2)).map(broken, on="threads").run()
    assert all("KeyError" in (f.traceback or "") for f in result.failures)
    result = cv.Pipeline(["not a url"]).fetch().run()
    (failure,) = result.failures
    assert failure.kind == "bad-url"
    assert failure.traceback is None  # the message says it all, and it cost nothing
