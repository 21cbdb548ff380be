"""A discrete-event client for the controller: requests to model hosts on a ``FakeClock``.

It does what the async layer will do -- hold a host slot up to ``limit(host)``, ask
``verdict(host)``, ``start`` and ``finish`` -- but time jumps from event to event, so a
simulated hour of a refusing host takes milliseconds and does not depend on the machine.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor._http.controller import HostController, Ticket
from conveyor._http.outcomes import Outcome, classify_status
from conveyor._http.verdicts import Defer, Go, Probe, Wait
from conveyor.testing import FakeClock

# A model host: (requests out at it now, the time) -> (latency, status, headers); a status
# of 0 is a network failure.
Model = Callable[[int, float], tuple[float, int, dict[str, str]]]


@dataclass
class Seen:
    """What the model host saw, as a server's counters would."""

    sent: list[tuple[float, int, int]] = field(default_factory=list)  # (at, status, out)
    deferred: int = 0
    max_out: int = 0

    def share(self, status: int, *, after: float = 0.0) -> float:
        late = [s for at, s, _ in self.sent if at >= after]
        return sum(1 for s in late if s == status) / max(1, len(late))

    def max_out_after(self, after: float) -> int:
        return max((out for at, _, out in self.sent if at >= after), default=0)


def simulate(
    controller: HostController,
    clock: FakeClock,
    model: Model,
    *,
    items: int,
    host: str = "h:80",
    until: float = float("inf"),
) -> Seen:
    """Fetch ``items`` items from ``host`` (no retries) until done or ``until``."""
    seen = Seen()
    Answer = tuple[Ticket, int, dict[str, str]]
    events: list[tuple[float, int, Answer | None]] = []
    order = itertools.count()
    queued, holding, out = items, 0, 0  # holding: host slots taken (waiting to send or out)

    def pump() -> None:
        nonlocal queued, holding, out
        while queued and holding < controller.limit(host):
            verdict = controller.verdict(host)
            if isinstance(verdict, Defer):
                queued -= 1
                seen.deferred += 1
                controller.deferred(host)
                continue
            if isinstance(verdict, Wait):
                heapq.heappush(events, (verdict.until, next(order), None))
                return
            assert isinstance(verdict, Go | Probe)
            queued -= 1
            holding += 1
            after = verdict.after if isinstance(verdict, Go) else 0.0
            heapq.heappush(sends, clock.now + after)
            heapq.heappush(events, (clock.now + after, next(order), None))

    sends: list[float] = []  # reserved send times, in order
    pump()
    while events:
        at, _, answer = heapq.heappop(events)
        if at > until:
            break
        clock.now = max(clock.now, at)
        while sends and sends[0] <= clock.now:
            heapq.heappop(sends)
            out += 1
            seen.max_out = max(seen.max_out, out)
            ticket = controller.start(host)
            latency, status, headers = model(out, clock.now)
            seen.sent.append((clock.now, status, out))
            heapq.heappush(events, (clock.now + latency, next(order), (ticket, status, headers)))
        if answer is not None:
            ticket, status, headers = answer
            out -= 1
            holding -= 1
            outcome = Outcome.NET_FAIL if status == 0 else classify_status(status)
            controller.finish(ticket, outcome, status=status or None, headers=headers)
        pump()
        if not queued and not out:
            break
    return seen


def healthy(latency: float = 0.05) -> Model:
    return lambda out, now: (latency, 200, {})


def refuses_above(k: int, latency: float = 0.05, retry_after: str | None = "1") -> Model:
    """Host A: a 429 (fast) when more than ``k`` requests are out at it."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}

    def model(out: int, now: float) -> tuple[float, int, dict[str, str]]:
        if out > k:
            return 0.005, 429, headers
        return latency, 200, {}

    return model


def knee(at: int, latency: float = 0.05) -> Model:
    """Host B: latency grows with the load past ``at`` requests out (throughput flat)."""
    return lambda out, now: (latency * max(1.0, out / at), 200, {})
