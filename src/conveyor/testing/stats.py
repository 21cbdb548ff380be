"""What the test site saw: the counters tests assert on instead of timings.

A limit is proven by what the server observed (the most requests in flight at once per
host, how many arrived, when, with which headers), the way aiometer's tests use a spy,
never by how long the client took.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # time.monotonic() on the server
    host: str  # the Host header, "127.0.0.1:PORT"
    path: str


@dataclass
class SiteStats:
    """Counters of one site (all its addresses). Mutated by the middleware only.

    Attributes:
        in_flight: requests being handled now, per host.
        max_in_flight: the most handled at once, per host.
        max_in_flight_total: the most handled at once over all hosts.
        hits: requests per path (query left out).
        arrivals: the last ``keep`` arrivals, oldest first.
        headers: the headers of the last request per path.
    """

    keep: int = 100_000
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight_total: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    arrivals: deque[Arrival] = field(default_factory=deque)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # Per-key state of the routes that change behaviour over time (fail N times, ...).
    state: dict[str, float] = field(default_factory=dict)

    def arrivals_for(self, prefix: str) -> list[float]:
        """Arrival times of requests whose path starts with ``prefix``."""
        return [a.at for a in self.arrivals if a.path.startswith(prefix)]

    def max_in_window(self, prefix: str, window: float) -> int:
        """The most arrivals for ``prefix`` within any ``window`` seconds (a rate check)."""
        times = self.arrivals_for(prefix)
        best = start = 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        self.in_flight.clear()
        self.max_in_flight.clear()
        self.max_in_flight_total = 0
        self.hits.clear()
        self.arrivals.clear()
        self.headers.clear()
        self.state.clear()

    def summary(self) -> dict[str, object]:
        return {
            "max_in_flight": dict(self.max_in_flight),
            "max_in_flight_total": self.max_in_flight_total,
            "hits": dict(self.hits),
            "requests": sum(self.hits.values()),
        }


STATS = web.AppKey("stats", SiteStats)


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every request; ``/_stats`` itself is left out of the counts."""
    stats = request.app[STATS]
    if request.path.startswith("/_stats"):
        return await handler(request)
    host = request.host
    stats.hits[request.path] += 1
    stats.arrivals.append(Arrival(time.monotonic(), host, request.path))
    if len(stats.arrivals) > stats.keep:
        stats.arrivals.popleft()
    stats.headers[request.path] = dict(request.headers)
    stats.in_flight[host] += 1
    stats.max_in_flight[host] = max(stats.max_in_flight[host], stats.in_flight[host])
    stats.max_in_flight_total = max(stats.max_in_flight_total, sum(stats.in_flight.values()))
    try:
        return await handler(request)
    finally:
        stats.in_flight[host] -= 1
