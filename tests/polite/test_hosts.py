"""The client on the arena's misbehaving hosts: what each host saw, and how items ended."""

from __future__ import annotations

import time

from conveyor._errors import Deferred, FetchError
from conveyor._http.breaker import BreakerSettings
from conveyor.http import Response
from conveyor.testing import ArenaSettings, run_arena

from .conftest import client, gather, until


async def test_a_host_refusing_above_k_settles_at_k_or_under() -> None:
    """Host A answers 429 (Retry-After: 1) above 3 in flight: after its first refusal the
    client stays under the refused level, and the refusals stop."""
    async with run_arena(ArenaSettings(latency=0.02)) as arena:
        urls = [arena.url("A", f"/item/{n}") for n in range(150)]
        async with client(per_host=8, retries=5) as c:
            results = await gather(c, urls)
            report = c.details().hosts[arena.host("A")]
        counters = arena.stats["A"]
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert counters.refused_at, "A never refused: the test shows nothing"
    # From the end of the first pause on (the first refusal + its Retry-After)
    settled = counters.refused_at[0] + 1.0
    assert counters.max_in_flight_after(settled) <= 3
    assert counters.refusal_share_after(settled) <= 0.02
    assert report.refusals == len(counters.refused_at)
    assert report.ok == 150


async def test_without_adapt_the_per_host_limit_stays_fixed() -> None:
    """adapt=False is today's behaviour: all of per_host at once from the start, a 429
    pauses the host (and slows it), nothing is learnt."""
    async with run_arena(ArenaSettings(latency=0.05)) as arena:
        urls = [arena.url("A", f"/item/{n}") for n in range(8)]
        async with client(per_host=8, retries=8, adapt=False) as c:
            results = await gather(c, urls)
            report = c.details().hosts[arena.host("A")]
        counters = arena.stats["A"]
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    # All 8 left at once: A answered the 5 beyond its 3 with a 429 right away (the
    # controller starts a host at 2 and grows it by its answers).
    assert counters.statuses[429] >= 4
    assert report.pause_count >= 1
    assert report.refusals == len(counters.refused_at)


async def test_retry_after_as_a_date_is_kept() -> None:
    """Host E answers 503 with Retry-After as an HTTP date: nothing reaches it before."""
    async with run_arena(ArenaSettings(e_retry_after=2.0)) as arena:
        async with client(retries=3) as c:
            first = await c.fetch(arena.url("E", "/item/0"))
            rest = await gather(c, [arena.url("E", f"/item/{n}") for n in range(1, 8)])
        counters = arena.stats["E"]
    assert first.status == 200
    assert first.attempts == 2
    assert all(isinstance(r, Response) and r.status == 200 for r in rest)
    assert counters.early == 0
    assert counters.statuses[503] == 1


async def test_a_retry_after_beyond_max_pause_defers_the_hosts_items() -> None:
    """Parked: E's date is beyond max_pause, so its items are deferred with that date,
    not fetched early and not waited on."""
    async with run_arena(ArenaSettings(e_retry_after=30.0)) as arena:
        async with client(retries=3, max_pause=5.0) as c:
            results = await gather(c, [arena.url("E", f"/item/{n}") for n in range(4)])
            report = c.details()
        counters = arena.stats["E"]
    assert all(isinstance(r, Deferred) for r in results)
    for error in results:
        assert isinstance(error, Deferred)
        assert error.reason == "paused-beyond-cap"
        assert error.until is not None
        assert error.until >= time.time() + 20
    assert counters.early <= 1  # the second of the first two requests out at once
    assert report.deferred == {"paused-beyond-cap": 4}
    assert report.holds[arena.host("E")][0] == "paused-beyond-cap"
    assert report.hosts[arena.host("E")].deferred == 4


async def test_a_hold_from_an_earlier_run_keeps_the_host_untouched() -> None:
    """A pause the journal kept (``ClientFactory.holding``): no request before its end."""
    from conveyor._pipeline.fetch import ClientFactory
    from conveyor.http import FetchConfig

    async with run_arena() as arena:
        host = arena.host("F")
        until = time.time() + 1.5
        until_server = time.monotonic() + 1.5  # the same moment on the arena's clock
        factory = ClientFactory(FetchConfig(backoff=0.01)).holding({host: ("paused", until)})
        async with factory() as service:
            assert service.report().holds[host][0] == "paused"
            results = await gather(service.client, [arena.url("F", f"/item/{n}") for n in range(5)])
        arrivals = list(arena.stats["F"].arrivals)
    assert all(isinstance(r, Response) and r.status == 200 for r in results)
    assert len(arrivals) == 5
    assert min(a.at for a in arrivals) >= until_server - 0.01


async def test_the_breaker_probes_a_host_that_is_down_once_per_break() -> None:
    """Host C drops every request for a while: the breaker opens after 5 failures in a
    row, and while C is down it gets one probe per break; items fail only by their own
    errors (reset), none for the breaker, and those after the outage are fetched."""
    settings = ArenaSettings(c_down_after=10, c_down_for=3.0, c_outage="reset", latency=0.01)
    breaker = BreakerSettings(failures=5, base=0.5, longest=0.5, jitter=0.0)
    async with run_arena(settings) as arena:
        async with client(per_host=2, retries=2, control={"breaker": breaker}) as c:
            early = await gather(c, [arena.url("C", f"/item/{n}") for n in range(10)])
            await until(lambda: arena.c_down.is_set())
            during = await gather(c, [arena.url("C", f"/item/{n}") for n in range(10, 40)])
            await until(lambda: not arena.c_down.is_set())
            after = await gather(c, [arena.url("C", f"/item/{n}") for n in range(40, 50)])
            report = c.details().hosts[arena.host("C")]
        hits = arena.stats["C"].outage_hits
    assert all(isinstance(r, Response) and r.status == 200 for r in early + after)
    failed = [r for r in during if not isinstance(r, Response)]
    assert all(isinstance(r, FetchError) and r.kind == "reset" for r in failed)
    assert report.breaker_openings >= 1
    # 5 failures open it (with the second request out then), then one probe per 0.5 s
    # break while C is down 3 s: about 6 more. Without the breaker 30 items x 3 tries.
    assert hits <= 2 + 5 + 3.0 / 0.5 + 2
