"""The retry budget, a site's quota, the minimum transfer rate and the run's deadline."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from conveyor._engine.ports import LoopBound, WindDown
from conveyor._errors import Deferred, FetchError
from conveyor._http.breaker import BreakerSettings
from conveyor._pipeline.fetch import FetchService
from conveyor.http import Response
from conveyor.testing import ArenaSettings, run_arena, run_site

from .conftest import client, gather, until


async def test_the_retry_budget_caps_retries_on_a_failing_host() -> None:
    """Every answer a 500: retries add about 20% and a few to the host's load, not 3x.
    (The breaker is set out of reach: this is the budget's test.)"""
    quiet = BreakerSettings(volume=1024, ratio=1.0)
    async with run_site(("127.0.0.1",)) as site:
        urls = [site.url(f"/flaky/b{n}?fail=99&status=500") for n in range(40)]
        async with client(retries=3, per_host=4, control={"breaker": quiet}) as c:
            results = await gather(c, urls)
            report = c.details().hosts[site.host(0)]
        hits = sum(site.stats.hits[f"/flaky/b{n}"] for n in range(40))
    assert all(isinstance(r, Response) and r.status == 500 for r in results)
    assert hits <= 40 + 3 + 0.2 * 40 + 1  # without the budget: 160
    assert report.retries_denied > 0
    assert report.requests == hits


async def test_a_sites_quota_is_paced_to_its_reset() -> None:
    """Host G sends RateLimit-Remaining and -Reset (5 per second): the client spends the
    quota up to the reset and waits for it, so G never has to refuse."""
    async with run_arena(ArenaSettings(quota=5, quota_window=1.0)) as arena:
        urls = [arena.url("G", f"/item/{n}") for n in range(12)]
        async with client(per_host=1, retries=0) as c:
            results = await gather(c, urls)
        counters = arena.stats["G"]
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert counters.statuses[429] == 0
    assert counters.requests == 12


async def test_a_trickling_body_fails_too_slow() -> None:
    """Host D sends a head and then a byte now and then: under min_rate over the window
    the attempt fails with its own kind (the window is short here)."""
    async with run_arena(ArenaSettings(trickle_every=0.2)) as arena:
        async with client(retries=0, min_rate=1024, rate_window=0.5) as c:
            with pytest.raises(FetchError) as caught:
                await c.fetch(arena.url("D", "/trickle/1"))
            ok = await c.fetch(arena.url("D", "/item/1"))
    assert caught.value.kind == "too-slow"
    assert ok.status == 200


async def test_the_deadline_defers_every_waiting_item_and_every_new_one() -> None:
    """WindDown("deadline"): items waiting in the client (here on a held host) raise
    Deferred at once, and so does every later call; the host saw nothing."""
    async with run_arena() as arena:
        host = arena.host("F")
        async with client(holds={host: ("paused", time.time() + 60)}) as c:
            waiting = [
                asyncio.ensure_future(c.fetch(arena.url("F", f"/item/{n}"))) for n in range(5)
            ]
            await until(lambda: sum(c._limits.queued().values()) == 5)  # type: ignore[union-attr]
            c.hear(WindDown("deadline", 1.0))
            results = await asyncio.gather(*waiting, return_exceptions=True)
            with pytest.raises(Deferred) as later:
                await c.fetch(arena.url("G", "/item/1"))
            report = c.details()
    assert all(isinstance(r, Deferred) and r.reason == "deadline" for r in results)
    assert later.value.reason == "deadline"
    assert arena.stats["F"].requests == 0
    assert arena.stats["G"].requests == 0
    assert report.deferred == {"deadline": 6}


async def test_the_report_names_held_hosts_and_holds_to_keep() -> None:
    async with run_arena() as arena:
        host = arena.host("F")
        async with client(holds={host: ("breaker", time.time() + 60)}) as c:
            report = c.details()
    assert report.held[host][0] == "breaker"
    assert report.held[host][1] > 50
    assert report.paused[host] > 50
    assert report.holds[host][0] == "breaker"


async def test_the_tail_defers_a_host_that_would_hold_the_end() -> None:
    """WindDown("tail"): a host whose items cannot drain in time (held back for a minute,
    no rate known) has its waiting items and its new ones deferred as "tail"; another
    host's items are fetched."""
    async with run_arena() as arena:
        host = arena.host("F")
        async with client(holds={host: ("paused", time.time() + 60)}) as c:
            waiting = [
                asyncio.ensure_future(c.fetch(arena.url("F", f"/item/{n}"))) for n in range(3)
            ]
            await until(lambda: sum(c._limits.queued().values()) == 3)  # type: ignore[union-attr]
            c.hear(WindDown("tail", 0.5))
            results = await asyncio.gather(*waiting, return_exceptions=True)
            with pytest.raises(Deferred) as later:
                await c.fetch(arena.url("F", "/item/9"))
            other = await c.fetch(arena.url("G", "/item/1"))
    assert all(isinstance(r, Deferred) and r.reason == "tail" for r in results)
    assert later.value.reason == "tail"
    assert other.status == 200
    assert arena.stats["F"].requests == 0


async def test_a_spread_host_holds_its_part_of_every_per_host_total() -> None:
    """share(spread=True): the loop's client holds per_host in parts, and the controller's
    start, retry-budget floor and quota share with it."""
    from conveyor._pipeline.fetch import ClientFactory
    from conveyor.http import FetchConfig

    whole = ClientFactory(FetchConfig(per_host=4))
    part = whole.share(0, 2, spread=True).holding({"h:80": ("paused", time.time() + 60)})
    async with part() as service:
        settings = service.client.controller.settings
        assert service.report().holds["h:80"][0] == "paused"
    assert (settings.per_host, settings.parts) == (2, 2)
    assert settings.gradient.start <= 2
    assert settings.budget.floor == 1.5


async def test_the_run_does_not_wait_on_held_hosts_alone() -> None:
    """Whatever the flags: when every host with work is held back by its site longer than
    the patience (short here) and than the run so far, their items are deferred with the
    hold's reason and end, rather than the run sitting idle."""
    from conveyor._http.tail import TailSettings

    async with run_arena() as arena:
        host = arena.host("F")
        until_wall = time.time() + 60
        async with client(
            holds={host: ("paused", until_wall)}, tail=TailSettings(patience=0.2)
        ) as c:
            results = await gather(c, [arena.url("F", f"/item/{n}") for n in range(3)])
    assert all(isinstance(r, Deferred) and r.reason == "paused" for r in results)
    for error in results:
        assert isinstance(error, Deferred)
        assert error.until is not None
        assert abs(error.until - until_wall) < 1.0
    assert arena.stats["F"].requests == 0


async def test_a_crawl_delay_spaces_the_hosts_requests() -> None:
    """``set_host_interval`` (a crawl's robots.txt Crawl-delay) goes through the
    controller's interval: no two requests to the host closer than it."""
    async with run_arena() as arena:
        host = arena.host("F")
        async with client() as c:
            c.set_host_interval(host, 0.5)
            results = await gather(c, [arena.url("F", f"/item/{n}") for n in range(4)])
        times = sorted(a.at for a in arena.stats["F"].arrivals)
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert len(times) == 4
    # The arena stamps a request when its handler runs: on a busy machine one handler may
    # run late and the next on time, so a gap can look up to a scheduling delay shorter
    # than the client kept it. Without the interval the four would arrive together.
    assert all(b - a >= 0.35 for a, b in itertools.pairwise(times))


async def test_the_tail_cancels_a_straggler_as_deferred() -> None:
    """After WindDown("tail"), a request out far longer than its host's latency (D's
    stalled URL; a short straggler limit here) is cancelled and its item deferred."""
    from conveyor._http.tail import TailSettings

    async with run_arena() as arena:
        tail = TailSettings(min_straggle=0.2, straggle=2.0)
        async with client(retries=0, tail=tail) as c:
            assert (await c.fetch(arena.url("D", "/item/1"))).status == 200
            stalled = asyncio.ensure_future(c.fetch(arena.url("D", "/stall/0")))
            await until(lambda: arena.stats["D"].stalled == 1)
            await asyncio.sleep(0.5)  # older than the straggler limit (a lower bound)
            c.hear(WindDown("tail", 5.0))
            with pytest.raises(Deferred) as caught:
                await stalled
            report = c.details()
    assert caught.value.reason == "tail"
    assert report.deferred == {"tail": 1}


async def test_the_engine_tells_the_client_when_its_loop_is_bound() -> None:
    """``LoopBound`` (the engine's measure of the loop) reaches the per-host controller,
    whose gradient then takes latency for the loop's lag (``Gradient.ok``'s ``ours``);
    the host's answers are unchanged."""
    async with run_arena() as arena:
        async with client(per_host=4) as c:
            c.hear(LoopBound(True))
            bound = c.controller.loop_bound
            first = await c.fetch(arena.url("F", "/item/1"))
            c.hear(LoopBound(False))
            second = await c.fetch(arena.url("F", "/item/2"))
            unbound = c.controller.loop_bound
    assert (bound, unbound) == (True, False)
    assert (first.status, second.status) == (200, 200)


async def test_a_client_told_what_another_learnt_stays_under_the_refused_level() -> None:
    """``loops="auto"``'s move, through the clients' own words: the first client learns
    that host A refuses a 4th request out; a second client that heard what it learnt
    (``HttpClient.learnt``, ``HostsLearnt``) never sends A more than 3, so A never
    refuses it, where a client starting afresh would climb into a refusal again."""
    async with run_arena() as arena:
        async with client(per_host=8) as first:
            for batch in range(10):  # bounded: until A has refused once
                await gather(first, [arena.url("A", f"/item/{batch}-{n}") for n in range(40)])
                if first.details().hosts[arena.host("A")].refusals:
                    break
            told = first.learnt()
        assert told is not None
        assert told.hosts[arena.host("A")].concurrency.refused == 4
        t0 = time.monotonic()
        async with client(per_host=8) as second:
            second.hear(told)
            results = await gather(second, [arena.url("A", f"/item/s{n}") for n in range(60)])
            report = second.details().hosts[arena.host("A")]
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert report.refusals == 0
    assert arena.stats["A"].max_in_flight_after(t0) <= 3


async def test_the_fetch_times_its_requests_apart_from_their_waits() -> None:
    """``ports.Timed``: the ok answers' latency since the last ask, from each request's
    send (20 ms answers; the requests beyond the host's limit waited, which is left out)."""
    async with run_arena() as arena:
        async with client(per_host=2) as c:
            service = FetchService(c)
            assert service.call_times() is None
            await gather(c, [arena.url("B", f"/item/{n}") for n in range(12)])
            times = service.call_times()
            again = service.call_times()
    assert times is not None
    assert times.calls == 12
    assert 0.02 <= times.fastest <= times.mean
    assert again is None  # counted since the last ask
