"""The total ``timeout`` of an exchange, for thousands of requests with one timer.

aiohttp's ``ClientTimeout(total=...)`` and ``asyncio.timeout`` each arm and cancel a timer
per request; at 10,000+ requests a second that bookkeeping is a measurable share of the
client's CPU. A total deadline does not need millisecond precision, so ``Deadlines``
keeps one coarse sweep (a ``loop.call_later`` callback, not a task) that runs only while
requests are in flight and cancels those past their deadline -- at most ``granularity``
late. The cancellation is turned into ``FetchTimeout`` exactly the way ``asyncio.timeout``
does it: only when it was ours (``Task.uncancel()`` back to the count at entry), so an
outer cancellation (Ctrl-C, a task group) still propagates as ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import itertools


class Deadlines:
    """Registers exchanges with their deadline; one periodic sweep enforces them all."""

    def __init__(self, timeout: float | None, *, granularity: float = 0.05) -> None:
        self.timeout = timeout
        # Check a few times per timeout, never more often than every 50 ms.
        self._granularity = max(granularity, (timeout or 0) / 20)
        self._active: dict[int, tuple[float, asyncio.Task[object], int]] = {}
        self._expired: set[int] = set()
        self._tokens = itertools.count()
        self._sweep: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one loop of the client

    def enter(self) -> int | None:
        """Start the current task's deadline; returns a token for ``exit`` (None: no limit).

        Methods rather than a context manager: this runs on every request, and a
        generator-based context manager costs more than the bookkeeping itself.
        """
        if self.timeout is None:
            return None
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        # With the loop given, no lookup of the running loop (a getpid() call on 3.11).
        task = asyncio.current_task(loop)
        assert task is not None
        token = next(self._tokens)
        self._active[token] = (loop.time() + self.timeout, task, task.cancelling())
        if self._sweep is None:
            self._sweep = loop.call_later(self._granularity, self._run_sweep, loop)
        return token

    def exit(self, token: int | None) -> None:
        if token is not None:
            self._active.pop(token, None)
            self._expired.discard(token)

    def timed_out(self, token: int | None) -> bool:
        """After a ``CancelledError``: was it our deadline, and only ours?"""
        if token is None or token not in self._expired:
            return False
        _, task, cancelling = self._active[token]
        return task.uncancel() <= cancelling

    def _run_sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        now = loop.time()
        for token, (deadline, task, _) in list(self._active.items()):
            if deadline <= now and token not in self._expired:
                self._expired.add(token)
                task.cancel()
        if self._active:
            self._sweep = loop.call_later(self._granularity, self._run_sweep, loop)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
