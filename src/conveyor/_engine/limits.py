"""Rate and per-key limits. The arithmetic is pure; the async layer only waits.

``TokenBucket`` is the generic cell rate algorithm (GCRA): instead of counting tokens it
keeps the theoretical arrival time of the next request, so reserving a slot is one
comparison and never needs a background refill task.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .._errors import UsageError

Clock = Callable[[], float]

_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*$")


def parse_rate(rate: float | int | str | None, *, name: str = "rate") -> float | None:
    """Turn ``"20/s"``, ``"600/min"``, ``"1000/h"`` or a number into events per second."""
    if rate is None:
        return None
    if isinstance(rate, bool):
        raise UsageError(f"{name}={rate!r}: give a number per second or a string like '20/s'")
    if isinstance(rate, int | float):
        per_second = float(rate)
    elif isinstance(rate, str):
        match = _RATE_RE.match(rate.lower())
        unit = match and _RATE_UNITS.get(match.group(2))
        if not match or unit is None:
            raise UsageError(
                f"{name}={rate!r} is not a rate: write it like '20/s', '600/min' or '1000/h'"
            )
        per_second = float(match.group(1)) / unit
    else:
        raise UsageError(f"{name}={rate!r}: give a number per second or a string like '20/s'")
    if not per_second > 0:
        raise UsageError(f"{name}={rate!r} must be greater than zero")
    return per_second


class TokenBucket:
    """At most ``rate`` events per second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, *, burst: float = 1.0, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise UsageError("TokenBucket needs rate > 0 and burst >= 1")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1.0) * self._interval
        self._clock = clock
        self._tat = clock()  # theoretical arrival time of the next conforming event

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on (used to slow a host down after a 429)."""
        self._interval = 1.0 / rate

    def reserve(self) -> float:
        """Take the next slot and return how many seconds to wait until it is due."""
        now = self._clock()
        tat = max(self._tat, now)
        delay = max(0.0, tat - self._tolerance - now)
        self._tat = tat + self._interval
        return delay

    def delay_until(self, when: float) -> None:
        """Let no event through before the clock reads ``when`` (e.g. a Retry-After)."""
        self._tat = max(self._tat, when)

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class KeyedLimiterStatistics:
    keys_active: int
    in_flight: int
    waiting: int
    max_seen: int


class KeyedLimiter:
    """At most ``limit`` holders at once per key (for example per host)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise UsageError(f"per-key limit must be at least 1, got {limit}")
        self._limit = limit
        self._active: dict[Hashable, int] = {}
        self._waiters: dict[Hashable, list[asyncio.Future[None]]] = {}
        self._max_seen = 0

    def try_acquire_nowait(self, key: Hashable) -> bool:
        held = self._active.get(key, 0)
        if held >= self._limit:
            return False
        self._active[key] = held + 1
        if held >= self._max_seen:
            self._max_seen = held + 1
        return True

    async def acquire(self, key: Hashable) -> None:
        while not self.try_acquire_nowait(key):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(key, []).append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled while waiting: pass our wake-up on so no slot is lost.
                self._forget(key, waiter)
                if waiter.done() and not waiter.cancelled():
                    self._wake_one(key)
                raise

    def release(self, key: Hashable) -> None:
        held = self._active[key] - 1
        if held:
            self._active[key] = held
        else:
            del self._active[key]  # keep the dict as small as the set of busy keys
        if self._waiters:
            self._wake_one(key)

    def _wake_one(self, key: Hashable) -> None:
        waiters = self._waiters.get(key)
        while waiters:
            waiter = waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not waiters:
            self._waiters.pop(key, None)

    def _forget(self, key: Hashable, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(key)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[key]

    @property
    def limit(self) -> int:
        return self._limit

    def held(self) -> dict[Hashable, int]:
        """Holders per key, for the keys held now."""
        return dict(self._active)

    def statistics(self) -> KeyedLimiterStatistics:
        return KeyedLimiterStatistics(
            keys_active=len(self._active),
            in_flight=sum(self._active.values()),
            waiting=sum(len(w) for w in self._waiters.values()),
            max_seen=self._max_seen,
        )


def parse_limit_per(value: Any) -> tuple[Callable[[Any], Hashable], int] | None:
    """Check a ``limit_per=(key_fn, n)`` argument."""
    if value is None:
        return None
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not callable(value[0])
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
    ):
        raise UsageError(
            f"limit_per={value!r}: give a (key_function, limit) pair, "
            "e.g. limit_per=(lambda url: urlsplit(url).hostname, 4)"
        )
    if value[1] < 1:
        raise UsageError(f"limit_per limit must be at least 1, got {value[1]}")
    return value[0], value[1]
