"""``Pipeline.fetch``: the HTTP client as a stage on the event loop.

The client applies its own limits and retries (per host, Retry-After, 429 slow-down), so
the engine stage runs with retries off and as many workers as the client's concurrency.
One client (one connection pool) is opened per run and closed when the run ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from .._engine.stage import StageSpec, make_stage


async def _fetch(value: Any) -> Any:  # pragma: no cover - replaced per run by the client
    raise RuntimeError("the fetch stage runs only inside a run")


def fetch_stage(options: Mapping[str, Any], *, name: str = "fetch") -> StageSpec:
    """The fetch stage, its client built from ``FetchConfig`` options (a dict of them)."""
    from .._http.client import HttpClient
    from .._http.config import FetchConfig

    config = FetchConfig.coerce(None, options)  # a misspelt option gets a 'did you mean'

    @asynccontextmanager
    async def client_for_run() -> AsyncIterator[Callable[[Any], Any]]:
        async with HttpClient(config) as client:
            yield client.fetch

    return make_stage(
        "map",
        _fetch,
        on="loop",
        concurrency=config.concurrency,
        name=name or "fetch",
        factory=client_for_run,
    )
