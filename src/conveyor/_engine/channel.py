"""``Channel``: the bounded FIFO between a run's tasks; ``asyncio.Queue``'s job, lighter.

Every item of a run passes through one or two of these, so their cost is per item. Two
things make this one cheaper than ``asyncio.Queue`` (on CPython 3.11, where that is pure
Python):

* the loop is looked up once, not on every wait (on 3.11 each lookup is a ``getpid()``
  system call);
* a producer with a batch in hand refills the channel when it is half empty (``refill``,
  ``put_some``): it is woken once per half a channel, not once per item.

Only what the runner uses is here, for tasks of the one loop that made the channel.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    """A bounded first-in, first-out channel between tasks of the running loop."""

    __slots__ = ("_getters", "_items", "_loop", "_maxsize", "_putters")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"Channel(maxsize={maxsize}): give at least 1")
        self._maxsize = maxsize
        self._items: deque[T] = deque()
        # Getters wait while there are no items; a put wakes the first of them, which then
        # takes the oldest item. (Handing it that item instead would let a task that did
        # not wait take a newer one first: items would start out of order.)
        self._getters: deque[asyncio.Future[None]] = deque()
        # Each waiting putter with the fill level it waits for: any room, or half empty.
        self._putters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._loop = asyncio.get_running_loop()

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        """Queue ``item`` and wake a waiting getter; ``QueueFull`` when full."""
        if len(self._items) >= self._maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        if self._getters:
            self._wake_getter()

    async def put(self, item: T) -> None:
        """Put ``item``, first waiting for room while the channel is full."""
        while len(self._items) >= self._maxsize:
            await self._room(self._maxsize - 1)
        self.put_nowait(item)

    async def refill(self) -> None:
        """Wait until the channel is at most half full."""
        half = self._maxsize // 2
        while len(self._items) > half:
            await self._room(half)

    def put_some(self, items: list[T], start: int) -> int:
        """Put ``items[start:]`` while there is room; return the index of the first left."""
        end = len(items)
        queued = self._items
        while start < end and len(queued) < self._maxsize:
            queued.append(items[start])
            start += 1
            if self._getters:
                self._wake_getter()
        return start

    async def _room(self, level: int) -> None:
        waiter = self._loop.create_future()
        self._putters.append((level, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_putter()  # the room it was woken for goes to the next one
            raise

    async def get(self) -> T:
        """The oldest item, waiting for one while the channel is empty."""
        items = self._items
        while not items:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and items:
                    self._wake_getter()  # woken for an item it will not take: pass it on
                raise
        item = items.popleft()
        if self._putters:
            self._wake_putter()
        return item

    def _wake_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.popleft()
            if not getter.done():  # skip getters cancelled while waiting
                getter.set_result(None)
                return

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters:
            level, putter = putters[0]
            if putter.done():  # cancelled while it waited
                putters.popleft()
                continue
            if len(self._items) > level:
                return  # the first in line waits for more room than there is
            putters.popleft()
            putter.set_result(None)
            return
