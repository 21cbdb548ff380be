"""Stage functions and services that defer items (``conveyor.Deferred``), for the
deferred-items tests. Module-level, so worker and loop processes can import them.

Which items a function defers is read from the environment at call time
(``CONVEYOR_TEST_DEFER``: "odd", "third" or "none"), so the same job (the same
fingerprint) defers some items in one run and none in the next; a spawned process
inherits the variable as it was when the run started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor import Deferred
from conveyor._engine.ports import Budget, Holds, Peers, StageReport, WindDown, merge_by, same

DEFER = "CONVEYOR_TEST_DEFER"


def _deferring(n: int) -> bool:
    rule = os.environ.get(DEFER, "none")
    return (rule == "odd" and n % 2 == 1) or (rule == "third" and n % 3 == 0)


def check(n: int) -> None:
    if _deferring(n):
        raise Deferred(f"item {n} is left for later", reason="paused", until=time.time() + 60)


def plain(n: int) -> dict[str, int]:
    check(n)
    return {"n": n}


async def on_loop(n: int) -> dict[str, int]:
    check(n)
    return {"n": n}


def children(n: int) -> Iterator[dict[str, int]]:
    """Three children per item; the second of an item that defers raises."""
    for i in range(3):
        if i == 1:
            check(n)
        yield {"n": n, "child": i}


def batch_of(numbers: list[int]) -> list[dict[str, int]]:
    """A batch is deferred when it holds 9 and the rule defers 9."""
    if 9 in numbers:
        check(9)
    return [{"n": n} for n in numbers]


def line_number(line: str) -> dict[str, Any]:
    n = int(line.rpartition("-")[2])
    time.sleep(0.005)  # slow enough for a kill to land mid-run
    check(n)
    return {"key": line, "n": n}


# -- a service that holds keys back (``ports.Holding``, ``ports.HoldingReport``) ---------


@dataclass(frozen=True)
class HoldReport(StageReport):
    holds: dict[str, tuple[str, float]] = field(default_factory=dict, metadata=merge_by(same))


class HoldService:
    def __init__(self, given: Holds, hold: Holds) -> None:
        self.given = dict(given)  # what the factory was handed from the journal
        self.hold = dict(hold)

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, item: Any) -> Any:
        return {"item": item, "given": sorted(self.given)}

    def report(self) -> HoldReport:
        return HoldReport(holds=dict(self.hold))

    def attempts(self, result: Any) -> int:
        return 1


@dataclass(frozen=True)
class HoldFactory:
    """Its services report ``hold`` as their holds; ``holding`` records what it is given."""

    hold: dict[str, tuple[str, float]] = field(default_factory=dict)
    given: dict[str, tuple[str, float]] = field(default_factory=dict)

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[HoldService]:
        yield HoldService(self.given, self.hold)

    def holding(self, holds: Holds) -> HoldFactory:
        return dataclasses.replace(self, given=dict(holds))

    def share(self, index: int, loops: int, *, spread: bool = False) -> HoldFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> HoldFactory:
        return self


# -- a service that hears the run wind down (``ports.Peered``, ``ports.WindDown``) ------


class WindService:
    """Items up to ``quick`` end at once; the others wait for a ``WindDown`` and then
    defer themselves with its reason, except those in ``stubborn``, which wait on."""

    def __init__(self, quick: int, stubborn: frozenset[int]) -> None:
        self.quick = quick
        self.stubborn = stubborn
        self.heard: list[Any] = []
        self._wound = asyncio.Event()

    @property
    def call(self) -> Callable[[Any], Awaitable[Any]]:
        return self._call

    async def _call(self, n: int) -> dict[str, Any]:
        if n < self.quick:
            return {"n": n}
        if n in self.stubborn:
            await asyncio.Event().wait()  # never ends by itself: the run must cut it
        await self._wound.wait()
        reason = self.heard[-1].reason
        raise Deferred(f"item {n}: the run winds down", reason=reason)

    def join(self, peers: Peers) -> None:
        pass

    def hear(self, notice: Any) -> None:
        if isinstance(notice, WindDown):
            self.heard.append(notice)
            HEARD.append(notice)
            self._wound.set()

    def report(self) -> None:
        return None

    def attempts(self, result: Any) -> int:
        return 1


HEARD: list[WindDown] = []  # every WindDown any WindService in this process heard


@dataclass(frozen=True)
class WindFactory:
    quick: int
    stubborn: frozenset[int] = frozenset()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[WindService]:
        yield WindService(self.quick, self.stubborn)

    def share(self, index: int, loops: int, *, spread: bool = False) -> WindFactory:
        return self

    def spreads(self, loops: int) -> bool:
        return True

    def bind(self, budget: Budget) -> WindFactory:
        return self


class GatedHoldService(HoldService):
    """A ``HoldService`` whose items wait for ``gate``: nothing finishes meanwhile."""

    def __init__(self, given: Holds, hold: Holds, gate: asyncio.Event) -> None:
        super().__init__(given, hold)
        self._gate = gate

    async def _call(self, item: Any) -> Any:
        await self._gate.wait()
        return {"item": item, "given": sorted(self.given)}


@dataclass(frozen=True)
class GatedHoldFactory(HoldFactory):
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[HoldService]:
        yield GatedHoldService(self.given, self.hold, self.gate)
