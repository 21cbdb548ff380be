"""A host's retry budget: retries may add about ``ratio`` to its load, never multiply it.

Each first attempt to a host deposits, each retry withdraws; a retry is allowed while

    retries + 1 <= ratio * requests + floor

over a sliding horizon, so a host failing everything gets about 20% more requests from
retries plus a few, not ``retries`` times as many (Finagle's ``RetryBudget``: 20% plus a
minimum, tokens living 10 s; Envoy's retry budget: 20%, at least 3). The horizon is an
exponential decay of both counts with time constant ``horizon`` rather than a window of
timestamps: two floats per host, whatever its traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._errors import UsageError


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """The retry budget of every host (``ControlSettings`` holds one).

    Args:
        ratio: retries allowed per first attempt (0.2: 20% more load at most).
        floor: retries allowed on top, so a host with little traffic can still retry.
        horizon: seconds over which both counts decay (by a factor e per horizon).
    """

    ratio: float = 0.2
    floor: float = 3.0
    horizon: float = 10.0

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.floor < 0 or not self.horizon > 0:
            raise UsageError(
                f"retry budget: ratio={self.ratio!r} and floor={self.floor!r} must be at "
                f"least 0, horizon={self.horizon!r} above 0"
            )


LAZY = 0.005  # of the horizon: how stale the decay of first attempts may be


class RetryBudget:
    """One host's retry budget. Pure: times come in as arguments."""

    __slots__ = ("_at", "requests", "retries")

    def __init__(self, now: float) -> None:
        self.requests = 0.0
        self.retries = 0.0
        self._at = now

    def _decay(self, settings: BudgetSettings, now: float) -> None:
        if now > self._at:
            keep = math.exp(-(now - self._at) / settings.horizon)
            self.requests *= keep
            self.retries *= keep
            self._at = now

    def first_attempt(self, settings: BudgetSettings, now: float) -> None:
        # Decayed once per ``LAZY`` of the horizon (not an ``exp`` every request): the
        # attempts in between count as if made at the last decay, a weight off by under
        # 1% of a horizon of 10 s.
        if now - self._at >= LAZY * settings.horizon:
            self._decay(settings, now)
        self.requests += 1.0

    def try_retry(self, settings: BudgetSettings, now: float) -> bool:
        """Take a retry from the budget if there is one; False leaves the budget as it was."""
        self._decay(settings, now)
        if self.retries + 1.0 > settings.ratio * self.requests + settings.floor:
            return False
        self.retries += 1.0
        return True
