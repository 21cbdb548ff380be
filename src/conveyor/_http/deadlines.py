"""The ``timeout`` and ``read_timeout`` of exchanges, for thousands of requests with one timer.

aiohttp's ``ClientTimeout(total=..., sock_read=...)`` and ``asyncio.timeout`` arm and cancel
timers per request, and ``sock_read`` re-arms one on every chunk that arrives; at 10,000+
requests a second that bookkeeping is a measurable share of the client's CPU (about 3% of
a run against nginx). Neither limit needs millisecond precision, so ``Deadlines`` keeps one
coarse sweep (a ``loop.call_later`` callback, not a task) that runs only while requests
are in flight, at most ``granularity`` late:

* ``timeout``: an exchange past its deadline is cancelled;
* ``read_timeout``: an exchange whose response stream (``watch``) has not grown for that
  long is cancelled -- also before the response begins, counting from ``enter``. A sweep
  reads the stream's byte count; nothing is done per chunk.
* ``min_rate``: an exchange whose body averaged under that many bytes per second over a
  window of ``rate_window`` seconds (``tail.TransferRate``) is cancelled as ``too_slow``,
  so a body that trickles a byte now and then, forever, cannot hold the run's tail.

The cancellation is turned into ``FetchTimeout`` exactly the way ``asyncio.timeout`` does
it: only when it was ours (``Task.uncancel()`` back to the count at entry), so an outer
cancellation (Ctrl-C, a task group) still propagates as ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any, Literal

from .tail import RATE_WINDOW, TransferRate

Expiry = Literal["timeout", "read_timeout", "too_slow"]

# An exchange, as a list (mutated by the sweep, made on every request):
_DEADLINE, _TASK, _CANCELLING, _STREAM, _SEEN, _QUIET_SINCE, _RATE, _FED = range(8)


class Deadlines:
    """Registers exchanges with their limits; one periodic sweep enforces them all."""

    def __init__(
        self,
        timeout: float | None,
        *,
        read_timeout: float | None = None,
        min_rate: float | None = None,
        rate_window: float = RATE_WINDOW,
        granularity: float = 0.05,
    ) -> None:
        self.timeout = timeout
        self.read_timeout = read_timeout
        self.min_rate = min_rate
        self.rate_window = rate_window
        # A stream is watched for either limit on the body.
        self._watching = read_timeout is not None or min_rate is not None
        limits = [limit for limit in (timeout, read_timeout) if limit is not None]
        if min_rate is not None:
            limits.append(rate_window)
        # Check a few times per limit, never more often than every 50 ms.
        self._granularity = max(granularity, min(limits) / 20) if limits else granularity
        self._active: dict[int, list[Any]] = {}
        self._expired: dict[int, Expiry] = {}
        self._tokens = itertools.count()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one loop of the client

    def enter(self) -> int | None:
        """Start the current task's limits; returns a token for ``exit`` (None: no limit).

        Methods rather than a context manager: this runs on every request, and a
        generator-based context manager costs more than the bookkeeping itself.
        """
        timeout = self.timeout
        if timeout is None and not self._watching:
            return None
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # With the loop given, no lookup of the running loop (a getpid() call on 3.11).
        task = asyncio.current_task(loop)
        assert task is not None
        token = next(self._tokens)
        now = loop.time()
        deadline = math.inf if timeout is None else now + timeout
        self._active[token] = [deadline, task, task.cancelling(), None, 0, now, None, 0]
        if self._sweep is None:
            self._sweep = loop.call_later(self._granularity, self._run_sweep, loop)
        return token

    def watch(self, token: int | None, stream: Any) -> None:
        """The response began: its ``stream`` (with a growing ``total_bytes``) is how
        ``read_timeout`` sees bytes arrive. Its beginning counts as bytes."""
        if token is not None and self._watching:
            exchange = self._active.get(token)
            if exchange is not None:
                exchange[_STREAM] = stream
                exchange[_SEEN] = -1  # the next sweep sees a change: the response began

    def exit(self, token: int | None) -> None:
        if token is not None:
            self._active.pop(token, None)
            self._expired.pop(token, None)

    def timed_out(self, token: int | None) -> Expiry | None:
        """After a ``CancelledError``: which of our limits cancelled it, if only ours did."""
        if token is None:
            return None
        expiry = self._expired.get(token)
        if expiry is None:
            return None
        exchange = self._active[token]
        return expiry if exchange[_TASK].uncancel() <= exchange[_CANCELLING] else None

    def _run_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        now = loop.time()
        expired = self._expired
        for token, exchange in list(self._active.items()):
            if token in expired:
                continue
            expiry = self._expiry(exchange, now)
            if expiry is None:
                continue
            expired[token] = expiry
            exchange[_TASK].cancel()
        if self._active:
            self._sweep = loop.call_later(self._granularity, self._run_sweep, loop)

    def _expiry(self, exchange: list[Any], now: float) -> Expiry | None:
        if exchange[_DEADLINE] <= now:
            return "timeout"
        if not self._watching:
            return None
        stream = exchange[_STREAM]
        seen = stream.total_bytes if stream is not None else 0
        min_rate = self.min_rate
        if min_rate is not None and stream is not None:
            rate = exchange[_RATE]
            if rate is None:  # the body began: its window starts now
                rate = exchange[_RATE] = TransferRate(now)
                exchange[_FED] = seen
            rate.feed(seen - exchange[_FED])
            exchange[_FED] = seen
            if rate.too_slow(now, min_rate=min_rate, window=self.rate_window):
                return "too_slow"
        read_timeout = self.read_timeout
        if read_timeout is None:
            return None
        if seen != exchange[_SEEN]:
            exchange[_SEEN], exchange[_QUIET_SINCE] = seen, now
            return None
        if now - exchange[_QUIET_SINCE] < read_timeout:
            return None
        return "read_timeout"

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
