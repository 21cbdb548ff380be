"""Is the run stalled? Nothing has finished for a while, and not because its services are
waiting politely on hosts their sites paused.

Pure: times are arguments. ``StallWatch`` counts the seconds without progress, leaving out
the time during which every host with work was held back by its site (Ray Data's
no-progress guard stops its clock in the same way while the consumer is the bottleneck);
``oldest_in_flight`` names the items that have been out longest. The runner uses both for
``RunStatistics.stall`` (``runner.py``); the fetch's tail policy (``_http/tail.py``)
uses the same two.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


class StallWatch:
    """Reports a run that makes no progress while it could. Pure: times are arguments."""

    __slots__ = ("_checked", "_reports", "after", "stalled")

    def __init__(self, now: float, *, after: float = 60.0) -> None:
        self.after = after
        self.stalled = 0.0  # seconds without progress, polite waiting left out
        self._checked = now
        self._reports = 0

    def progress(self, now: float) -> None:
        """An item finished."""
        self.stalled = 0.0
        self._checked = now
        self._reports = 0

    def check(self, now: float, *, polite: bool) -> float | None:
        """Call every second or so; ``polite``: every host with work is held back now.

        Returns:
            The seconds stalled, when a report is due (after ``after`` seconds of stall,
            then after each further ``after``); else None.
        """
        if not polite:
            self.stalled += max(0.0, now - self._checked)
        self._checked = now
        if self.stalled >= self.after * (self._reports + 1):
            self._reports += 1
            return self.stalled
        return None


def oldest_in_flight(started: Mapping[K, float], now: float, n: int = 5) -> list[tuple[K, float]]:
    """The ``n`` oldest items out, with their ages in seconds, oldest first."""
    oldest = heapq.nsmallest(n, started.items(), key=lambda item: item[1])
    return [(key, now - at) for key, at in oldest]
