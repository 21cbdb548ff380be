"""A stage's service that keeps its loop busy, times its calls (``ports.Timed``) and
learns (``ports.Learns``): ``loops="auto"``'s move shown without HTTP. Module-level, so
loop processes can import it.

Each call burns 1 ms of its thread's CPU (the loop reads CPU-bound on any machine), lets
the loop turn, and returns ``(item, pid, learnt)``: ``learnt`` is what the service had
heard of another service's learning (``("learnt", pid)`` notices) when the call began.
``lag_shows``: whether the call times it reports show a loop's lag (the mean call 5 times
the fastest) or none (every call a second long, as a slow server's: far longer than any
turn of the loop, and as long as the fastest).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from conveyor._engine.ports import Budget, CallTimes, Peers

_BURN = 0.001  # seconds of this thread's CPU a call


class TimedService:
    def __init__(self, lag_shows: bool) -> None:
        self.lag_shows = lag_shows
        self.heard: list[Any] = []
        self.calls = 0

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: int) -> tuple[int, int, list[Any]]:
        learnt = [notice for notice in self.heard if notice[0] == "learnt"]
        end = time.thread_time() + _BURN
        while time.thread_time() < end:  # bounded: 1 ms of this thread's CPU
            pass
        await asyncio.sleep(0)  # a turn of the loop, as a call that sends and reads has
        self.calls += 1
        return item, os.getpid(), learnt

    def call_times(self) -> CallTimes | None:
        calls, self.calls = self.calls, 0
        if not calls:
            return None
        if self.lag_shows:
            return CallTimes(calls, 5 * _BURN, _BURN)
        return CallTimes(calls, 1.0, 1.0)

    def learnt(self) -> tuple[str, int]:
        return "learnt", os.getpid()

    def join(self, peers: Peers) -> None:
        pass

    def hear(self, notice: Any) -> None:
        if isinstance(notice, tuple):
            self.heard.append(notice)

    def report(self) -> None:
        return None

    def attempts(self, result: Any) -> int:
        return 1


class TimedFactory:
    def __init__(self, lag_shows: bool) -> None:
        self.lag_shows = lag_shows

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[TimedService]:
        yield TimedService(self.lag_shows)

    def share(self, index: int, loops: int, *, spread: bool = False) -> TimedFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> TimedFactory:
        return self
