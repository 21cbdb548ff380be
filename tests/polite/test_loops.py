"""A host spread over two loop processes keeps one pause: the site's word reaches both."""

from __future__ import annotations

from typing import Any

import conveyor as cv
from conveyor.testing import ArenaSettings, run_arena


def status_of(response: Any) -> tuple[str, int]:
    """A module-level plain function: it runs inside the loop processes."""
    return response.url, response.status


async def test_a_pause_one_loop_hears_holds_every_loop() -> None:
    """E (spread over both loops: per_host=4) answers 200 six times, then 503 with a
    Retry-After date: the loop that gets it tells the other at once, so no loop sends
    to E before the date, and every item ends once, fetched.

    A request the other loop sent while the refusal was on its way cannot be helped: it
    arrives right with the refusal. E answers in 0.3 s, so a loop that did not hear would
    send its next request a good 0.3 s after the refusal: none may come then."""
    settings = ArenaSettings(e_retry_after=2.0, e_refuse_after=6, latency=0.3)
    async with run_arena(settings) as arena:
        urls = [arena.url("E", f"/item/{n}") for n in range(24)]
        out: list[Any] = []
        result = await (
            cv.Pipeline(urls)
            .fetch(per_host=4, retries=3, backoff=0.01)
            .map(status_of, on="inline")
            .run_async(sink=out, loops=2)
        )
        counters = arena.stats["E"]
    assert result.results == 24
    assert result.failed == 0
    assert sorted(out) == sorted((u, 200) for u in urls)
    first, *early = counters.refused_at  # E answers each request before its date 503
    assert counters.early == len(early)
    assert all(at - first < 0.15 for at in early)


class _Relay:
    """``ports.Peers`` between two clients in one process: what one tells, the other
    hears (as the loop processes' parent relays it)."""

    def __init__(self) -> None:
        self.to: Any = None
        self.told: list[Any] = []

    def tell(self, notice: Any) -> None:
        self.told.append(notice)
        self.to.hear(notice)


async def test_a_pause_told_is_kept_by_the_peer_that_heard_it() -> None:
    """Two clients joined as two loops' are: E's 503 with a date reaches the first; the
    second, which never asked E, sends nothing to E before that date."""
    from .conftest import client

    async with run_arena(ArenaSettings(e_retry_after=1.5)) as arena:
        async with client(retries=3) as one, client(retries=3) as two:
            relay_one, relay_two = _Relay(), _Relay()
            relay_one.to, relay_two.to = two, one
            one.join(relay_one)
            two.join(relay_two)
            first = await one.fetch(arena.url("E", "/item/0"))
            second = await two.fetch(arena.url("E", "/item/1"))
        counters = arena.stats["E"]
    assert (first.status, second.status) == (200, 200)
    assert [notice[0] for notice in relay_one.told] == ["pause"]
    assert relay_two.told == []  # heard, not told again
    assert counters.early == 0
    assert counters.statuses[503] == 1
