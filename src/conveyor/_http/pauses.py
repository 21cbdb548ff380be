"""How long a host is paused after it refused: its own ``Retry-After``, or our backoff.

- **With ``Retry-After``** (either form; ``retry.parse_retry_after`` reads it), the host
  is paused for every request until then, in full: the site said when. Up to ``cap``
  (24 h, as StormCrawler); beyond it the host is *parked*: its items are deferred with
  the time the site gave, rather than fetched early (Crawlee cuts the wait to 60 s and
  comes back too soon) or waited on for days.
- **Without it** (a bare 429 or 503), the pause is ``base * 2**(n - 1)`` for the n-th
  such refusal, at most ``longest``, moved by up to ``jitter`` of itself either way so
  that hosts paused together do not come back together (StormCrawler #1984,
  NUTCH-2946). ``n`` is forgotten after ``forgive`` seconds with no refusal.

A burst of refusals is one event: a refusal of a request that left before the current
pause began (it was already out when the host said stop) neither doubles the pause nor
extends it; only the site's own ``Retry-After`` may move the end further.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._errors import UsageError


@dataclass(frozen=True, slots=True)
class PauseSettings:
    """Pauses after refusals (``ControlSettings`` holds one).

    Args:
        cap: the longest ``Retry-After`` waited for; a longer one parks the host.
        base: the first pause after a refusal without ``Retry-After``, in seconds.
        longest: the most such a pause grows to.
        forgive: seconds without a refusal after which the doubling starts over.
        jitter: the random share (0 to 1) of a backoff pause added or taken away.
    """

    cap: float = 86_400.0
    base: float = 60.0
    longest: float = 86_400.0
    forgive: float = 1_800.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        for name in ("cap", "base", "longest", "forgive"):
            value = getattr(self, name)
            if not value > 0:
                raise UsageError(f"{name}={value!r} must be a number of seconds above zero")
        if not 0 <= self.jitter <= 1:
            raise UsageError(f"jitter={self.jitter!r} must be between 0 and 1")


class HostPause:
    """One host's pause. Pure: times and the random draw come in as arguments."""

    __slots__ = ("began", "last_refusal", "parked", "strikes", "until")

    def __init__(self) -> None:
        self.until = 0.0
        self.began = -math.inf
        self.strikes = 0
        self.last_refusal = -math.inf
        self.parked = False  # the pause is beyond the cap: the host's items are deferred

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    def refusal(
        self,
        settings: PauseSettings,
        *,
        now: float,
        sent_at: float,
        retry_after: float | None,
        rand: float,
    ) -> float | None:
        """A refusal of a request sent at ``sent_at``; ``rand`` is a draw in [0, 1).

        Returns:
            The new pause in seconds from now, or None when the pause did not change
            (an earlier answer of the same burst set it).
        """
        if now - self.last_refusal > settings.forgive:
            self.strikes = 0
        self.last_refusal = now
        if retry_after is not None:
            if retry_after <= 0 or now + retry_after <= self.until:
                return None  # "come back now", or within a pause already set
            self.parked = retry_after > settings.cap
        else:
            if sent_at < self.began:
                return None  # already out when the pause began: the same burst
            self.strikes += 1
            pause = min(settings.longest, settings.base * 2.0 ** (self.strikes - 1))
            retry_after = pause * (1.0 + settings.jitter * (2.0 * rand - 1.0))
            if now + retry_after <= self.until:
                return None
            self.parked = False
        self.until = now + retry_after
        self.began = now
        return retry_after

    def restore(self, until: float, now: float, *, parked: bool) -> None:
        """Paused until ``until``, as an earlier run left it (its journal kept the time)."""
        if until > self.until:
            self.until, self.began, self.parked = until, now, parked

    def idle(self, settings: PauseSettings, now: float) -> bool:
        """Nothing left to remember: no pause running, and the doubling forgiven."""
        return self.until <= now and now - self.last_refusal > settings.forgive
