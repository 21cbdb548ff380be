"""No hanging tail: which hosts' items to defer, and when a body trickles.

Two pure decisions, each on numbers the caller hands in (the third piece of the tail, the
stall watchdog, is the engine's: ``_engine/stall.py``, as it watches any stage):

- ``tail_deferrals``: at ``--deadline``, every host's remaining items; with
  ``--finish-at 99%``, once that share of the input has ended, the items of hosts whose
  forecast drain time (pause left + queued items / the rate the host allows; forever for
  a host with a straggler out or no rate known) is longer than the run so far, i.e.
  would more than double it (Nutch's time limit and throughput threshold send the rest
  back to the next cycle in the same way); and, whatever the flags, the items of hosts
  the run would otherwise wait on alone -- every host with work is held back by its site
  or its breaker -- when the wait is longer than ``patience`` and than the run so far
  (a breaker's: longer than ``patience`` alone).
- ``TransferRate``: a body arriving slower than ``min_rate`` bytes per second (1 KiB/s)
  averaged over ``window`` seconds (30) is too slow, so a body that trickles forever
  cannot hold the tail (img2dataset#437: a redirect to a livestream that never ends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .._errors import UsageError
from .verdicts import Reason

MIN_RATE = 1024.0  # bytes per second a body must average
RATE_WINDOW = 30.0  # seconds it is averaged over


@dataclass(frozen=True, slots=True)
class TailSettings:
    """The tail flags.

    Args:
        finish_at: the share of the input (0 to 1) after which slow hosts are deferred
            (``--finish-at 99%`` is 0.99); None: off.
        deadline: seconds after the start at which everything left is deferred; None: off.
        patience: a wait on held-back hosts alone shorter than this is waited out.
        straggle: a request out longer than this many times its host's p95 latency
            (and than ``min_straggle`` seconds) is taken never to end.
    """

    finish_at: float | None = None
    deadline: float | None = None
    patience: float = 60.0
    straggle: float = 10.0
    # Under the default 30 s attempt timeout, or a stalled request is cut and retried by
    # its timeout before it could ever count as a straggler (and is never deferred).
    min_straggle: float = 5.0

    def __post_init__(self) -> None:
        if self.finish_at is not None and not 0 < self.finish_at <= 1:
            raise UsageError(f"finish_at={self.finish_at!r}: give a share like 99% (0.99)")
        if self.deadline is not None and not self.deadline > 0:
            raise UsageError(f"deadline={self.deadline!r} must be a duration above zero")
        if not (self.patience >= 0 and self.straggle > 0 and self.min_straggle >= 0):
            raise UsageError("patience, straggle and min_straggle must be positive")


@dataclass(frozen=True, slots=True)
class HostTail:
    """What the tail policy needs of one host with work left.

    Attributes:
        queued: its items not started yet.
        in_flight: its requests out now.
        oldest: the age in seconds of its oldest request out (0 when none).
        rate: the requests per second it allows (``HostController.drain_rate``), or
            None when not known yet.
        held: why it is held back now (``HostController.held``), or None.
        held_for: seconds left of that hold.
        p95: its latency p95 in seconds, or None.
    """

    queued: int
    in_flight: int = 0
    oldest: float = 0.0
    rate: float | None = None
    held: Reason | None = None
    held_for: float = 0.0
    p95: float | None = None


def forecast(host: HostTail, settings: TailSettings) -> float:
    """Seconds until the host's remaining items are done (``inf``: they may never be)."""
    if host.in_flight and host.p95 is not None:
        limit = max(settings.min_straggle, settings.straggle * host.p95)
        if host.oldest > limit:
            return math.inf  # a straggler: no answer is coming in any useful time
    if not host.queued:
        return host.held_for if host.in_flight else 0.0
    if not host.rate:
        return math.inf
    return host.held_for + host.queued / host.rate


def tail_deferrals(
    hosts: Mapping[str, HostTail],
    settings: TailSettings,
    *,
    elapsed: float,
    ended: int,
    total: int | None,
) -> dict[str, Reason]:
    """Which hosts' remaining items to defer now, and why (see the module docstring).

    Args:
        hosts: every host with items queued or out.
        elapsed: seconds since the run started.
        ended: items ended so far (ok, failed, deferred); total: items in the input, if
            known (``--finish-at`` needs it).
    """
    busy = {host: tail for host, tail in hosts.items() if tail.queued or tail.in_flight}
    if settings.deadline is not None and elapsed >= settings.deadline:
        return dict.fromkeys(busy, Reason.DEADLINE)
    deferred: dict[str, Reason] = {}
    if settings.finish_at is not None and total and ended >= settings.finish_at * total:
        for host, tail in busy.items():
            if forecast(tail, settings) > elapsed:
                deferred[host] = Reason.TAIL
    waiting = {host: tail for host, tail in busy.items() if host not in deferred}
    if waiting and all(tail.held is not None and not tail.in_flight for tail in waiting.values()):
        for host, tail in waiting.items():
            # A site's pause is waited out in proportion to the run; a breaker's is not:
            # its probes keep failing, and its openings grow (30 s x n) as fast as the run,
            # so a run left with a dead host alone would probe it item by item for ever.
            longest_wait = (
                settings.patience
                if tail.held is Reason.BREAKER
                else max(settings.patience, elapsed)
            )
            if tail.held_for > longest_wait and tail.held is not None:
                deferred[host] = tail.held
    return deferred


class TransferRate:
    """Is a body arriving too slowly? Averages over windows of at least ``window`` s."""

    __slots__ = ("_at", "_bytes", "_counted")

    def __init__(self, now: float) -> None:
        self._at = now  # the start of the current window
        self._counted = 0  # bytes when it started
        self._bytes = 0

    def feed(self, nbytes: int) -> None:
        self._bytes += nbytes

    def too_slow(
        self, now: float, *, min_rate: float = MIN_RATE, window: float = RATE_WINDOW
    ) -> bool:
        """True when the window just ended averaged under ``min_rate`` bytes per second.
        Call it whenever convenient (on each read, on a sweep): a window ends at the
        first call at least ``window`` seconds after it began."""
        span = now - self._at
        if span < window:
            return False
        slow = (self._bytes - self._counted) / span < min_rate
        self._at, self._counted = now, self._bytes
        return slow
