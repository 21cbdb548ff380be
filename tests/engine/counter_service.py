"""A stage's service that is not HTTP: each call is one exchange with a counting server.

It implements the engine's ports (``ServiceFactory``, ``Service``, a ``StageReport``) the
way the fetch does, and holds each call within the ``Budget`` it is bound to, so a test
can run it on loop processes and read, from the server, how many calls were out at once
in all of them. Module-level, so loop processes can import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor._engine.ports import Budget, LoopBound, StageReport, merge_by, same

_POLL = 0.001  # how often a call waiting for a slot of the budget looks again


@dataclass(frozen=True, slots=True)
class CounterReport(StageReport):
    calls: int = 0  # added up over the loops
    waited: int = 0  # calls that found the budget spent at first
    loops: int = field(default=0, metadata=merge_by(same))


class CounterService:
    def __init__(self, port: int, budget: Budget | None, loops: int) -> None:
        self._port = port
        self._budget = budget
        self._loops = loops
        self._calls = 0
        self._waited = 0

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: Any) -> tuple[Any, bytes]:
        budget = self._budget
        if budget is not None and not budget.take_nowait():
            self._waited += 1
            # The budget is other processes' too: nothing here could wake us, so look again.
            while not budget.take_nowait():  # noqa: ASYNC110
                await asyncio.sleep(_POLL)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
            try:
                writer.write(f"{item}\n".encode())
                answer = await reader.readline()
            finally:
                writer.close()
                await writer.wait_closed()
        finally:
            if budget is not None:
                budget.give()
        self._calls += 1
        return item, answer.strip()

    def report(self) -> CounterReport:
        return CounterReport(calls=self._calls, waited=self._waited, loops=self._loops)

    def attempts(self, result: Any) -> int:
        return 1


class CounterFactory:
    """Picklable; ``share`` and ``bind`` as the ports ask."""

    def __init__(self, port: int, budget: Budget | None = None, loops: int = 1) -> None:
        self.port = port
        self.budget = budget
        self.loops = loops

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[CounterService]:
        yield CounterService(self.port, self.budget, self.loops)

    def share(self, index: int, loops: int, *, spread: bool = False) -> CounterFactory:
        return CounterFactory(self.port, self.budget, loops)

    def spreads(self, loops: int) -> bool:
        return False  # one loop per key: what its tests show holds without dividing

    def bind(self, budget: Budget) -> CounterFactory:
        return CounterFactory(self.port, budget, self.loops)


class CountingServer:
    """Counts the connections open at once; the first ``gather`` calls wait for each
    other (so the budget is shown to be reachable), the rest answer after a few turns."""

    def __init__(self, gather: int) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        self._gather = gather
        self._gathered = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CountingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        self.in_flight += 1
        self.calls += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self._gather:
            self._gathered.set()
        try:
            if not self._gathered.is_set():
                # Bounded: should the budget never be reached, the test fails on its count.
                await asyncio.wait_for(self._gathered.wait(), 30)
            for _ in range(3):
                await asyncio.sleep(0.001)  # long enough for other calls to overlap
        finally:
            self.in_flight -= 1
        writer.write(line)
        await writer.drain()
        writer.close()


class ListSink:
    """The engine's ``Sink`` port over a list (the writer thread appends)."""

    def __init__(self, out: list[Any]) -> None:
        self.out = out

    def open(self, position: Any = None) -> None:
        return None

    def write(self, results: Any) -> None:
        self.out.extend(results)

    def write_failures(self, failures: Any) -> None:
        raise AssertionError(f"no failures expected: {failures}")

    def flush(self) -> Any:
        return None

    def close(self) -> None:
        return None


class CollectingSink:
    """The ``Sink`` port over its own list, failures ignored, the count of results as
    the durable position (for journaled runs)."""

    def __init__(self) -> None:
        self.out: list[Any] = []

    def open(self, position: Any = None) -> None:
        pass

    def write(self, results: Any) -> None:
        self.out.extend(results)

    def write_failures(self, failures: Any) -> None:
        pass

    def flush(self) -> int:
        return len(self.out)

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class BusyReport(StageReport):
    calls: int = 0  # added up over the loops
    bound_heard: int = 0  # ``LoopBound(True)`` notices heard, added up over the loops


class BusyService:
    """Each call burns CPU on its loop (``work`` rounds of arithmetic, then a turn of the
    loop): a service that hears (``ports.Peered``) what the engine says of its loop."""

    def __init__(self, work: int) -> None:
        self._work = work
        self._calls = 0
        self._bound_heard = 0

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: Any) -> Any:
        total = 0
        for i in range(self._work):
            total += i * i
        await asyncio.sleep(0)  # the loop turns: its other tasks run between calls
        self._calls += 1
        return item

    def join(self, peers: Any) -> None:
        return None

    def hear(self, notice: Any) -> None:
        if isinstance(notice, LoopBound) and notice.bound:
            self._bound_heard += 1

    def report(self) -> BusyReport:
        return BusyReport(calls=self._calls, bound_heard=self._bound_heard)

    def attempts(self, result: Any) -> int:
        return 1


class BusyFactory:
    def __init__(self, work: int, budget: Budget | None = None) -> None:
        self.work = work
        self.budget = budget

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[BusyService]:
        yield BusyService(self.work)

    def share(self, index: int, loops: int, *, spread: bool = False) -> BusyFactory:
        return BusyFactory(self.work, self.budget)

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> BusyFactory:
        return BusyFactory(self.work, budget)
