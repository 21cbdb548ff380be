"""The answers the per-host controller and breaker give a request about to leave.

The async layer only waits on these; every decision is made in the pure modules:

- ``Go(after)``: send in ``after`` seconds (0: now); the send time is already reserved,
  so sleep and go without asking again.
- ``Wait(until, reason)``: nothing is reserved; ask again at ``until`` (or sooner, when
  the host's next answer comes in: a probe's success ends a breaker's wait; or when
  another loop's probe of the host had its answer: ``watch.py``).
- ``Probe()``: the host's breaker is half-open and this request is its one probe.
- ``Defer(until, reason)``: do not fetch this item in this run; it is deferred, and worth
  trying again from ``until`` on (the controller's clock: ``HostController.to_wall``
  turns it into a time for the journal).

Times are on the controller's clock (``time.monotonic`` unless a test injects one).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Reason(enum.StrEnum):
    """Why a request waits or an item is deferred; stable strings for the journal and the
    report."""

    PAUSED = "paused"  # the site refused: its Retry-After, or our backoff without one
    QUOTA = "quota"  # its RateLimit headers say nothing is left until the reset
    BREAKER = "breaker"  # its breaker is open, or its probe is out
    PARKED = "paused-beyond-cap"  # its Retry-After is beyond the cap: defer, do not wait
    TAIL = "tail"  # --finish-at: its forecast would hold the run's end
    DEADLINE = "deadline"  # --deadline: the run's time is up


@dataclass(frozen=True, slots=True)
class Go:
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Wait:
    until: float
    reason: Reason


@dataclass(frozen=True, slots=True)
class Probe:
    pass


@dataclass(frozen=True, slots=True)
class Defer:
    until: float
    reason: Reason


GO = Go()
PROBE = Probe()
Verdict = Go | Wait | Probe | Defer
