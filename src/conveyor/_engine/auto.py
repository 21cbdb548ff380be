"""``on="auto"`` for a plain function: placed by measuring it on the run's first items.

Where a plain function should run depends on what it costs and on whether it holds the
GIL, which its code does not say. So the first items are the probe:

1. the first item runs alone on a probe thread, timed in that thread's CPU time (so a busy
   machine does not make it look dearer). Under ``CHEAP_SECONDS``: the stage runs inline on
   the loop from then on, fused into the previous stage's workers (a thread hop costs
   ~100 µs, far more than such a call);
2. otherwise the next two items run at once on two probe threads (and if they turn out
   cheap after all, the first call paid for warming caches: inline). They begin together,
   and whether one was *blocked* while the other ran says whether the function holds the
   GIL: a call's wall time is its CPU time, the time it waited for a core (Linux says:
   ``/proc/thread-self/schedstat``) and the time it was blocked. Calls that let the GIL go
   (zlib, NumPy) are hardly blocked at all, whether the machine is idle or every core is
   busy (then they wait for a core: not blocked); calls that hold it are blocked for
   about half the pair's time. An unclear pair asks another (up to three). (Wall time
   against CPU time alone, as before, made calls that ran side by side on a machine whose
   cores were all busy look like turns. Where the kernel does not say, the wall time is
   scaled by the share of a core the first call got alone.) Holding the GIL, from
   ``PROCESS_SECONDS`` a call it goes to processes (where it can be pickled, and where the
   interpreter has a GIL at all); a shorter one stays inline, where a thread would only
   take turns with the loop and a process would cost more to send its item to than it
   saves. Letting the GIL go, it stays on threads.

Every probe call's result is a real result: each item is called once. The choice and its
reason show in the stage's statistics (``place``, ``reason``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import threading
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .gil import in_thread
from .loops.measure import ThreadWaits
from .placement import Placement, ProcessPlacement, ThreadPlacement
from .spec import StageSpec
from .threads import shutdown_executor

CHEAP_SECONDS = 50e-6  # CPU per call below which the loop runs it inline
PROCESS_SECONDS = 500e-6  # GIL-bound calls this long or longer go to processes
# Two calls at once ran side by side (the GIL let go) when their CPU time added up to more
# than this share of the pair's wall time (calls that hold the GIL never exceed 1) ...
OVERLAPPED = 1.1
# ... or when they were blocked for less than this share of the pair's time, added up
# (``AutoPlacement._side_by_side``). Measured with one busy process per core: zlib
# 0.0-0.26, pure Python 0.34-1.0; idle, ~0 and ~0.5 (as low as 0.13 with one core busy
# elsewhere). Between the two marks a pair is unclear: another is asked (up to
# ``_MAX_PAIRS``), and the pairs' mean decides.
BLOCKED_SIDE_BY_SIDE = 0.3
BLOCKED_CLEARLY_NOT, BLOCKED_CLEARLY = 0.1, 0.45
_MAX_PAIRS = 3
_PARTNER_WAIT = 0.05  # how long the second probe item waits for a third to pair with
_PAIR_START = 1.0  # how long either call of the pair waits for the other to begin with it
_MAX_FAILED_PROBES = 3  # probe calls that raised before the stage settles on threads


def _cores() -> int:
    return os.cpu_count() or 1


def gil_enabled() -> bool:
    """False on a free-threaded interpreter running without its GIL (3.13t and later)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


Timed = tuple[Any, float, float, float, float | None]


def _timed(fn: Callable[[Any], Any], value: Any, pair: threading.Barrier | None = None) -> Timed:
    """``fn(value)`` on this thread: the result, its start, its end, its CPU seconds and,
    for a call of the pair, the seconds it waited for a core (None where Linux does not
    say). ``pair``: the barrier where both calls of the pair meet, so they begin together;
    the start is then the moment this thread came to it, and the CPU and waits count from
    there (the time at the barrier itself costs neither)."""
    if pair is None:
        began, cpu = time.perf_counter(), time.thread_time()
        result = fn(value)
        return result, began, time.perf_counter(), time.thread_time() - cpu, None
    waits = ThreadWaits.open()  # here: its file is this thread's own
    try:
        began, cpu = time.perf_counter(), time.thread_time()
        waited = None if waits is None else waits.seconds()
        with contextlib.suppress(threading.BrokenBarrierError):  # then alone, as it comes
            pair.wait()
        result = fn(value)
        cpu = time.thread_time() - cpu
        if waits is not None and waited is not None:
            waited = waits.seconds() - waited
        return result, began, time.perf_counter(), cpu, waited
    finally:
        if waits is not None:
            waits.close()


class AutoPlacement(Placement):
    place = "auto"

    def __init__(self, fn: Callable[[Any], Any], spec: StageSpec) -> None:
        super().__init__(fn, spec)
        self._spec = spec
        self._probe = ThreadPoolExecutor(2, thread_name_prefix=f"conveyor-{spec.name}-probe")
        self._decided: asyncio.Future[Placement | None] | None = None
        self._first: asyncio.Future[None] | None = None  # the first probe call is done
        self._partner: asyncio.Future[Any] | None = None  # the second item, waiting for a third
        self._pair_result: asyncio.Future[Any] | None = None  # the third item's result
        self._failed_probes = 0
        self._first_cpu = float("inf")  # the first probe call's CPU seconds
        self._first_share = 1.0  # the share of a core it got, alone on its thread
        self._blocked: list[float] = []  # each pair's reading (``_side_by_side``)
        self._reprobe: asyncio.Future[None]  # replaced each time a probe call raises
        self.chosen: Placement | None = None
        self.reason = ""
        self.workers = spec.workers  # of the chosen placement (threads, until decided)
        # Told the choice, so the stage can take the inline fast path from then on.
        self.on_decided: Callable[[AutoPlacement], None] | None = None

    async def start(self) -> None:
        self._decided = asyncio.get_running_loop().create_future()
        self._reprobe = asyncio.get_running_loop().create_future()

    async def serve(self) -> None:
        assert self._decided is not None
        chosen = await self._decided
        if chosen is not None:
            await chosen.serve()

    def close(self) -> None:
        if self._decided is not None and not self._decided.done():
            self._decided.set_result(None)  # never decided: no items came
        if self.chosen is not None:
            self.chosen.close()

    async def shutdown(self) -> None:
        await shutdown_executor(self._probe)
        if self.chosen is not None:
            await self.chosen.shutdown()
            self.abandoned = self.chosen.abandoned

    @property
    def restarts(self) -> int:
        return 0 if self.chosen is None else self.chosen.restarts

    async def call(self, value: Any) -> Any:
        assert self._decided is not None
        while True:
            chosen = self.chosen
            if chosen is not None:
                return self.fn(value) if type(chosen) is Placement else await chosen.call(value)
            if self._first is None:  # the first item: timed alone
                return await self._probe_first(value)
            await self._first
            if self.chosen is not None:
                continue
            if self._partner is None:  # the second item: waits for a third, then both run
                return await self._pair(value)
            if not self._partner.done():  # the third: runs beside the second
                self._partner.set_result(value)
                assert self._pair_result is not None
                return await self._pair_result
            # The rest wait for the choice, or for a probe that raised (then one of them
            # takes its place).
            await asyncio.wait((self._decided, self._reprobe), return_when=FIRST_COMPLETED)

    async def _probe_first(self, value: Any) -> Any:
        self._first = first = asyncio.get_running_loop().create_future()
        try:
            result, began, ended, cpu, _ = await self._run(_timed, self.fn, value)
        except Exception:
            await self._probe_raised()  # the next item is the first probe again
            raise
        finally:
            first.set_result(None)
        self._first_cpu = cpu
        if ended > began:
            self._first_share = min(1.0, cpu / (ended - began))
        if cpu < CHEAP_SECONDS:
            await self._decide(Placement(self.fn, self._spec), f"{cpu * 1e6:.0f} µs a call")
        return result

    async def _probe_raised(self) -> None:
        """A probe call raised: it timed nothing. Probe again on later items; after a few
        such items, settle on threads (they suit any plain function)."""
        self._failed_probes += 1
        if self._failed_probes >= _MAX_FAILED_PROBES:
            await self._decide(ThreadPlacement(self.fn, self._spec), "its first calls raised")
        elif self.chosen is None:
            self._first = None if self._partner is None else self._first
            self._partner = None
        self._reprobe.set_result(None)  # wake the waiting items: one takes the probe's place
        self._reprobe = asyncio.get_running_loop().create_future()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await in_thread(loop.run_in_executor(self._probe, fn, *args))

    async def _pair(self, value: Any) -> Any:
        """The second item: wait briefly for a third, time both at once, decide."""
        loop = asyncio.get_running_loop()
        self._partner = partner = loop.create_future()
        self._pair_result = paired = loop.create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_PARTNER_WAIT):
                await asyncio.shield(partner)
        # Asked, not assumed from the timeout: a third item may have handed its value over
        # after the timeout fired and before this resumed. It then waits for the pair's
        # answer, so it must get one (taken as "alone", it hung for ever).
        if not partner.done():
            partner.cancel()
        if partner.cancelled():
            try:
                result, _, _, cpu, _ = await self._run(_timed, self.fn, value)
            except Exception:
                await self._probe_raised()
                raise
            await self._decide(*self._heavy(cpu, releases=None))
            return result
        other = partner.result()
        # Both calls begin together: the second probe thread may still be starting.
        start = threading.Barrier(2, timeout=_PAIR_START)
        both: tuple[Timed | BaseException, Timed | BaseException] = await asyncio.gather(
            self._run(_timed, self.fn, value, start),
            self._run(_timed, self.fn, other, start),
            return_exceptions=True,
        )
        mine, theirs = both
        if isinstance(theirs, BaseException):
            paired.set_exception(theirs)
        else:
            paired.set_result(theirs[0])
        if isinstance(mine, BaseException) or isinstance(theirs, BaseException):
            await self._probe_raised()
            if isinstance(mine, BaseException):
                raise mine
            return mine[0]
        cpu = mine[3] + theirs[3]
        blocked = self._side_by_side(mine, theirs)
        self._blocked.append(blocked)
        unclear = BLOCKED_CLEARLY_NOT <= blocked <= BLOCKED_CLEARLY
        if unclear and len(self._blocked) < _MAX_PAIRS:
            # Unclear (the cores are busy with other work): another pair, on the next
            # two items; then the pairs' mean decides.
            self._partner = None
            self._reprobe.set_result(None)  # wake a waiting item: it begins the next pair
            self._reprobe = loop.create_future()
            return mine[0]
        if unclear:
            blocked = sum(self._blocked) / len(self._blocked)
        await self._decide(*self._heavy(cpu / 2, releases=blocked < BLOCKED_SIDE_BY_SIDE))
        return mine[0]

    def _side_by_side(self, mine: Timed, theirs: Timed) -> float:
        """How much two calls that began together were *blocked*, as a share of the
        pair's time: about none when they ran side by side (the function lets the GIL
        go), about half or more when one waited for the other (it holds it).

        From the moment both were at the barrier, a call's wall time is its CPU time, the
        time it waited for a core (``ThreadWaits``: Linux) and the time it was blocked: on
        the GIL, for a function that holds it. Waiting for a core is not being blocked, so
        the reading holds when every core is busy with other work (wall against CPU time
        alone did not: side-by-side calls then looked like turns). More CPU time than
        wall time settles it at once (0.0). Without the waits, each call's wall time is
        first scaled by the share of a core the first call got alone."""
        together = max(mine[1], theirs[1])  # when the last one came to the barrier
        span = max(mine[2], theirs[2]) - together
        cpu = mine[3] + theirs[3]
        if span <= 0 or cpu <= 0:
            return 1.0
        if cpu > OVERLAPPED * span:
            return 0.0  # more CPU time than wall time: they ran at once, for sure
        blocked = 0.0
        for _, _, end, used, waited in (mine, theirs):
            wall = end - together
            if waited is None:
                blocked += max(0.0, wall * self._first_share - used)
            else:
                blocked += max(0.0, wall - used - waited)
        return blocked / span

    def _heavy(self, cpu: float, *, releases: bool | None) -> tuple[Placement, str]:
        # The cheapest call measured: a first call often pays for warming caches.
        cpu = min(cpu, self._first_cpu)
        cost = f"{cpu * 1e3:.2f} ms a call"
        if cpu < CHEAP_SECONDS:
            return Placement(self.fn, self._spec), f"{cpu * 1e6:.0f} µs a call"
        if releases:
            return ThreadPlacement(self.fn, self._spec), f"{cost}, lets the GIL go"
        if not gil_enabled():
            return ThreadPlacement(self.fn, self._spec), f"{cost}, no GIL in this interpreter"
        if self._spec.fn_bytes is None:
            return ThreadPlacement(self.fn, self._spec), f"{cost}, cannot be pickled"
        if cpu < PROCESS_SECONDS:
            # Holding the GIL, a thread would only take turns with the loop; and a call this
            # short would pay more to pickle its item to a process than it saves there.
            return Placement(self.fn, self._spec), f"{cost}, holds the GIL, too short for processes"
        # One process per core at most (the stage's worker count was sized for threads).
        spec = dataclasses.replace(self._spec, workers=min(self._spec.workers, _cores()))
        self.workers = spec.workers
        if releases is None:
            return ProcessPlacement(self.fn, spec), f"{cost}, CPU work"
        return ProcessPlacement(self.fn, spec), f"{cost}, holds the GIL"

    async def _decide(self, chosen: Placement, reason: str) -> None:
        assert self._decided is not None
        if self._decided.done():
            return
        await chosen.start()
        if type(chosen) is Placement:
            self.workers = 1  # inline: the loop itself
        self.chosen, self.reason = chosen, reason
        self._decided.set_result(chosen)
        if self.on_decided is not None:
            self.on_decided(self)
