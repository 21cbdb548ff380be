"""The waiting room of a stage whose service parks items (``ports.Parks``): seats.

A fetch stage has more worker tasks than request slots (``StageSpec.slots``): the others
hold items that wait inside the service on their host (held back by its site, a full host,
a retry's pause) with nothing sent, so that they do not keep the slots from other hosts.
Let loose, those extra workers cost every item of a healthy job a hand-over: each took an
item at once and waited inside the service for a slot, which the worker that freed it
then passed on, a wake-up and a turn of the loop per item (6-14 µs a page on one loop,
about a tenth of the client's CPU, measured against nginx).

So a worker takes an item only once it has a seat. There are ``base`` seats (the slots)
and one more for each item the service has parked now (``grow`` when an item starts
waiting on its host, ``shrink`` when it stops): the room opens as far as items wait on
hosts, and no further. A worker keeps its seat from one item to the next (no hand-over
in a healthy job), and gives it up after an item only when the room has shrunk below the
workers seated. ``open`` lets every worker in for good (the end of the input, which every
worker must see; the loops' move, after which the items are sent on, not served here).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from .ports import Parks


def room_for(service: Any, base: int, workers: int) -> Room | None:
    """The room of a stage whose ``workers`` outnumber its ``base`` slots, handed to its
    service when that parks items (``ports.Parks``); None otherwise (every worker at once)."""
    if not isinstance(service, Parks) or base >= workers:
        return None
    room = Room(base)
    service.park_in(room)
    return room


class Room:
    """Seats for a stage's workers; single loop, no locking. A worker sits once, then
    before each item asks ``stays`` and sits again when it had to stand."""

    __slots__ = ("_open", "_waiters", "base", "capacity", "on_change", "seated")

    def __init__(self, base: int) -> None:
        self.base = base
        self.capacity = base  # the slots and the items parked now
        self.seated = 0
        self._open = False
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Told when the items parked change (a loop process tells its parent, which
        # sends that many items more: ``pool.LoopPool``).
        self.on_change: Callable[[], None] | None = None

    @property
    def parked(self) -> int:
        """Items parked in the service now (the seats beyond ``base``)."""
        return self.capacity - self.base

    async def sit(self) -> None:
        """Wait for a seat (at once if one is free)."""
        if self._open or (self.seated < self.capacity and not self._waiters):
            self.seated += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # ``_wake`` counted the seat for us
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.stand()  # seated and cancelled at once: pass the seat on
            else:
                self._waiters.remove(waiter)
            raise

    def stays(self) -> bool:
        """After an item: True to keep the seat; False when the room shrank below the
        workers seated (the seat is given up: ``sit`` again)."""
        if self.seated <= self.capacity or self._open:
            return True
        self.stand()
        return False

    def stand(self) -> None:
        """Give a seat up."""
        self.seated -= 1
        self._wake()

    def grow(self) -> None:
        """An item is parked in the service: one seat more."""
        self.capacity += 1
        self._wake()
        if self.on_change is not None:
            self.on_change()

    def shrink(self) -> None:
        """A parked item goes on (or ends): one seat less."""
        self.capacity -= 1
        if self.on_change is not None:
            self.on_change()

    def open(self) -> None:
        """Every worker in, from now on."""
        self._open = True
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and (self._open or self.seated < self.capacity):
            waiter = waiters.popleft()
            if not waiter.done():
                self.seated += 1
                waiter.set_result(None)
