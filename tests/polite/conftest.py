"""Helpers of the politeness tests: the arena with small settings, a client on it.

Every test asserts on what the arena's hosts saw (their counters) and on the items'
outcomes, never on how long anything took: the suite runs on two busy cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from conveyor._errors import ConveyorError
from conveyor.http import HttpClient, Response

# Fast retries: the waits that matter here are the sites' and the controller's own.
FAST = {"backoff": 0.01, "max_backoff": 0.05}


def client(**options: Any) -> HttpClient:
    return HttpClient(**{**FAST, **options})


async def gather(c: HttpClient, urls: list[str]) -> list[Response | BaseException]:
    """Every URL fetched at once; an item's error in its place."""
    results = await asyncio.gather(*(c.fetch(url) for url in urls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ConveyorError):
            raise result
    return results


async def until(condition: Callable[[], bool], *, limit: float = 20.0) -> None:
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
