"""The demo's three misbehaving hosts do what they promise, checked with a plain aiohttp
client against the real servers; moments are chosen from what the hosts saw, not the clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from conveyor.testing.demo_hosts import DemoHost, HostSettings, start_hosts

ADDRESSES = ["127.0.0.64", "127.0.0.65", "127.0.0.66"]


async def _until(condition: Callable[[], bool], *, limit: float = 30.0) -> None:
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


@pytest.fixture
async def hosts() -> AsyncIterator[dict[str, DemoHost]]:
    settings = HostSettings(latency=0.05, down_after=5, down_for=0.5)
    started = await start_hosts(ADDRESSES, 100, settings)
    try:
        yield {host.kind: host for host in started}
    finally:
        for host in started:
            await host.close()


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with session.get(url) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_the_refusing_host_refuses_above_four_at_once(hosts: dict[str, DemoHost]) -> None:
    host = hosts["refusing"]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        answers = await asyncio.gather(*(_get(session, f"{host.base}/p/{n}") for n in range(12)))
        refused = [headers for status, headers in answers if status == 429]
        assert refused
        assert all(h["Retry-After"] == "1" for h in refused)
        served = [h for status, h in answers if status == 200]
        assert all(int(h["X-Demo-In-Flight"]) <= 4 for h in served)
        assert len(refused) == host.counters.refused
        # One at a time, it never refuses.
        for n in range(5):
            assert (await _get(session, f"{host.base}/p/{n}"))[0] == 200
    assert host.counters.refused == len(refused)


async def test_the_slowing_host_slows_down_with_its_load(hosts: dict[str, DemoHost]) -> None:
    host = hosts["slowing"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        status, alone = await _get(session, f"{host.base}/p/1")
        assert status == 200
        assert float(alone["X-Demo-Delay"]) == pytest.approx(0.05)
        answers = await asyncio.gather(*(_get(session, f"{host.base}/p/{n}") for n in range(9)))
    assert host.counters.max_in_flight > 3
    for status, headers in answers:
        assert status == 200
        # Past the knee (3 at once) each answer waits in proportion to the load it met.
        in_flight = int(headers["X-Demo-In-Flight"])
        assert float(headers["X-Demo-Delay"]) == pytest.approx(0.05 * max(1.0, in_flight / 3))
    assert max(float(h["X-Demo-Delay"]) for _, h in answers) > 0.05


async def test_the_flapping_host_goes_away_and_comes_back(hosts: dict[str, DemoHost]) -> None:
    host = hosts["flapping"]
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            assert (await _get(session, f"{host.base}/p/{n}"))[0] == 200
        await _until(lambda: host.down)
    # While it is away a new connection is refused.
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await _get(fresh, f"{host.base}/p/9")
    await _until(lambda: not host.down)
    async with aiohttp.ClientSession() as later:
        assert (await _get(later, f"{host.base}/p/9"))[0] == 200
    assert host.counters.outages == 1
