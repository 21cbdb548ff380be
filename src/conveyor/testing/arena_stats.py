"""What each host of the arena saw: the counters tests and the benchmark assert on.

Per host, as the server saw it (never as a client believes it went): requests and
statuses, how many were in flight at each arrival (so the most in flight after any moment
is exact: in flight peaks only when a request arrives), refusals with their times, and the
host's own misbehaviour: requests that came while host C was down, requests to host E
before the date it asked for, requests host D holds stalled now.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # time.monotonic() on the server
    path: str
    in_flight: int  # requests in flight at this host with this one


@dataclass
class HostCounters:
    """One arena host's counters. Mutated by the arena only.

    Attributes:
        outage_hits: requests (``outage="reset"``: connections too) that reached host C
            while it was down.
        early: requests that reached host E before the date its Retry-After named.
        stalled: requests host D holds stalled now.
    """

    keep: int = 100_000
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    arrivals: deque[Arrival] = field(default_factory=deque)
    refused_at: deque[float] = field(default_factory=deque)
    outage_hits: int = 0
    early: int = 0
    stalled: int = 0

    def arrive(self, path: str) -> None:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.arrivals.append(Arrival(time.monotonic(), path, self.in_flight))
        if len(self.arrivals) > self.keep:
            self.arrivals.popleft()

    def answered(self, status: int) -> None:
        self.statuses[status] += 1
        if status in (429, 503):
            self.refused_at.append(time.monotonic())
            if len(self.refused_at) > self.keep:
                self.refused_at.popleft()

    def max_in_flight_after(self, since: float) -> int:
        """The most requests in flight at once from ``since`` (a ``time.monotonic()``) on."""
        return max((a.in_flight for a in self.arrivals if a.at >= since), default=0)

    def refusal_share_after(self, since: float) -> float:
        """Refusals (429, 503) over requests, counting those that arrived from ``since``."""
        arrived = sum(1 for a in self.arrivals if a.at >= since)
        refused = sum(1 for at in self.refused_at if at >= since)
        return refused / arrived if arrived else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "refusals": len(self.refused_at),
            "outage_hits": self.outage_hits,
            "early": self.early,
            "stalled": self.stalled,
        }


@dataclass
class ArenaStats:
    """The counters of every arena host, by name (``"A"``, ``"B"``, ...)."""

    hosts: dict[str, HostCounters] = field(default_factory=dict)

    def __getitem__(self, name: str) -> HostCounters:
        return self.hosts[name]

    def summary(self) -> dict[str, object]:
        return {name: counters.summary() for name, counters in self.hosts.items()}
