"""Who may send a request now: per-host and global slots, rates, and 429 back-off.

``HostPacer`` (``pacing.py``) is pure (clock injected): it decides *when* the next request
to a host may leave, from the host's own rate, a pause set by a ``Retry-After`` and the
slow-down a 429 imposes on that host for every request, not only the retried one.
``Limits`` is the async layer that only waits on those verdicts and on the slots.

Slots are taken in the order host slot -> host pacing -> global slot -> global rate, so
a request waiting for a busy or paused host never holds one of the global slots that
other hosts could use.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

from .._engine.limits import KeyedLimiter, TokenBucket
from .._engine.ports import Budget
from .pacing import Clock, HostPacer

__all__ = ["Clock", "HostPacer", "Limits"]

# How often a loop process whose requests wait for a global slot looks whether another
# loop process gave one back (``shared`` slots; a slot freed here is handed over at once):
# every millisecond while it finds some, less often (doubling, up to 8 ms) while it does
# not, so a loop waiting behind long downloads elsewhere does not spin.
SHARED_POLL = 0.001
SHARED_POLL_MAX = 0.008


class Limits:
    """The async gate every request (each retry and each redirect hop) passes through."""

    def __init__(
        self,
        *,
        concurrency: int,
        per_host: int,
        rate: float | None,
        host_rate: float | None,
        clock: Clock = time.monotonic,
        shared: Budget | None = None,
    ) -> None:
        self.pacer = HostPacer(host_rate, clock=clock)
        # With loop processes, the global slots are a budget they share (the engine's
        # ``Budget`` port); a slot freed here still goes to a request waiting here first.
        self._shared = shared
        self._poll: asyncio.TimerHandle | None = None
        self._poll_every = SHARED_POLL
        self._hosts = KeyedLimiter(per_host)
        # A counter and a FIFO of waiters rather than asyncio.Semaphore, so that the
        # uncontended case (every request, usually) is a synchronous decrement.
        self._free_global = concurrency
        self._global_waiters: deque[asyncio.Future[None]] = deque()
        self._rate = TokenBucket(rate, clock=clock) if rate else None
        self._clock = clock
        self._in_flight = 0
        self._since_prune = 0

    def try_acquire_nowait(self, host: str) -> bool:
        """Take every slot at once if nothing has to wait (the common case); else False."""
        if (
            self._global_waiters
            or self._rate is not None
            or not self.pacer.idle(host)
            or not self._hosts.try_acquire_nowait(host)
        ):
            return False
        if not self._take_global():
            self._hosts.release(host)
            return False
        self._in_flight += 1
        return True

    def _take_global(self) -> bool:
        """A global slot, if one is free now and no request here waits for one: this
        client's own, or one of the slots the loop processes share."""
        if self._global_waiters:
            return False
        if self._shared is not None:
            return self._shared.take_nowait()
        if self._free_global > 0:
            self._free_global -= 1
            return True
        return False

    async def acquire(self, host: str) -> None:
        """Wait for a host slot, the host's pace, a global slot and the global rate.

        Every ``acquire`` that returns is paired with one ``release``. Each wait undoes
        what it took if it is cancelled, so a cancelled fetch never leaks a slot.
        """
        if not self._hosts.try_acquire_nowait(host):
            await self._hosts.acquire(host)
        try:
            delay = self.pacer.reserve(host)
            if delay > 0:
                await asyncio.sleep(delay)
            await self._acquire_global()
            try:
                if self._rate is not None:
                    await _sleep(self._rate.reserve())
                # A 429 may have paused the host while we waited for the rest.
                await _sleep(self.pacer.pause_remaining(host))
            except BaseException:
                self._release_global()
                raise
        except BaseException:
            self._hosts.release(host)
            raise
        self._in_flight += 1

    def release(self, host: str) -> None:
        self._in_flight -= 1
        self._release_global()
        self._hosts.release(host)
        self._since_prune += 1
        if self._since_prune >= 1024:
            self._since_prune = 0
            self.pacer.forget_idle()

    async def _acquire_global(self) -> None:
        if self._take_global():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._global_waiters.append(waiter)
        if self._shared is not None and self._poll is None:
            self._poll_every = SHARED_POLL
            self._poll = loop.call_later(SHARED_POLL, self._take_shared)
        try:
            await waiter  # a release hands its slot over directly: no decrement here
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release_global()  # woken and cancelled at once: pass the slot on
            else:
                self._global_waiters.remove(waiter)
            raise

    def _release_global(self) -> None:
        while self._global_waiters:
            waiter = self._global_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if self._shared is not None:
            self._shared.give()
        else:
            self._free_global += 1

    def _take_shared(self) -> None:
        """Hand the waiters here the shared slots other loop processes gave back."""
        assert self._shared is not None
        self._poll = None
        found = False
        while self._global_waiters and self._shared.take_nowait():
            found = True
            self._release_global()  # to the first waiter still waiting (or back)
        self._poll_every = SHARED_POLL if found else min(self._poll_every * 2, SHARED_POLL_MAX)
        if self._global_waiters:
            loop = asyncio.get_running_loop()
            self._poll = loop.call_later(self._poll_every, self._take_shared)

    def in_flight(self) -> int:
        return self._in_flight

    def per_host_in_flight(self) -> dict[str, int]:
        return cast("dict[str, int]", self._hosts.held())

    def waiting(self) -> int:
        """Requests waiting for a slot of their host (the host has ``per_host`` out)."""
        return self._hosts.statistics().waiting

    def hosts_at_limit(self) -> int:
        """Hosts with all their ``per_host`` slots taken."""
        limit = self._hosts.limit
        return sum(1 for held in self._hosts.held().values() if held >= limit)


async def _sleep(delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
