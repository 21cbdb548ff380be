"""``Pipeline.fetch``: the HTTP client as a stage on the event loop.

The client applies its own limits and retries (per host, Retry-After, 429 slow-down), so
the engine stage runs with retries off and as many workers as the client's concurrency.
One client (one connection pool) is opened per run and closed when the run ends, in each
loop process when the run has several (``ClientFactory.share``): there, each item goes to
the loop that owns its host (``_http/hosts.host_key``), and the global rate is divided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .._engine.spec import StageSpec, make_stage
from .._http.hosts import host_key

if TYPE_CHECKING:
    from .._engine.slots import LoopSlots
    from .._http.config import FetchConfig


class ClientFactory:
    """Opens the run's ``HttpClient``; picklable, so a loop process can open its own."""

    def __init__(self, config: FetchConfig, slots: LoopSlots | None = None) -> None:
        self.config = config
        self.slots = slots

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[Callable[[Any], Any]]:
        from .._http.client import HttpClient

        async with HttpClient(self.config, shared_slots=self.slots) as client:
            yield client.fetch

    def with_slots(self, slots: LoopSlots) -> ClientFactory:
        """The factory for a loop process whose global slots are shared with the other
        loops (``_engine/slots.py``): ``concurrency`` holds across all of them."""
        return ClientFactory(self.config, slots)

    def share(self, index: int, loops: int) -> ClientFactory:
        """The factory for loop ``index`` of ``loops``. The global rate is divided, so the
        parts add up to what the user set. Concurrency is one budget, the loops' shared
        slots (``with_slots``), so a loop owning the busy hosts may use all of it.
        Per-host limits stay whole: each host has one loop."""
        rate = self.config.rate_per_second
        if rate is None:
            return self
        return ClientFactory(dataclasses.replace(self.config, rate=rate / loops), self.slots)


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
    return dataclasses.replace(stage, route=host_key, own_attempts=True)
