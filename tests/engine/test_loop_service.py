"""Loop processes are general: a stage's service that is not HTTP, on two loops under one
shared budget, never has more calls out than the budget (counted by the server)."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

from conveyor._engine.runner import Runner
from conveyor._engine.spec import make_stage

from .counter_service import (
    BusyFactory,
    BusyReport,
    CounterFactory,
    CounterReport,
    CountingServer,
    ListSink,
)


async def _unused(item: Any) -> Any:  # pragma: no cover - the service's call runs instead
    raise AssertionError("the stage calls its service")


async def test_a_service_on_two_loops_holds_the_shared_budget() -> None:
    budget = 4
    async with CountingServer(gather=budget) as server:
        stage = make_stage(
            "map",
            _unused,
            on="loop",
            concurrency=budget,
            name="count",
            factory=CounterFactory(server.port),
        )
        out: list[tuple[int, bytes]] = []
        runner = Runner(range(60), [stage], sink=ListSink(out), loops=2)
        result = await runner.run()

    assert result.results == 60
    assert sorted(item for item, _ in out) == list(range(60))
    assert all(answer == str(item).encode() for item, answer in out)
    assert server.calls == 60
    assert server.max_in_flight == budget  # reached, never passed
    count = result.stages[0]
    assert count.place == "loops"
    # Each loop's report, merged by the fields' own rules, with no word of them in the
    # engine: counts add up, a setting stays as each loop had it.
    assert isinstance(count.details, CounterReport)
    assert count.details.calls == 60
    assert count.details.loops == 2
    assert pickle.loads(pickle.dumps(result)).stages[0].details == count.details
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("conveyor-loop")]


async def test_a_loop_busy_with_its_calls_tells_its_service_so() -> None:
    """A head whose calls keep its loop on the CPU: each loop tells its service that it
    is bound (``ports.LoopBound``), so that a fetch does not take its own lag for its
    hosts' latency. The calls are counted work, not time: a slow machine only makes
    each loop's share of a core look higher."""
    stage = make_stage(
        "map", _unused, on="loop", concurrency=4, name="busy", factory=BusyFactory(200_000)
    )
    out: list[Any] = []
    result = await Runner(range(400), [stage], sink=ListSink(out), loops=2).run()

    assert sorted(out) == list(range(400))
    busy = result.stages[0]
    assert busy.place == "loops"
    assert isinstance(busy.details, BusyReport)
    assert busy.details.calls == 400
    assert busy.details.bound_heard >= 1
