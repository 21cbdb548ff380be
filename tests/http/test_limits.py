"""Limits proven by what the server saw: most in flight per host and in all, arrivals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from conveyor.http import HttpClient
from conveyor.testing import RunningSite

from .conftest import wait_for

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]


async def test_per_host_and_concurrency_are_obeyed(site: RunningSite, client: Client) -> None:
    urls = [site.url(f"/page/{i}?delay=0.05", host=i % 2) for i in range(60)]
    async with client(per_host=3, concurrency=5) as c:
        # More callers than slots: the client, not the caller, must hold the line.
        responses = await asyncio.gather(*(c.fetch(u) for u in urls))
    assert all(r.status == 200 for r in responses)
    seen = site.stats.max_in_flight
    assert seen[site.host(0)] == 3
    assert seen[site.host(1)] == 3
    assert site.stats.max_in_flight_total == 5


async def test_concurrency_alone(site: RunningSite, client: Client) -> None:
    async with client(per_host=100, concurrency=7) as c:
        await asyncio.gather(*(c.fetch(site.url(f"/page/{i}?delay=0.05")) for i in range(40)))
    assert site.stats.max_in_flight_total == 7


async def test_rate_is_obeyed(site: RunningSite, client: Client) -> None:
    # 10/s evenly spaced: any half second holds at most 5 arrivals (+1 for scheduling jitter).
    # Without the limit all 12 would arrive within a few milliseconds.
    async with client(rate="10/s", per_host=50, concurrency=50) as c:
        await asyncio.gather(*(c.fetch(site.url(f"/page/{i}", host=i % 2)) for i in range(12)))
    assert site.stats.max_in_window("/page/", 0.5) <= 6
    assert sum(site.stats.hits.values()) == 12


async def test_host_rate_is_per_host(site: RunningSite, client: Client) -> None:
    async with client(host_rate=10, per_host=50, concurrency=50) as c:
        await asyncio.gather(*(c.fetch(site.url(f"/page/{i}", host=i % 2)) for i in range(16)))
    a0 = sorted(a.at for a in site.stats.arrivals if a.host == site.host(0))
    a1 = sorted(a.at for a in site.stats.arrivals if a.host == site.host(1))
    assert len(a0) == len(a1) == 8
    # Each host is paced on its own (at most ~5 in half a second) ...
    for times in (a0, a1):
        assert max(sum(1 for t in times if s <= t < s + 0.5) for s in times) <= 6
    # ... but the two hosts do not wait for each other: their paced runs overlap (each takes
    # at least 0.7 s; a slower machine only stretches both).
    assert a1[0] < a0[-1]
    assert a0[0] < a1[-1]


async def test_statistics_show_in_flight_while_running(site: RunningSite, client: Client) -> None:
    async with client(per_host=2, concurrency=10) as c:
        task = asyncio.gather(*(c.fetch(site.url(f"/page/{i}?delay=0.3")) for i in range(6)))
        await wait_for(lambda: site.stats.in_flight[site.host(0)] >= 2)
        stats = c.statistics()
        await task
    assert stats.in_flight == 2
    assert stats.per_host == {site.host(0): 2}
    assert stats.waiting >= 1
