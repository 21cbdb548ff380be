"""A busy event loop must not starve the run's threads (writer, journal, thread stages):
``GilYield`` lets go of the GIL every period while work is on a thread, and only then.

How much that helps a waiting thread is a measurement (``benchmarks/gil.py``): under a
loaded machine it blurs, so it is not asserted here.
"""

from __future__ import annotations

import asyncio
import types

import pytest

from conveyor._engine import gil
from conveyor._engine.gil import GilYield, in_thread


@pytest.fixture
def yields(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The loop's ``time.sleep`` calls, counted instead of made."""
    calls: list[float] = []
    monkeypatch.setattr(gil, "time", types.SimpleNamespace(sleep=calls.append))
    return calls


async def test_the_loop_yields_while_work_is_on_a_thread_and_only_then(
    yields: list[float],
) -> None:
    loop = asyncio.get_running_loop()
    gil_yield = GilYield(loop, period=0.001)
    gil_yield.start()
    await asyncio.sleep(0.03)
    assert yields == []  # nothing on a thread: the loop keeps the GIL

    pending: asyncio.Future[None] = loop.create_future()
    in_thread(pending)  # work handed to a thread, not done yet
    for _ in range(1000):  # bounded: the ticks come every millisecond
        await asyncio.sleep(0.005)
        if yields:
            break
    assert yields
    assert set(yields) == {0}  # sleep(0): the GIL let go, no time lost

    pending.set_result(None)
    await asyncio.sleep(0)  # its done-callback runs
    seen = len(yields)
    await asyncio.sleep(0.03)
    assert len(yields) == seen  # done: no more yields
    gil_yield.stop()


async def test_stop_ends_the_ticks(yields: list[float]) -> None:
    loop = asyncio.get_running_loop()
    gil_yield = GilYield(loop, period=0.001)
    pending: asyncio.Future[None] = loop.create_future()
    in_thread(pending)
    gil_yield.start()
    gil_yield.stop()
    await asyncio.sleep(0.03)
    assert yields == []
    pending.set_result(None)
    await asyncio.sleep(0)
