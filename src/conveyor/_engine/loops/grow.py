"""``loops="auto"``: the head starts on the run's own loop and moves to loop processes
once that loop is CPU-bound.

A job that waits on its servers (100 ms answers, say) does best on one loop: more loops
would cost their start-up and a hand-off per item and buy nothing. A job that keeps its
loop busy (fast servers, pages to scan) goes faster on one loop per core. Which one a
job is, its input does not say; its first second does. So ``GrowingLoops`` runs the
head -- the first stage's service, opened here, and the plain maps after it -- right on
the run's loop, as a one-loop run would, and looks at the loop's thread every tenth of a
second (``measure.py``). At the first look that finds it CPU-bound the loop processes
start (~0.3 s); once four looks in a row have, they take every item from then on.

A bound loop is not always one that more loops would speed up: at 500 requests out to
servers that answer in 100 ms, the run's loop on a busy 2-core machine reads bound at
times, yet each answer is read only a few ms late, and a move cost 0.4-0.5 s (loop
processes started, connections opened again, hosts drained). So a look counts only if
the head's own calls show the lag (``ports.Timed``: the mean call at least ``SLOWER``
times the fastest, as for a fetch from nginx on a bound loop, ~10 ms against 0.3; or the
fastest within ``LAG_CALLS`` times the loop's lateness, measured by timer wake-ups, as
when every call is one turn of the loop); a head that does not time its calls is judged
by its loop alone. Before the move the run's loop seats the stage's workers as one loop
does (``room.py``); the room opens at the move.

The move keeps the limits whole. Items already out here finish here, but for those that
have sent nothing (a fetch's waiting room: items waiting on a held host or a slot),
which the service here lets go at the move and which go to the loop processes; a later
item of a
route key (a host) that still has items out here waits until they are done, so a host
never has requests out from here and from a loop process at once; an item let go while
its host is held back here (a site's pause, its breaker) waits that out before it goes,
and keeps the host's later items waiting too, since the loop processes never heard of
it. The shared
concurrency slots are taken here for the items still out here (as many as there are, up
to the budget: items of a waiting room have nothing sent), and given back one by one as
fewer items than that are left, so ``concurrency`` holds across the move.

What the service here learnt of its keys (``ports.Learns``: a fetch's per-host limits,
and the levels and rates its sites refused) is told to the loop processes' services
before their first item: a host does not start again from one request out (a slow start
of three round trips, ~0.3 s at 100 ms answers, paid a second time) nor forget what its
site refused.

The move happens once; a run does not move back (its loop processes cost nothing while
it waits). A pause that no item waits out any more stays here: a move comes within the
first seconds of a CPU-bound run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from ..._errors import Deferred
from ..outcomes import RemoteFailure, original
from ..placement import Placement
from ..ports import STOPPED, HeldReport, Learns, Peered, StageReport, Timed, WindDown
from ..room import room_for
from ..spec import StageSpec
from .fold import in_transit
from .head import Head
from .measure import WINDOW, Demand, demand_clock
from .pool import LoopPool

if TYPE_CHECKING:
    from .warm import WarmLoops

# A look counts as bound only if the head's calls show the loop's lag (``ports.Timed``):
# the mean call this many times the fastest ...
SLOWER = 1.4
# ... or the fastest call within this many of the loop's mean wake-up lateness (half a
# turn of the loop): a call that is mostly the loop's turn, even if every call is.
LAG_CALLS = 4
LOOKS = 10  # wake-ups a window, to measure that lateness


class GrowingLoops(Placement):
    """The head of a pipeline (``fold_head(..., measured=True)``) on this loop until it is
    CPU-bound, then on ``spec.workers`` loop processes."""

    place = "loops"

    def __init__(
        self, fn: Callable[[Any], Any], spec: StageSpec, warm: WarmLoops | None = None
    ) -> None:
        super().__init__(fn, spec)
        self._spec = spec
        self.pool = LoopPool.for_head(spec, warm)
        self._route = spec.route or str
        self._stack = AsyncExitStack()
        self._head: Head | None = None  # opened by ``start``
        self._local: dict[int, Any] = {}  # items out on this loop, by a number of their own
        self._next = 0
        self._moved = False
        self._closing = False
        self._stopping = False  # the run was stopped (``tell``): nothing is handed over
        self._stopped = asyncio.Event()  # set with it, for the items holding out
        self._closed: asyncio.Future[None] | None = None
        # After the move: route keys with items still out here, and the later items of
        # those keys, waiting for them (each a future set when its key is clear).
        self._draining: Counter[Any] = Counter()
        self._waiting: dict[Any, list[asyncio.Future[None]]] = {}
        self.demand = Demand()
        self.moved_after: float | None = None  # seconds into the stage when it moved

    async def start(self) -> None:
        self._closed = asyncio.get_running_loop().create_future()
        # The first stage's service, whole (unshared, unbound): this loop is all there is.
        self._head = await Head.open(self._spec.remote, None, self._stack)
        # As on one loop, workers beyond the slots take items only while items wait on
        # their keys inside the service (``room.py``). Let loose, 1,024 more items each
        # waited in the service for a slot the finishing one handed over: the latency
        # job (500 requests out, 100 ms answers) took 0.45 s longer than on one loop.
        self.room = room_for(
            self._head.service, self._spec.remote[0].budget, self._spec.concurrency
        )
        if self.counters is not None:
            self.counters.workers = 1
            self.counters.reason = "one loop until it is CPU-bound"
            self.pool.on_retries = self._count_retries

    # -- calls ----------------------------------------------------------------------------

    def call(self, value: Any) -> Any:  # an awaitable: a coroutine here, a future there
        if not self._moved:
            return self._here(value)
        if self._draining and self._route(value) in self._draining:
            return self._after_drain(value)
        return self.pool.call(value)

    async def _here(self, value: Any) -> Any:
        """The head, on this loop: as a loop process runs it (``head.py``)."""
        ident = self._next
        self._next += 1
        self._local[ident] = value
        let_go = False
        try:
            assert self._head is not None, "started before any item"
            result, retries = await self._head.run(value)
            self._count_retries(retries)
            return result
        except RemoteFailure as failure:
            if not self._handed_over(failure):
                raise
            let_go, given_up = True, failure
        finally:
            del self._local[ident]
            if self._moved:
                self._slot_back()
                if not let_go:
                    self._key_done(value)
        # Waiting here with nothing sent when the head moved: it goes where every item
        # goes now, once what holds its key back here is over (its key still counted as
        # out here meanwhile, so the key's later items wait too).
        try:
            await self._hold_out(value)
        finally:
            self._key_done(value)
        if self._stopping:  # the run stopped meanwhile: left for the next run
            raise given_up
        return await self.call(value)

    async def _hold_out(self, value: Any) -> None:
        """Wait out what holds the item's key back here (its site's pause, its open
        breaker: ``ports.HeldReport``) before it goes: the loop processes never heard of
        it, and would send at once."""
        service = None if self._head is None else self._head.service
        report = None if service is None else service.report()
        if isinstance(report, HeldReport):
            held = report.held.get(self._route(value))
            if held is not None and held[1] > 0:
                # Or until the run stops (``tell``): the item has sent nothing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), held[1])

    def _handed_over(self, failure: RemoteFailure) -> bool:
        """Whether the service here gave the item up at the move (``_move``), not at
        the run's stop: it has sent nothing, and the loop processes take it."""
        raised = original(failure)
        return (
            self._moved
            and not self._stopping
            and isinstance(raised, Deferred)
            and raised.reason == STOPPED
        )

    def _slot_back(self) -> None:
        """An item that was out here when the head moved is no longer: the slots held for
        this loop cover its requests out, at most one per item here and at most the
        budget (the service here holds that many). With a waiting room more items than
        slots may be out here, most with nothing sent: a slot goes back only once fewer
        items than slots held are left."""
        if len(self._local) < self.pool.held_slots:
            self.pool.give_slot()

    def _key_done(self, value: Any) -> None:
        """An item that was out here when the head moved has finished here (or gone on):
        its key's later items may go to the loop processes once none is left here."""
        key = self._route(value)
        self._draining[key] -= 1
        if self._draining[key] <= 0:
            del self._draining[key]
            for turn in self._waiting.pop(key, ()):
                if not turn.done():
                    turn.set_result(None)

    async def _after_drain(self, value: Any) -> Any:
        """An item whose key still has items out here: it waits for them, then moves."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(self._route(value), []).append(turn)
        await turn
        return await self.pool.call(value)

    def _count_retries(self, retries: int) -> None:
        if retries and self.counters is not None:
            self.counters.retried += retries

    # -- measuring, and the move ----------------------------------------------------------

    async def serve(self) -> None:
        """Look at this loop every ``WINDOW`` until it has been CPU-bound for
        ``measure.WINDOWS`` looks in a row, then move; or until the stage ends. The loop
        processes start at the first bound look (a start takes ~0.3 s), so they are
        ready when the next one confirms it."""
        assert self._closed is not None
        loop = asyncio.get_running_loop()
        clock = demand_clock()
        began = loop.time()
        calls = self._next
        self.demand.sample(began, clock(), working=False)  # where the first window begins
        starting: asyncio.Task[None] | None = None
        async with asyncio.TaskGroup() as group:  # owns the early start
            while True:
                late = await self._window(loop)
                if late is None:
                    if starting is not None:
                        starting.cancel()  # LoopPool.start ends what it started
                    return
                # A window counts when items ran in it: a bound loop with none is not ours.
                working, calls = self._next != calls or bool(self._local), self._next
                working = self._lag_shows(late) and working
                bound = self.demand.sample(loop.time(), clock(), working=working)
                if starting is None and self.demand.leaning:
                    starting = group.create_task(self.pool.start())
                    started = loop.time()
                if bound:
                    break
            assert starting is not None
            await starting
        self.moved_after = loop.time() - began
        self._move(loop.time() - started)
        if self._closing:  # the items ended while the loop processes started
            self.pool.close()
        await self.pool.serve()

    async def _window(self, loop: asyncio.AbstractEventLoop) -> float | None:
        """Wait one ``WINDOW`` in steps of a ``LOOKS``-th of it; the mean lateness of
        their wake-ups (about half a turn of this loop), or None once the stage has ended.
        A window ends at its time, however late a wake-up was."""
        assert self._closed is not None
        end = loop.time() + WINDOW
        late, looks = 0.0, 0
        while (now := loop.time()) < end:
            due = min(now + WINDOW / LOOKS, end)
            done, _ = await asyncio.wait((self._closed,), timeout=due - now)
            if done:
                return None
            late += max(0.0, loop.time() - due)
            looks += 1
        return late / looks if looks else 0.0

    def _lag_shows(self, late: float) -> bool:
        """Whether the head's calls since the last look show this loop's lag
        (``ports.Timed``): their mean at least ``SLOWER`` times the fastest, or the
        fastest within ``LAG_CALLS`` times the loop's ``late`` wake-ups (a call that is
        mostly a turn of the loop, however even). True for a head that does not time its
        calls, or when none ended."""
        service = None if self._head is None else self._head.service
        if not isinstance(service, Timed):
            return True
        times = service.call_times()
        return (
            times is None
            or times.mean >= SLOWER * times.fastest
            or times.fastest <= LAG_CALLS * late
        )

    def _move(self, start_seconds: float) -> None:
        """From now on items go to the loop processes; those out here finish here."""
        self._draining = Counter(self._route(value) for value in self._local.values())
        self.pool.hold_slots(len(self._local))  # none when the parent keeps the budget
        service = None if self._head is None else self._head.service
        if isinstance(service, Learns):
            learnt = service.learnt()
            if learnt is not None:  # told before any item goes: each socket keeps order
                self.pool.tell(learnt)
        self._moved = True
        # The items here that have sent nothing (a fetch's waiting room: items waiting on
        # a held host or a slot) would wait, then run, on this CPU-bound loop: the
        # service here lets them go as at a stop, and ``_here`` sends them on.
        if isinstance(service, Peered):
            service.hear(WindDown("stop", 0.0))
        # Items that wait in the loop processes while they travel (``fold.in_transit``):
        # on this loop they would only have waited, so the stage runs them from now on.
        if self.more_workers is not None:
            self.more_workers(in_transit(self._spec.remote[0]))
        if self.room is not None:
            self.room.open()  # every worker in: the items go to the loop processes now
        if self.counters is not None:
            self.counters.workers = self._spec.workers
            self.counters.reason = (
                f"moved to {self._spec.workers} loop processes after "
                f"{self.moved_after or 0:.1f} s: its loop was CPU-bound "
                f"({self.demand.share:.0%} of a core); they took {start_seconds:.2f} s to start"
            )

    def report(self) -> StageReport | None:
        service = None if self._head is None else self._head.service
        here = service.report() if service is not None else None
        there = self.pool.report()
        if here is None or there is None:
            return here or there
        return here.merge(there)

    def tell(self, notice: Any) -> None:
        if isinstance(notice, WindDown) and notice.reason == "stop":
            self._stopping = True
            self._stopped.set()
        service = None if self._head is None else self._head.service
        if isinstance(service, Peered):
            service.hear(notice)
        self.pool.tell(notice)

    @property
    def restarts(self) -> int:
        return self.pool.restarts

    # -- the end --------------------------------------------------------------------------

    def close(self) -> None:
        self._closing = True
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._moved:
            self.pool.close()

    async def shutdown(self) -> None:
        try:
            await self.pool.shutdown()
        finally:
            await self._stack.aclose()
