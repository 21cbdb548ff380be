"""``FakeClock``: the clock a test injects into conveyor's pure decisions.

Everything that decides *when* (rate limiters, per-host pacing, backoff, the per-host
controller) takes a ``clock=`` callable returning seconds, ``time.monotonic`` by default.
A test passes a ``FakeClock`` instead and moves time by hand, so it checks the arithmetic
without sleeping and without depending on how fast the machine is::

    clock = FakeClock()
    bucket = TokenBucket(10.0, clock=clock)
    clock.advance(0.5)
"""

from __future__ import annotations


class FakeClock:
    """A monotonic clock that moves only when told (``now`` may also be set directly)."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds} s)")
        self.now += seconds
