"""Who may send a request now: the host's slots and verdict, the global slots and rate.

The per-host controller (``controller.py``) is pure: it says how many requests a host may
have out (``limit``) and whether one may leave now (``verdict``: ``Go``, ``Wait``,
``Probe``, ``Defer``). ``Limits`` is the async layer that only waits on those answers and
on the slots; it never decides anything about a host itself.

Slots are taken in the order host slot -> host verdict -> global slot -> global rate, so a
request waiting for a busy or paused host never holds one of the global slots that other
hosts could use. A request that waits (for a host slot, a verdict's time, a global slot)
can be *deferred* while it waits: the run's deadline defers every one of them, the tail
defers those of some hosts (``defer``), and the wait raises ``Deferred``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .._engine.limits import TokenBucket
from .._engine.ports import Budget, WaitingRoom
from .._errors import Deferred
from .controller import ControlSettings, HostController
from .pacing import Clock, HostPacer
from .verdicts import GO, Defer, Go, Probe, Verdict, Wait

__all__ = ["Clock", "HostPacer", "Limits"]

# How often a loop process whose requests wait for a global slot looks whether another
# loop process gave one back (``shared`` slots; a slot freed here is handed over at once):
# every millisecond while it finds some, less often (doubling, up to 8 ms) while it does
# not, so a loop waiting behind long downloads elsewhere does not spin.
SHARED_POLL = 0.001
SHARED_POLL_MAX = 0.008

Stop = Callable[[str], Deferred]  # host -> the error a waiting request raises


class Limits:
    """The async gate every request (each retry and each redirect hop) passes through."""

    def __init__(
        self,
        *,
        concurrency: int,
        rate: float | None,
        controller: HostController | None = None,
        per_host: int = 8,
        host_rate: float | None = None,
        clock: Clock = time.monotonic,
        shared: Budget | None = None,
    ) -> None:
        # Without a controller, today's fixed limits (``per_host``, ``host_rate``).
        if controller is None:
            settings = ControlSettings(adapt=False, per_host=per_host, host_rate=host_rate)
            controller = HostController(settings, clock=clock)
        self.controller = controller
        # With loop processes, the global slots are a budget they share (the engine's
        # ``Budget`` port); a slot freed here still goes to a request waiting here first.
        self._shared = shared
        self._poll: asyncio.TimerHandle | None = None
        self._poll_every = SHARED_POLL
        # Host slots: how many each host holds, and the requests waiting for one.
        self._held: dict[str, int] = {}
        self._host_waiters: dict[str, deque[asyncio.Future[None]]] = {}
        # Verdicts ``try_acquire_nowait`` asked and could not go on with, by host, each
        # with its host slot: the ``acquire`` that follows takes it up (a verdict is asked
        # once: a ``Go`` reserved its time, a ``Probe`` is the breaker's one probe).
        self._early: dict[str, list[Verdict]] = {}
        # Requests sleeping on a verdict (a Wait, or a Go's reserved time), by host;
        # True: woken early by the host's next answer (a Wait).
        self._sleeping: dict[str, dict[asyncio.Future[None], bool]] = {}
        # A counter and a FIFO of waiters rather than asyncio.Semaphore, so that the
        # uncontended case (every request, usually) is a synchronous decrement.
        self._free_global = concurrency
        self._global_waiters: deque[tuple[asyncio.Future[None], str]] = deque()
        self._rate = TokenBucket(rate, clock=clock) if rate else None
        self._clock = clock
        self._in_flight = 0
        # Deferral: ``_stop`` (the deadline) defers every wait and every new request;
        # ``_deferring`` the hosts the tail gave up on.
        self._stop: Stop | None = None
        self._deferring: dict[str, Stop] = {}
        # The fast path is taken only when none of these is set (one check per request).
        self._slow = self._rate is not None
        # The stage's waiting room (``ports.Parks``), told of each request that waits on
        # its host (a host slot, a verdict's time): another item may come in meanwhile.
        self.room: WaitingRoom | None = None

    # -- taking -------------------------------------------------------------------------

    def try_acquire_nowait(self, host: str) -> bool:
        """Take every slot at once if nothing has to wait (the common case): True.

        False: call ``acquire`` next, at once (the client does). When the host's verdict
        was asked and says wait, it is kept with the host's slot for that ``acquire``.
        """
        if self._slow or self._global_waiters:
            return False
        held = self._held.get(host, 0)
        if host in self._host_waiters or held >= self.controller.limit(host):
            return False
        if not self._take_global():
            return False
        self._held[host] = held + 1
        verdict = self.controller.verdict(host)
        if verdict is GO:
            self._in_flight += 1
            return True
        self._release_global()  # wait for the host without holding a global slot
        self._early.setdefault(host, []).append(verdict)
        return False

    async def acquire(self, host: str) -> None:
        """Wait for a host slot, the host's verdict, a global slot and the global rate.

        Every ``acquire`` that returns is paired with one ``release``. Each wait undoes
        what it took if it is cancelled or deferred, so a fetch never leaks a slot.

        Raises:
            Deferred: the host's verdict defers it (parked beyond the cap), or the run's
                deadline or tail deferred it while it waited.
        """
        verdict: Verdict | None = None
        early = self._early.get(host)
        if early:
            verdict = early.pop()
            if not early:
                del self._early[host]
        else:
            self._check_stop(host)
            await self._acquire_host(host)
        try:
            while True:
                if verdict is None:
                    self._check_stop(host)
                    verdict = self.controller.verdict(host)
                if type(verdict) is Go:
                    if verdict.after > 0:
                        await self._sleep(host, verdict.after, early=False)
                elif type(verdict) is Wait:
                    await self._sleep(host, verdict.until - self._clock(), early=True)
                    verdict = None
                    continue
                elif type(verdict) is Defer:
                    until = self.controller.to_wall(verdict.until)
                    raise Deferred(
                        f"{host} is held back by its site ({verdict.reason}) beyond the cap",
                        reason=str(verdict.reason),
                        until=until,
                    )
                probe = type(verdict) is Probe
                await self._acquire_global(host)
                try:
                    if self._rate is not None:
                        await self._sleep(host, self._rate.reserve(), early=False, parked=False)
                except BaseException:
                    self._release_global()
                    raise
                # A refusal may have paused the host while we waited for the rest.
                if not probe and self.controller.held(host) is not None:
                    self._release_global()
                    verdict = None
                    continue
                break
        except BaseException:
            self._release_host(host)
            raise
        self._in_flight += 1

    def release(self, host: str) -> None:
        """The request's slots go back: to the next request waiting for them."""
        self._in_flight -= 1
        self._release_global()
        self._release_host(host)

    def answered(self, host: str) -> None:
        """The host's answer came in: wake the requests waiting on its verdict (a probe's
        answer ends a breaker's wait; ``watch.Watch`` calls it too when another loop's
        probe did). Its waiters for a slot were let in by ``release``, up to the limit the
        answer set."""
        sleeping = self._sleeping.get(host)
        if sleeping is not None:
            for future, early in list(sleeping.items()):
                if early and not future.done():
                    future.set_result(None)

    # -- host slots ---------------------------------------------------------------------

    async def _acquire_host(self, host: str) -> None:
        held = self._held.get(host, 0)
        if host not in self._host_waiters and held < self.controller.limit(host):
            self._held[host] = held + 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._host_waiters.setdefault(host, deque()).append(waiter)
        try:
            with self.parked():
                await waiter  # ``_admit`` counts the slot for us before waking us
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release_host(host)  # woken and cancelled at once: pass the slot on
            else:
                self._drop_waiter(host, waiter)
            raise

    def _drop_waiter(self, host: str, waiter: asyncio.Future[None]) -> None:
        waiters = self._host_waiters.get(host)
        if waiters is None:
            return
        try:
            waiters.remove(waiter)
        except ValueError:
            pass
        if not waiters:
            del self._host_waiters[host]

    def _release_host(self, host: str) -> None:
        held = self._held[host] - 1
        if held:
            self._held[host] = held
        else:
            del self._held[host]
        if host in self._host_waiters:
            self._admit(host)

    def _admit(self, host: str) -> None:
        """Hand free host slots (under the host's limit now) to its waiters, in order."""
        waiters = self._host_waiters[host]
        limit = self.controller.limit(host)
        held = self._held.get(host, 0)
        while waiters and held < limit:
            waiter = waiters.popleft()
            if not waiter.done():
                held += 1
                waiter.set_result(None)
        if held:
            self._held[host] = held
        if not waiters:
            del self._host_waiters[host]

    @contextlib.contextmanager
    def parked(self) -> Iterator[None]:
        """A request waits on its host with nothing out, meanwhile: the room (if any)
        has a seat more for another item."""
        room = self.room
        if room is None:
            yield
            return
        room.grow()
        try:
            yield
        finally:
            room.shrink()

    # -- sleeping on a verdict ----------------------------------------------------------

    async def _sleep(self, host: str, delay: float, *, early: bool, parked: bool = True) -> None:
        """Sleep ``delay`` s, woken early by the host's next answer when ``early``;
        ``parked``: a wait on the host (told to the room), not on the global rate."""
        if delay <= 0:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay, _wake, future)
        sleeping = self._sleeping.setdefault(host, {})
        sleeping[future] = early
        try:
            with self.parked() if parked else contextlib.nullcontext():
                await future
        finally:
            handle.cancel()
            sleeping.pop(future, None)
            if not sleeping and self._sleeping.get(host) is sleeping:
                del self._sleeping[host]

    # -- global slots -------------------------------------------------------------------

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

    async def _acquire_global(self, host: str) -> None:
        if self._take_global():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        entry = (waiter, host)
        self._global_waiters.append(entry)
        if self._shared is not None and self._poll is None:
            self._poll_every = SHARED_POLL
            self._poll = loop.call_later(SHARED_POLL, self._take_shared)
        try:
            await waiter  # a release hands its slot over directly: no decrement here
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release_global()  # woken and cancelled at once: pass the slot on
            else:
                try:
                    self._global_waiters.remove(entry)
                except ValueError:
                    pass
            raise

    def _release_global(self) -> None:
        while self._global_waiters:
            waiter, _ = self._global_waiters.popleft()
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

    # -- deferring ----------------------------------------------------------------------

    def stop(self, error: Stop) -> None:
        """The run's time is up: every request waiting here, and every later one, raises
        ``error(host)``. Requests out go on."""
        self._stop = error
        self._slow = True
        self._defer_waiting(None, error)

    def defer(self, hosts: Iterable[str], error: Stop) -> None:
        """Give up on these hosts for this run: their waiting requests and their later
        ones raise ``error(host)``."""
        chosen = set(hosts)
        for host in chosen:
            self._deferring[host] = error
        self._slow = True
        self._defer_waiting(chosen, error)

    def undefer(self, host: str) -> None:
        """Take a host back (its hold has ended)."""
        self._deferring.pop(host, None)
        self._slow = self._rate is not None or self._stop is not None or bool(self._deferring)

    def deferring(self) -> dict[str, Stop]:
        return self._deferring

    def _check_stop(self, host: str) -> None:
        if self._stop is not None:
            raise self._stop(host)
        error = self._deferring.get(host)
        if error is not None:
            raise error(host)

    def _defer_waiting(self, hosts: set[str] | None, error: Stop) -> None:
        def chosen(host: str) -> bool:
            return hosts is None or host in hosts

        for host in [h for h in self._host_waiters if chosen(h)]:
            for waiter in self._host_waiters.pop(host):
                if not waiter.done():
                    waiter.set_exception(error(host))
        for host, sleeping in list(self._sleeping.items()):
            if chosen(host):
                for future in list(sleeping):
                    if not future.done():
                        future.set_exception(error(host))
        kept: deque[tuple[asyncio.Future[None], str]] = deque()
        for waiter, host in self._global_waiters:
            if chosen(host):
                if not waiter.done():
                    waiter.set_exception(error(host))
            else:
                kept.append((waiter, host))
        self._global_waiters = kept

    # -- what it says -------------------------------------------------------------------

    def in_flight(self) -> int:
        return self._in_flight

    def per_host_in_flight(self) -> dict[str, int]:
        return dict(self._held)

    def waiting(self) -> int:
        """Requests waiting for a slot of their host (the host has its limit out)."""
        return sum(len(w) for w in self._host_waiters.values())

    def queued(self) -> dict[str, int]:
        """Requests waiting here, by host: for a host slot, its verdict or a global slot."""
        queued = {host: len(w) for host, w in self._host_waiters.items()}
        for host, sleeping in self._sleeping.items():
            queued[host] = queued.get(host, 0) + len(sleeping)
        for _, host in self._global_waiters:
            queued[host] = queued.get(host, 0) + 1
        return queued

    def hosts_at_limit(self) -> int:
        """Hosts with all the slots their limit allows taken."""
        limit = self.controller.limit
        return sum(1 for host, held in self._held.items() if held >= limit(host))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
