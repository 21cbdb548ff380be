"""A host's rate after refusals, without the sawtooth: the cubic of AWS SDKs' adaptive retry.

Until a host refuses, it has no rate limit of ours (only ``--host-rate``, a ceiling). On
a refusal the rate it was getting is remembered as ``w_max`` and the rate drops to
``beta * w_max``; from then on it follows

    rate(t) = C * (t - K)**3 + w_max,    K = cbrt(w_max * (1 - beta) / C)

(``t`` since the refusal): concave up to ``w_max`` -- most of the way back in the first
half of ``K`` -- flat around it, then convex above it, probing slowly for more. It is
never above twice the rate the host was measured to take, so a host we had few items for
does not get a licence for a burst. The AWS SDKs use ``C = 0.4`` for API calls, which
recovers within seconds at their scale; ``C`` is chosen per refusal so that ``K`` is
``recover`` seconds (10 by default) whatever the host's scale. (It was 60 s: a site's
one-off 429s, a page at a time, ratcheted a host's rate down a little further each time
and the demo ran 9x slower than with fixed limits.)

The measured rate is the SDKs' too: answers are counted in half-second buckets and each
full bucket moves the estimate 80% of the way to its own rate. Before the first bucket is
full it is the answers so far over the time since the host's first request: a site that
refuses within its first round trips (most do) would otherwise be measured at 0, and
held near the floor rate for good.

After ``forgive`` seconds with no refusal the host is forgiven: no rate limit of ours.
That is also what lets an idle host's state be forgotten.
"""

from __future__ import annotations

import math
from typing import NamedTuple

BUCKET = 0.5  # seconds per measuring bucket
SMOOTH = 0.8  # share of a new bucket's rate in the measured rate
MIN_RATE = 0.5  # requests per second: the floor after any number of refusals (the SDKs')


class RateLearnt(NamedTuple):
    """What one host's rate learnt from a refusal, for another to start from
    (``CubicRate.take``). Picklable: it travels to loop processes."""

    w_max: float
    age: float  # seconds since the refusal (clocks differ between processes)
    k: float
    scale: float
    measured: float


class CubicRate:
    """One host's rate limit after refusals. Pure: every time comes in as an argument."""

    __slots__ = ("_bucket", "_count", "_full", "_k", "_scale", "measured", "refused_at", "w_max")

    def __init__(self, now: float) -> None:
        self.measured = 0.0
        self._bucket = now  # the current bucket's start
        self._count = 0
        self._full = False  # a bucket has been filled: ``measured`` holds
        self.w_max = 0.0  # 0: no refusal yet, no limit
        self.refused_at = 0.0
        self._k = 0.0
        self._scale = 0.0

    def answered(self, now: float) -> None:
        """Count one answer (of any kind) toward the measured rate."""
        self._count += 1
        span = now - self._bucket
        if span >= BUCKET:
            current = self._count / span
            self.measured = SMOOTH * current + (1.0 - SMOOTH) * self.measured
            self._count = 0
            self._bucket = now
            self._full = True

    def measured_rate(self, now: float) -> float:
        """Answers per second the host has been taking (see the module docstring)."""
        if self._full:
            return self.measured
        span = now - self._bucket
        return self._count / span if span > 0 else 0.0

    def refused(self, now: float, *, beta: float, recover: float) -> None:
        """A refusal: remember the rate that was refused and fall to ``beta`` of it."""
        limit = self.rate(now)
        measured = self.measured_rate(now)
        # The rate we allowed, as TCP's cubic takes its window, not what was measured:
        # a pause (the site's Retry-After) empties the buckets, and a second one-off
        # refusal right after one would take that trough as the refused rate, each time
        # lower (the demo's hosts sank to 30 requests a second of 500).
        taken = measured if limit is None else limit
        self.w_max = max(MIN_RATE, taken)
        self.refused_at = now
        self._k = recover
        # C so that the curve is back at w_max after ``recover`` seconds, at any scale.
        self._scale = self.w_max * (1.0 - beta) / recover**3

    def learnt(self, now: float) -> RateLearnt | None:
        """The refused rate and its curve, or None when no refusal is remembered."""
        if not self.w_max:
            return None
        return RateLearnt(
            self.w_max, now - self.refused_at, self._k, self._scale, self.measured_rate(now)
        )

    def take(self, learnt: RateLearnt, parts: int, now: float) -> None:
        """Start from another host's refused rate, this one holding ``1/parts`` of the
        host: the same curve, scaled to its part, timed from the same refusal."""
        self.w_max = max(MIN_RATE, learnt.w_max / parts)
        self.refused_at = now - learnt.age
        self._k = learnt.k
        self._scale = learnt.scale / parts
        self.measured = learnt.measured / parts
        self._full = True
        self._bucket, self._count = now, 0

    def rate(self, now: float, *, forgive: float = math.inf) -> float | None:
        """Requests per second allowed now, or None when no refusal is remembered."""
        if not self.w_max:
            return None
        since = now - self.refused_at
        if since > forgive:
            self.w_max = 0.0
            return None
        cubic = self._scale * (since - self._k) ** 3 + self.w_max
        return max(MIN_RATE, min(cubic, 2.0 * self.measured_rate(now)))
