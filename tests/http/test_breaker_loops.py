"""A host spread over two loop processes, down for several breaks: one probe per break
between the two loops, not one a loop (the arena's host C, dropping every request)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import conveyor as cv
from conveyor._http.breaker import BreakerSettings
from conveyor._pipeline.fetch import ClientFactory
from conveyor.testing import ArenaSettings, run_arena

# Short breaks, each the same (no growth, no jitter).
BREAK = 0.4
BREAKER = BreakerSettings(failures=2, base=BREAK, longest=BREAK, jitter=0.0)
DOWN_FOR = 5.0


def status_of(response: Any) -> tuple[str, int]:
    """A module-level plain function: it runs inside the loop processes."""
    return response.url, response.status


async def test_a_host_down_on_two_loops_gets_one_probe_per_break() -> None:
    """C (spread over both loops: per_host=2, one slot each) answers 10 requests, then
    drops every request for ``DOWN_FOR`` s, counting each. Each loop's breaker opens
    after 2 failures in a row (its own, or it hears of the other's opening first); from
    then on one probe per break reaches C, from one loop: the other waits for the probe's
    verdict. With a probe a loop, C saw about two a break.

    Counts, not times: before the breakers open, each loop sends at most its 2 failures
    and one more (its first, on a connection kept from before, is sent again once on a
    new one, as a stale connection is); then the probes, at most one per break (``BREAK``,
    more on a busy machine, which only makes fewer) while C is down, one more at its
    edge, and one for the rare race in which a loop does not hear of the other's probe
    in time. No retries (retries=0): every request is an item."""
    settings = ArenaSettings(c_down_after=10, c_down_for=DOWN_FOR, c_outage="reset")
    async with run_arena(settings) as arena:
        urls = [arena.url("C", f"/item/{n}") for n in range(120)]
        fetch = cv.Pipeline(urls).fetch(per_host=2, retries=0).stages[0]
        assert isinstance(fetch.factory, ClientFactory)
        short_breaks = ClientFactory(fetch.factory.config, control={"breaker": BREAKER})
        fetch = dataclasses.replace(fetch, factory=short_breaks)
        out: list[Any] = []
        result = await (
            cv.Pipeline(urls, _stages=(fetch,))
            .map(status_of, on="inline")
            .run_async(sink=out, loops=2)
        )
        counters = arena.stats["C"]
        c_host = arena.host("C")
    assert counters.outage_hits > 2 * BREAKER.failures, "C was never down: nothing shown"
    assert all(status == 200 for _, status in out)
    assert result.results + result.failed == len(urls)
    # An item failed only by its own request (a reset on a kept connection may be tried
    # once more on a new one, as the pool does with a stale connection).
    assert result.failed <= counters.outage_hits
    before_open = 2 * (BREAKER.failures + 1)
    breaks = math.ceil(DOWN_FOR / BREAK)
    assert counters.outage_hits <= before_open + breaks + 1 + 1  # main's code: 28 and 30 of 21
    # The short breaks reached the loop processes (the factory carries ``control``): the
    # default 30 s break would have opened each loop's breaker once in a 5 s outage.
    report = result.stages[0].details
    assert report.hosts[c_host].breaker_openings > 2
