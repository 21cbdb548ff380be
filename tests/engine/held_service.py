"""A service whose items wait while its report says their host is held back by its site
(``ports.HeldReport``): quiet that is politeness, not a stall."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor._engine.ports import Budget, StageReport, by_key, merge_by, same


@dataclass(frozen=True)
class HeldReport(StageReport):
    held: dict[str, tuple[str, float]] = field(
        default_factory=dict, metadata=merge_by(by_key(same))
    )


class HeldService:
    def __init__(self, gate: asyncio.Event) -> None:
        self._gate = gate

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: Any) -> Any:
        await self._gate.wait()
        return item

    def report(self) -> HeldReport:
        return HeldReport(held={} if self._gate.is_set() else {"h:80": ("paused", 30.0)})

    def attempts(self, result: Any) -> int:
        return 1


class HeldFactory:
    def __init__(self) -> None:
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[HeldService]:
        yield HeldService(self._gate)

    def share(self, index: int, loops: int, *, spread: bool = False) -> HeldFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> HeldFactory:
        return self


@dataclass(frozen=True)
class CountingReport(StageReport):
    held: int = 0  # a count, as a crawl's report has


class CountingService(HeldService):
    def report(self) -> CountingReport:  # type: ignore[override]
        return CountingReport(held=1)


class CountingFactory(HeldFactory):
    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[HeldService]:
        yield CountingService(self._gate)
