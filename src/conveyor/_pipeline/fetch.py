"""``Pipeline.fetch``: the HTTP client as a stage's service, on the event loop.

The client applies its own limits and retries (per host, Retry-After, 429 slow-down), so
the engine stage runs with retries off and as many workers as the client's concurrency.
One client (one connection pool) is opened per run and closed when the run ends, in each
loop process when the run has several: there, each item goes to the loop that owns its
host (``_http/hosts.host_key``), the global rate is divided (``ClientFactory.share``)
and the concurrency is one budget the loops share (``ClientFactory.bind``).

``ClientFactory`` and ``FetchService`` implement the engine's ports for a stage's
service (``_engine/ports.py``); the client's report is a ``FetchReport``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._engine.ports import Budget
from .._engine.spec import StageSpec, make_stage
from .._http.hosts import host_key

if TYPE_CHECKING:
    from .._http.client import HttpClient
    from .._http.config import FetchConfig
    from .._http.response import Response
    from .._http.stats import FetchReport


class FetchService:
    """The open client as the stage sees it: what to call, what it reports, how many
    tries a response took."""

    __slots__ = ("client", "per_host")

    def __init__(self, client: HttpClient, per_host: int | None = None) -> None:
        self.client = client
        # The whole per-host limit, for a loop that holds a part of it (``share``): the
        # report names what the user set (the hint tells which flag to raise).
        self.per_host = per_host

    @property
    def call(self) -> Callable[[Any], Awaitable[Response]]:
        return self.client.fetch

    def report(self) -> FetchReport:
        report = self.client.details()
        if self.per_host is None:
            return report
        return dataclasses.replace(report, per_host=self.per_host)

    def attempts(self, result: Response) -> int:
        return result.attempts


class ClientFactory:
    """Opens the run's ``HttpClient``; picklable, so a loop process can open its own."""

    def __init__(
        self, config: FetchConfig, budget: Budget | None = None, per_host: int | None = None
    ) -> None:
        self.config = config
        self.budget = budget
        self.per_host = per_host  # the whole limit, when ``config`` holds a part of it

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[FetchService]:
        from .._http.client import HttpClient

        async with HttpClient(self.config, budget=self.budget) as client:
            yield FetchService(client, self.per_host)

    def bind(self, budget: Budget) -> ClientFactory:
        """The factory for a loop process whose global slots are shared with the other
        loops (``_engine/loops/slots.py``): ``concurrency`` holds across all of them."""
        return ClientFactory(self.config, budget, self.per_host)

    def share(self, index: int, loops: int, *, spread: bool = False) -> ClientFactory:
        """The factory for loop ``index`` of ``loops``. The global rate is divided, so the
        parts add up to what the user set. Concurrency is one budget, the loops' shared
        slots (``bind``), so a loop with the busy hosts may use all of it. Per-host limits
        stay whole when each host has one loop; with ``spread`` (every host's URLs go to
        every loop) each loop holds its part of them: ``per_host`` in parts that add up to
        it, ``host_rate`` divided."""
        config = self.config
        changes: dict[str, Any] = {}
        if config.rate_per_second is not None:
            changes["rate"] = config.rate_per_second / loops
        if spread:
            changes["per_host"] = _part(config.per_host, index, loops)
            if config.host_rate_per_second is not None:
                changes["host_rate"] = config.host_rate_per_second / loops
        if not changes:
            return self
        whole = config.per_host if spread else self.per_host
        return ClientFactory(dataclasses.replace(config, **changes), self.budget, whole)

    def spreads(self, loops: int) -> bool:
        """A host may be spread over ``loops`` loops when each can hold a part of its
        ``per_host`` (a host's pauses then go to every loop: ``FetchService``)."""
        return self.config.per_host >= loops


def _part(total: int, index: int, parts: int) -> int:
    """Part ``index`` of ``total`` cut into ``parts`` whole parts that add up to it."""
    return total // parts + (1 if index < total % parts else 0)


async def _fetch(value: Any) -> Any:  # pragma: no cover - replaced per run by the client
    raise RuntimeError("the fetch stage runs only inside a run")


def fetch_stage(options: Mapping[str, Any], *, name: str = "fetch") -> StageSpec:
    """The fetch stage, its client built from ``FetchConfig`` options (a dict of them)."""
    from .._http.config import FetchConfig

    config = FetchConfig.coerce(None, options)  # a misspelt option gets a 'did you mean'
    stage = make_stage(
        "map",
        _fetch,
        on="loop",
        concurrency=config.concurrency,
        name=name or "fetch",
        factory=ClientFactory(config),
    )
    return dataclasses.replace(stage, route=host_key)
