"""The concurrency budget loop processes share (``_engine/loops/slots.py``), with real processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from typing import Any

from conveyor._engine.loops.slots import LoopSlots, SharedSlots
from conveyor._http.limits import Limits


def hold(slots: LoopSlots, count: int, ready: Any) -> None:
    """A stand-in loop process: takes ``count`` slots and keeps them until killed."""
    for _ in range(count):
        assert slots.take_nowait()
    ready.set()
    time.sleep(60)


def test_the_slots_of_a_killed_loop_come_back() -> None:
    context = multiprocessing.get_context("spawn")
    shared = SharedSlots(context, 5, 2)
    ready = context.Event()
    holder = context.Process(target=hold, args=(shared.for_loop(1), 3, ready), daemon=True)
    holder.start()
    try:
        assert ready.wait(30)
        mine = shared.for_loop(0)
        assert [mine.take_nowait() for _ in range(4)] == [True, True, False, False]
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    assert shared.reclaim(1) == 3
    assert [mine.take_nowait() for _ in range(4)] == [True, True, True, False]
    assert shared.reclaim(1) == 0  # nothing twice


async def test_two_loops_never_hold_more_than_the_budget_and_hand_slots_over() -> None:
    shared = SharedSlots(multiprocessing.get_context("spawn"), 3, 2)
    one, two = (
        Limits(concurrency=3, per_host=10, rate=None, host_rate=None, shared=shared.for_loop(i))
        for i in range(2)
    )
    assert all(one.try_acquire_nowait("a:80") for _ in range(2))
    assert two.try_acquire_nowait("b:80")
    assert not two.try_acquire_nowait("b:80")  # the third slot is out, in the other loop

    waiting = asyncio.create_task(two.acquire("b:80"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    one.release("a:80")  # no one waits in `one`: the slot goes back to the shared budget
    await asyncio.wait_for(waiting, 5)  # and `two`, looking, takes it
    assert one.in_flight() + two.in_flight() == 3

    late = asyncio.create_task(one.acquire("a:80"))
    await asyncio.sleep(0.01)
    waiting_here = asyncio.create_task(two.acquire("b:80"))
    await asyncio.sleep(0.01)
    two.release("b:80")  # someone waits in `two`: handed over there, not to `one`
    await asyncio.wait_for(waiting_here, 5)
    assert not late.done()
    assert one.in_flight() + two.in_flight() == 3
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
