"""``LoopPool``: the parent's side of the loop processes, with ``ProcessPool``'s verbs.

``start()`` starts them (or takes over those started ahead: ``warm.py``) and waits until
each has opened its head; ``serve()`` reads what they send back, one task per loop in one
``TaskGroup``, until ``close()``; ``call(value)`` routes a value; ``shutdown()`` makes
sure every process has exited.

Routing: with ``spread``, a route key's items (a host's URLs) go to every loop, each to
the loop with the fewest of that key's items out (then the fewest items out in all), so
one busy host keeps every loop busy, each loop holding its part of the host's limits
(``ServiceFactory.share``); what a loop's service tells its peers (a host's pause:
``ports.Peered``) is relayed to the other loops at once. Without it, each key has one
loop, by a stable hash of the key (``routing.route_index``).

Items travel in batches over a socket pair: everything routed in one turn of the
parent's loop goes in one message, and each loop answers likewise (``messages.py``).

With shared slots, the parent keeps out the slots and the items in transit
(``fold.in_transit``), and as many more as the loops say are parked in their services
(waiting on a held host: ``("parked", n)``); the items beyond wait here, in the order
they came, and are routed as room comes back. Sent all at once (up to the first stage's
waiting room), they waited in the loops' queues, and the loops spent ~15% more CPU a
page for it (64 hosts, nginx, 2 loops: 0.128 against 0.108 ms).

A loop process that dies fails nothing at once: its ``serve`` task gives its slots back
(``slots.py``), starts a replacement and sends it the items the dead one held; an item
whose loop died under it ``MAX_CRASHES`` times fails with kind ``worker-crashed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import pickle
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..._errors import NotPicklableError, UsageError, WorkerCrashed
from ..guard import UNGUARDED_EXIT, refuse_in_bootstrap, unguarded_message
from ..ports import StageReport
from ..routing import route_index
from ..spec import StageSpec
from .fold import (
    capacity,
    in_transit,
    loop_heads,
    loop_seats,
    loop_workers,
    shared_budget,
    spread,
)
from .messages import FAILED, Init, frame, read_message
from .slots import SharedSlots
from .warm import Started, WarmLoops, spawn_context, spawn_loop

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

MAX_CRASHES = 2
_START_TIMEOUT = 60.0
_CLOSE_GRACE = 5.0  # seconds loops get to finish and exit after close() before a kill


@dataclass(slots=True)
class _Pending:
    value: Any
    future: asyncio.Future[Any]
    crashes: int = 0
    key: Any = None  # its route key, when spread (counted in ``LoopPool._out``)


@dataclass(slots=True)
class _Loop:
    index: int
    process: BaseProcess | None = None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    ready: bool = False
    pending: dict[int, _Pending] = field(default_factory=dict)
    outgoing: list[tuple[int, Any]] = field(default_factory=list)
    dead: str | None = None  # why it could not be replaced


class LoopPool:
    """One loop process per head in ``heads`` (each a tuple of stage specs: loop ``i``
    runs ``heads[i]`` with ``workers[i]`` worker tasks); ``call(value)`` routes one value
    by ``route(value)`` and returns what that loop's head made of it.

    Args:
        capacity: the most items the caller has out at once, in all loops (each loop's
            queue is bounded by it).
        seats: each loop's waiting room before any item parks (``fold.loop_seats``);
            None: its workers.
        ahead: the items out at most (beyond those the loops say are parked), the rest
            waiting here; None: ``capacity``.
        shared: the slots the heads' services share (``slots.py``), or None.
        warm: loop processes started ahead, taken over if they fit.
        spread: send a route key's items to every loop (``fold.spread``), not to one.
    """

    def __init__(
        self,
        heads: list[tuple[StageSpec, ...]],
        *,
        workers: tuple[int, ...],
        capacity: int,
        seats: tuple[int, ...] | None = None,
        ahead: int | None = None,
        route: Callable[[Any], str],
        shared: int | None = None,
        warm: WarmLoops | None = None,
        spread: bool = False,
    ) -> None:
        try:
            self._heads = [pickle.dumps(head) for head in heads]
        except Exception as exc:
            names = ", ".join(spec.name for spec in heads[0])
            raise NotPicklableError(
                f"stages {names} cannot be sent to loop processes ({exc}); define their "
                "functions with `def` at module level, or run with loops=1"
            ) from None
        self._workers = workers
        self._seats = seats or workers
        self._capacity = capacity
        self._route = route
        self._shared = shared
        self._warm = warm
        self._ctx: Any = None
        self._slots: SharedSlots | None = None
        self._loops = [_Loop(i) for i in range(len(heads))]
        self._next_id = 0
        self._flush_scheduled = False
        self._closing = False
        self._kill_later: asyncio.TimerHandle | None = None
        self.restarts = 0  # loop processes replaced after dying
        # Told how many retries the first stage's service made for results that came back
        # (``Service.attempts``); failures carry their own attempts.
        self.on_retries: Callable[[int], None] | None = None
        self._reports: dict[int, StageReport] = {}  # each loop's latest
        self._spread = spread
        # Spread: each route key's items out, per loop; a key leaves when none are.
        self._out: dict[Any, list[int]] = {}
        self._held = 0  # slots taken here for items out elsewhere (``hold_slots``)
        # Items out in the loops at most, beyond those parked there (each loop's latest
        # word), and the items waiting here for room, with their futures.
        self._ahead = capacity if ahead is None else ahead
        self._parked = [0] * len(heads)
        self._backlog: deque[tuple[int, Any, asyncio.Future[Any]]] = deque()

    @classmethod
    def for_head(cls, spec: StageSpec, warm: WarmLoops | None = None) -> LoopPool:
        """The pool for a head folded by ``fold_head`` (``spec.place == "loops"``)."""
        return cls(
            loop_heads(spec),
            workers=loop_workers(spec),
            seats=loop_seats(spec),
            capacity=capacity(spec),
            ahead=_ahead(spec),
            route=spec.route or str,
            shared=shared_budget(spec),
            warm=warm,
            spread=spread(spec),
        )

    async def start(self) -> None:
        refuse_in_bootstrap()  # an unguarded script, re-run inside a loop: see guard.py
        self._ctx = spawn_context()
        taken = None if self._warm is None else self._warm.take(len(self._loops), self._shared)
        ahead: Started = []
        if taken is not None:
            ahead, self._slots = taken
        elif self._shared is not None:
            self._slots = SharedSlots(self._ctx, self._shared, len(self._loops))
        try:
            async with asyncio.TaskGroup() as group:
                for loop in self._loops:
                    started = ahead[loop.index] if ahead else None
                    group.create_task(self._start(loop, started))
        except BaseException as exc:  # one could not start, or the run was cancelled
            self._kill()  # the ones that did start
            if isinstance(exc, BaseExceptionGroup):
                raise _first(exc) from None
            raise

    async def _start(
        self, loop: _Loop, started: tuple[BaseProcess, socket.socket] | None = None
    ) -> None:
        if started is not None:
            process, parent_end = started
        else:
            process, parent_end, child_end = spawn_loop(self._ctx, loop.index, self._slots, ())
            loop.process = process  # from now on a kill (a failed start, shutdown) reaches it
            with child_end:  # open until the child has it
                await asyncio.to_thread(process.start)
        loop.process = process
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        loop.writer = writer
        index = loop.index
        init = Init(self._heads[index], self._workers[index], self._capacity, self._seats[index])
        writer.write(frame(init))
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                tag, detail = await read_message(reader)
        except TimeoutError:
            tag, detail = "init-error", f"it did not answer within {_START_TIMEOUT:.0f} s"
        except (asyncio.IncompleteReadError, ConnectionError):  # it is exiting, or has
            code = await asyncio.to_thread(_exit_code, process)
            tag, detail = "init-error", f"it exited with code {code}"
            if code == UNGUARDED_EXIT:
                detail = unguarded_message("loop process")
        if tag != "ready":
            process.kill()
            writer.close()
            raise UsageError(f"loop process {loop.index} could not start: {detail}")
        loop.reader, loop.ready = reader, True
        if loop.pending:  # what its predecessor held, and what came while it started
            loop.outgoing = [(ident, p.value) for ident, p in loop.pending.items()]
            self._schedule_flush()

    # -- calls ----------------------------------------------------------------------------

    def call(self, value: Any) -> asyncio.Future[Any]:
        """Send ``value`` to its loop; the future holds the head's result (or raises)."""
        ident = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._backlog or self._room_left() <= 0:
            self._backlog.append((ident, value, future))
        else:
            self._send(ident, value, future)
        return future

    def _send(self, ident: int, value: Any, future: asyncio.Future[Any]) -> None:
        key = self._route(value)
        if self._spread:
            loop = self._least_busy(key)
        else:
            loop = self._loops[route_index(key, len(self._loops))]
        if loop.dead is not None:
            future.set_exception(WorkerCrashed(loop.dead))
            return
        if self._spread:
            self._out[key][loop.index] += 1
            loop.pending[ident] = _Pending(value, future, 0, key)
        else:
            loop.pending[ident] = _Pending(value, future)
        loop.outgoing.append((ident, value))
        self._schedule_flush()

    def _send_backlog(self) -> None:
        """Send the items waiting here, as far as there is room in the loops now."""
        backlog = self._backlog
        room = self._room_left()
        while backlog and room > 0:
            ident, value, future = backlog.popleft()
            if not future.done():  # (cancelled while it waited: nothing to send)
                self._send(ident, value, future)
                room -= 1

    def _room_left(self) -> int:
        """Items the loops have room for now: ``ahead`` and those parked there, less those
        out (a dead loop's, kept to be sent again, count)."""
        out = sum(len(loop.pending) for loop in self._loops)
        return self._ahead + sum(self._parked) - out

    def _least_busy(self, key: Any) -> _Loop:
        """The loop with the fewest of ``key``'s items out, then the fewest in all (so
        keys with an item or two out at a time are spread too); a dead one last."""
        counts = self._out.get(key)
        if counts is None:
            counts = self._out[key] = [0] * len(self._loops)
        best = None
        for loop in self._loops:
            if loop.dead is not None:
                continue
            if (
                best is None
                or counts[loop.index] < counts[best.index]
                or (
                    counts[loop.index] == counts[best.index]
                    and len(loop.pending) < len(best.pending)
                )
            ):
                best = loop
        return best if best is not None else self._loops[0]

    def _settled(self, loop: _Loop, entry: _Pending) -> None:
        """An item left ``loop`` (answered, or failed with it): count it out of its key."""
        counts = self._out.get(entry.key)
        if counts is not None:
            counts[loop.index] -= 1
            if not any(counts):
                del self._out[entry.key]

    def hold_slots(self, count: int) -> int:
        """Take up to ``count`` of the shared slots now, for items out elsewhere (on the
        run's own loop, before the head moved here: ``grow.py``); how many were taken.
        Each goes back with ``give_slot``."""
        taken = 0
        if self._slots is not None:
            while taken < count and self._slots.take_nowait():
                taken += 1
        self._held += taken
        return taken

    @property
    def held_slots(self) -> int:
        """The shared slots ``hold_slots`` took and not yet given back."""
        return self._held

    def give_slot(self) -> None:
        """Give back one slot ``hold_slots`` took."""
        if self._held > 0 and self._slots is not None:
            self._held -= 1
            self._slots.give()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for loop in self._loops:
            if loop.outgoing and loop.writer is not None and loop.ready:
                batch, loop.outgoing = loop.outgoing, []
                loop.writer.write(frame(batch))

    # -- serving --------------------------------------------------------------------------

    async def serve(self) -> None:
        """Take in what every loop sends back until ``close()``, replacing a loop that
        dies; run this as a task of the stage."""
        async with asyncio.TaskGroup() as group:
            for loop in self._loops:
                group.create_task(self._tend(loop), name=f"conveyor loop {loop.index} reader")

    async def _tend(self, loop: _Loop) -> None:
        while loop.reader is not None:
            await self._read(loop, loop.reader)
            if self._closing:
                return
            await self._replace(loop)

    async def _read(self, loop: _Loop, reader: asyncio.StreamReader) -> None:
        """Settle the futures of what ``loop`` sends back, until its socket closes."""
        pending = loop.pending
        try:
            while True:
                retries = 0
                message = await read_message(reader)
                if type(message) is tuple:  # ("report" | "notice" | "parked", ...)
                    tag, payload = message
                    if tag == "report":
                        self._reports[loop.index] = payload
                    elif tag == "parked":
                        self._parked[loop.index] = payload
                        self._send_backlog()
                    else:
                        self._relay(loop, payload)
                    continue
                for ident, status, payload, retried in message:
                    entry = pending.pop(ident, None)
                    if entry is None:
                        continue
                    if entry.key is not None:
                        self._settled(loop, entry)
                    if entry.future.done():
                        continue
                    if status == FAILED:
                        entry.future.set_exception(payload)
                    else:
                        retries += retried
                        entry.future.set_result(payload)
                if retries and self.on_retries is not None:
                    self.on_retries(retries)
                if self._backlog:
                    self._send_backlog()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def tell(self, notice: Any) -> None:
        """A notice from the run (``ports.WindDown``) to every loop's service, at once."""
        if self._closing:
            return
        data = frame(("notice", notice))
        for loop in self._loops:
            if loop.writer is not None and loop.ready:
                loop.writer.write(data)

    def _relay(self, source: _Loop, notice: Any) -> None:
        """What ``source``'s service told its peers (``ports.Peered``), to every other
        loop, at once."""
        if self._closing:
            return  # the loops are finishing: nothing more is sent to them
        data = frame(("notice", notice))
        for loop in self._loops:
            if loop is not source and loop.writer is not None and loop.ready:
                loop.writer.write(data)

    async def _replace(self, loop: _Loop) -> None:
        """The loop process died: fail what it broke too often, start another for the rest."""
        loop.ready = False
        loop.reader = None
        code = loop.process.exitcode if loop.process is not None else None
        if loop.writer is not None:
            loop.writer.close()
        loop.writer = None
        loop.outgoing.clear()
        self._parked[loop.index] = 0  # its items start again, unparked
        for ident, entry in list(loop.pending.items()):
            entry.crashes += 1
            if entry.crashes >= MAX_CRASHES:
                del loop.pending[ident]
                if entry.key is not None:
                    self._settled(loop, entry)
                if not entry.future.done():
                    entry.future.set_exception(
                        WorkerCrashed(
                            f"loop process {loop.index} died (exit code {code}) while holding "
                            f"this item, {entry.crashes} times"
                        )
                    )
        self.restarts += 1
        if loop.process is not None and self._slots is not None:
            # Its slots go back once it is surely gone (its socket closed as it died).
            await asyncio.to_thread(_reap, loop.process)
            self._slots.reclaim(loop.index)
        try:
            await self._start(loop)
        except UsageError as exc:  # no replacement: what it held, and what comes, fails
            loop.dead = str(exc)
            for entry in loop.pending.values():
                if entry.key is not None:
                    self._settled(loop, entry)
                if not entry.future.done():
                    entry.future.set_exception(WorkerCrashed(loop.dead))
            loop.pending.clear()
        self._send_backlog()

    def report(self) -> StageReport | None:
        """The loops' latest reports as one (``StageReport.merge``), or None before any."""
        # A service may have nothing to say (``Service.report`` is None).
        reports = [report for report in self._reports.values() if report is not None]
        return functools.reduce(lambda a, b: a.merge(b), reports) if reports else None

    # -- the end --------------------------------------------------------------------------

    def close(self) -> None:
        """No more items: every loop finishes and exits, and ``serve`` returns. With items
        still in flight (the run was cancelled), they are killed instead."""
        if self._closing:
            return
        self._closing = True
        if any(loop.pending for loop in self._loops):
            self._kill()
            return
        self._flush()
        for loop in self._loops:
            if loop.writer is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    loop.writer.write(frame(None))
        # A loop that does not finish (a head stuck in a call) is ended after a while.
        self._kill_later = asyncio.get_running_loop().call_later(_CLOSE_GRACE, self._kill)

    async def shutdown(self) -> None:
        """Make sure every loop process has exited (after ``serve``, or instead of it);
        end those started ahead for it if it never started."""
        if self._ctx is None and self._warm is not None:
            await asyncio.to_thread(self._warm.close)
        self._closing = True
        if self._kill_later is None:
            self._kill()  # never closed: started, perhaps, but not to be served
        await asyncio.to_thread(self._join, _CLOSE_GRACE)
        if self._kill_later is not None:
            self._kill_later.cancel()
        self._kill()
        await asyncio.to_thread(self._join, _CLOSE_GRACE)

    def _kill(self) -> None:
        for loop in self._loops:
            if loop.process is not None and loop.process.is_alive():
                loop.process.kill()
            if loop.writer is not None:
                loop.writer.close()
            for entry in loop.pending.values():
                if not entry.future.done():
                    entry.future.cancel()
        for _, _, future in self._backlog:
            future.cancel()
        self._backlog.clear()

    def _join(self, timeout: float) -> None:
        for loop in self._loops:
            if loop.process is not None and loop.process.pid is not None:  # started
                loop.process.join(timeout)


def _ahead(spec: StageSpec) -> int:
    """The items a folded head keeps out in its loops while none is parked there: the
    shared slots and the items in transit (``fold.capacity`` adds the first stage's
    waiting room, for items parked in the loops' services)."""
    first = spec.remote[0]
    budget = shared_budget(spec)
    return capacity(spec) if budget is None else budget + in_transit(first)


def _exit_code(process: BaseProcess) -> int | None:
    """The exit code of a process that closed its socket: it is exiting, or has."""
    process.join(_CLOSE_GRACE)
    return process.exitcode


def _reap(process: BaseProcess) -> None:
    """Wait for a dying loop process to be gone; kill it if it lingers."""
    process.join(5.0)
    if process.is_alive():
        process.kill()
        process.join()


def _first(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a failed start: the first that is not a cancellation."""
    leaves = [e for e in errors.exceptions if not isinstance(e, asyncio.CancelledError)]
    return leaves[0] if leaves else errors
