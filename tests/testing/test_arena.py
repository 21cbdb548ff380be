"""The arena's hosts do what they promise, checked with a plain aiohttp client.

Limits are checked with what each host saw (its counters, and the in-flight count it
stamps on each answer), and moments are chosen from observed progress (requests held
in flight, the outage event), never from how fast the machine is.
"""

from __future__ import annotations

import asyncio
import email.utils
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from conveyor._errors import UsageError
from conveyor.testing import ArenaSettings, run_arena


async def _until(condition: Callable[[], bool], *, limit: float = 20.0) -> None:
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], bytes]:
    async with session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_each_host_has_its_own_address(session: aiohttp.ClientSession) -> None:
    async with run_arena(ArenaSettings(hosts=6, first_address="127.0.0.21")) as arena:
        assert list(arena.bases) == ["A", "B", "C", "D", "E", "F"]
        assert arena.host("A").startswith("127.0.0.21:")
        assert arena.host("F").startswith("127.0.0.26:")
        status, _, body = await _get(session, arena.url("F", "/item/1"))
        assert status == 200
        assert len(body) == 512
        async with session.get(arena.url("A", "/_arena")) as response:
            summary = await response.json()
        assert summary["F"]["requests"] == 1  # every host serves everyone's counters
        assert summary["F"]["statuses"] == {"200": 1}


async def test_a_refuses_above_k_in_flight(session: aiohttp.ClientSession) -> None:
    # A latency long enough to hold three requests at A while a fourth arrives.
    async with run_arena(ArenaSettings(latency=30.0, k=3, a_retry_after=7)) as arena:
        held = [
            asyncio.ensure_future(_get(session, arena.url("A", f"/item/{n}"))) for n in range(3)
        ]
        await _until(lambda: arena.stats["A"].in_flight == 3)
        status, headers, _ = await _get(session, arena.url("A", "/item/3"))
        assert status == 429
        assert headers["Retry-After"] == "7"
        assert headers["X-Arena-In-Flight"] == "4"
        assert arena.stats["A"].max_in_flight == 4
        assert arena.stats["A"].statuses[429] == 1
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)


async def test_b_slows_down_with_its_load(session: aiohttp.ClientSession) -> None:
    async with run_arena(ArenaSettings(latency=0.05, knee=2)) as arena:
        answers = await asyncio.gather(
            *(_get(session, arena.url("B", f"/item/{n}")) for n in range(6))
        )
        for status, headers, _ in answers:
            out = int(headers["X-Arena-In-Flight"])
            assert status == 200
            assert float(headers["X-Arena-Delay"]) == pytest.approx(0.05 * max(1.0, out / 2))
        assert arena.stats["B"].max_in_flight >= 1


@pytest.mark.parametrize("outage", ["refuse", "reset"])
async def test_c_goes_down_mid_run_and_comes_back(
    session: aiohttp.ClientSession, outage: str
) -> None:
    settings = ArenaSettings(c_down_after=3, c_down_for=1.0, c_outage=outage)  # type: ignore[arg-type]
    async with run_arena(settings) as arena:
        for n in range(3):
            status, _, _ = await _get(session, arena.url("C", f"/item/{n}"))
            assert status == 200
        await asyncio.wait_for(arena.c_down.wait(), 20.0)
        # A fresh connection: refused, or accepted and dropped without an answer.
        async with aiohttp.ClientSession() as fresh:
            error = (
                aiohttp.ClientConnectorError
                if outage == "refuse"
                else aiohttp.ServerDisconnectedError
            )
            with pytest.raises(error):
                await _get(fresh, arena.url("C", "/item/9"))
        if outage == "reset":
            assert arena.stats["C"].outage_hits >= 1
        await _until(lambda: not arena.c_down.is_set())
        async with aiohttp.ClientSession() as fresh:
            status, _, _ = await _get(fresh, arena.url("C", "/item/10"))
        assert status == 200


async def test_d_stalls_and_trickles(session: aiohttp.ClientSession) -> None:
    async with run_arena(ArenaSettings(trickle_every=30.0)) as arena:
        assert (await _get(session, arena.url("D", "/item/1")))[0] == 200
        stalled = asyncio.ensure_future(_get(session, arena.url("D", "/stall/0")))
        async with session.get(arena.url("D", "/trickle/1")) as response:
            assert response.status == 200
            assert response.content_length == 1 << 20
            assert await response.content.readexactly(1) == b"x"
            await _until(lambda: arena.stats["D"].stalled == 2)  # both held by the host
            with pytest.raises(TimeoutError):  # and the second byte is 30 s away
                await asyncio.wait_for(response.content.readexactly(1), 0.2)
        assert not stalled.done()
        stalled.cancel()
        await asyncio.gather(stalled, return_exceptions=True)


async def test_e_asks_for_a_pause_by_date_and_counts_early_requests(
    session: aiohttp.ClientSession,
) -> None:
    async with run_arena(ArenaSettings(e_retry_after=1.0)) as arena:
        before = time.time()
        status, headers, _ = await _get(session, arena.url("E", "/item/0"))
        assert status == 503
        date = email.utils.parsedate_to_datetime(headers["Retry-After"]).timestamp()
        assert date >= before + 1.0
        assert (await _get(session, arena.url("E", "/item/1")))[0] == 503
        assert arena.stats["E"].early == 1
        await asyncio.sleep(max(0.0, date - time.time()) + 0.01)
        assert (await _get(session, arena.url("E", "/item/2")))[0] == 200
        assert arena.stats["E"].early == 1


async def test_the_url_list_interleaves_hosts_and_places_the_stalls() -> None:
    async with run_arena(ArenaSettings(hosts=6)) as arena:
        urls = arena.urls(3, stalls=1)
        assert len(urls) == 18
        assert urls[0].startswith(arena.bases["A"])
        assert urls[1].startswith(arena.bases["B"])
        d = [u for u in urls if u.startswith(arena.bases["D"])]
        assert [u.rsplit("/", 2)[1] for u in d] == ["stall", "trickle", "item"]


def test_settings_are_checked() -> None:
    with pytest.raises(UsageError, match="hosts"):
        ArenaSettings(hosts=3)
    bad = subprocess.run(
        [sys.executable, "-m", "conveyor.testing.arena", "--hosts", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "hosts=3" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_as_a_process_it_prints_its_hosts() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conveyor.testing.arena",
            "--hosts",
            "6",
            "--first-address",
            "127.0.0.31",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(6)]
        assert [line.split()[0] for line in lines] == ["A", "B", "C", "D", "E", "F"]
        assert lines[0].split()[-1].startswith("http://127.0.0.31:")
    finally:
        proc.terminate()
        returncode = proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert returncode == 0
