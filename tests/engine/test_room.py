"""The waiting room (``_engine/room.py``): a stage's workers beyond its slots take items
only while its service has items parked (waiting on their key with nothing out)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from conveyor._engine.ports import Parks, WaitingRoom
from conveyor._engine.room import Room
from conveyor._engine.runner import Runner
from conveyor._engine.spec import make_stage

from .counter_service import CollectingSink
from .held_service import HeldFactory


async def test_seats_are_the_base_and_one_for_each_item_parked() -> None:
    room = Room(2)
    await room.sit()
    await room.sit()
    third = asyncio.ensure_future(room.sit())
    await asyncio.sleep(0)
    assert not third.done()  # two seats, both taken
    room.grow()  # an item parked: one seat more
    await asyncio.sleep(0)
    assert third.done()
    assert room.seated == 3
    room.shrink()  # it went on: the room is 2 again, 3 still seated
    assert room.stays() is False  # the first to finish an item gives its seat up
    assert room.seated == 2
    assert room.stays() is True


async def test_open_lets_every_worker_in() -> None:
    room = Room(1)
    await room.sit()
    waiting = [asyncio.ensure_future(room.sit()) for _ in range(5)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)
    room.open()  # the end of the input: each worker must take it
    await asyncio.sleep(0)
    assert all(w.done() for w in waiting)


async def test_a_cancelled_waiter_passes_its_seat_on() -> None:
    room = Room(1)
    await room.sit()
    first = asyncio.ensure_future(room.sit())
    second = asyncio.ensure_future(room.sit())
    await asyncio.sleep(0)
    room.stand()  # the seat goes to ``first``...
    first.cancel()  # ... cancelled before it ran: the seat goes on to ``second``
    for _ in range(3):
        await asyncio.sleep(0)
    assert second.done()
    assert not second.cancelled()
    assert room.seated == 1


class ParkingService:
    """Items ``n % 10 == 0`` wait on a closed gate, parked (as a fetch's request waits on
    a held host); the others are quick. Counts the quick items inside at once."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.room: WaitingRoom | None = None
        self.inside = self.most_inside = 0
        self.quick_done = 0
        self.parked = 0

    def park_in(self, room: WaitingRoom) -> None:
        self.room = room

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: int) -> int:
        if item % 10 == 0:
            room = self.room  # None: the stage gave no room (every worker came in)
            if room is not None:
                room.grow()
            self.parked += 1
            try:
                await self.gate.wait()
            finally:
                if room is not None:
                    room.shrink()
                self.parked -= 1
            return item
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
        finally:
            self.inside -= 1
        self.quick_done += 1
        return item

    def report(self) -> None:
        return None

    def attempts(self, result: Any) -> int:
        return 1


class ParkingFactory(HeldFactory):
    """``HeldFactory``'s gate and ports, its service a ``ParkingService``."""

    service: ParkingService | None = None

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[ParkingService]:  # type: ignore[override]
        self.service = ParkingService(self._gate)
        yield self.service


async def _unused(item: Any) -> Any:  # pragma: no cover - the service's call runs
    return item


@pytest.mark.parametrize("loops", [1, "auto"])
async def test_parked_items_let_others_in_and_the_rest_keep_to_the_slots(
    loops: int | str,
) -> None:
    """Two slots, 40 workers: the quick items never have more than the two slots' worth
    inside (the other workers wait for a seat, not inside the service), and the items
    parked on the closed gate take no seat from them: every quick item ends while the
    parked ones wait (without the room's growth they would hold both seats: a hang).
    The same on the run's loop before ``loops="auto"`` moves (``GrowingLoops``; this
    loop is idle: it never moves): there, let loose, all 40 were inside at once."""
    factory = ParkingFactory()
    stage = make_stage("map", _unused, on="loop", concurrency=40, factory=factory)
    stage = dataclasses.replace(stage, slots=2)
    sink = CollectingSink()
    if loops == "auto":
        runner = Runner(list(range(100)), [stage], sink=sink, loops=2, measured=True)
    else:
        runner = Runner(list(range(100)), [stage], sink=sink)
    run = asyncio.ensure_future(runner.run())
    for _ in range(10_000):  # a bound on the wait, not a measure of time
        service = factory.service
        if service is not None and service.quick_done == 90:
            break
        await asyncio.sleep(0.001)
    service = factory.service
    assert service is not None
    assert isinstance(service, Parks)
    assert service.quick_done == 90
    assert service.parked == 10
    assert service.most_inside <= 2
    factory.release()
    result = await asyncio.wait_for(run, 60)
    assert result.results == 100
    assert sorted(sink.out) == list(range(100))
