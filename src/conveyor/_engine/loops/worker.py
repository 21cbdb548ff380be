"""The code inside one loop process: the head of a pipeline on an event loop of its own.

The parent (``pool.py``) sends batches of ``(id, value)``; this process runs each value
through the head's stages (an async first stage, such as the fetch, whose function may
come from a per-run service; then cheap plain maps) with ``workers`` worker tasks, and
sends back batches of outcomes and, a few times a second, the service's report
(``messages.py``). Batches form naturally: everything that finished in one turn of the
loop goes in one message. A service that tells its peers (``ports.Peered``: a host's
pause, when hosts are spread over the loops) has it sent at once, and hears theirs.

A service that parks items (``ports.Parks``: a fetch's requests waiting on a held host)
gets a waiting room (``room.py``): its seats are this loop's part of the shared slots
(``Init.seats``, ``fold.loop_seats``), and workers beyond them take items only while
items wait on their hosts there. How many wait so is told to the parent as it changes
(``("parked", n)``), which keeps that many items more out here.

A service that hears (``ports.Peered``) is told whether this loop is CPU-bound
(``ports.LoopBound``, measured every ``measure.WINDOW``): the latency it measures is then
partly this loop's own lag.

Every task here belongs to one ``TaskGroup``: the worker tasks, the report ticker and
the load's. The queue between the socket and the workers (a ``Channel``) is bounded by what the
parent may have out (``Init.capacity``), so it never fills; were it to, reading from the
socket would wait.

When the parent's end of the socket closes (it exited, or was killed), this process ends
too: no loop process outlives its parent.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pickle
import signal
import socket
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from ..channel import Channel
from ..gc_pause import fewer_collections
from ..outcomes import RemoteFailure
from ..ports import Budget, LoopBound, Peered, Service
from ..room import Room, room_for
from .head import Head
from .measure import WINDOW, Demand, demand_clock
from .messages import FAILED, OK, Init, frame, read_message

REPORT_EVERY = 0.25  # seconds between two ("report", ...) messages


def loop_main(
    sock: socket.socket, budget: Budget | None = None, modules: tuple[str, ...] = ()
) -> None:
    """The loop process's entry point (``multiprocessing`` spawns it). The first message
    on ``sock`` is ``Init``; ``modules`` are imported before it comes, so a process
    started ahead of its run (``warm.py``) is ready sooner."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    for module in modules:
        importlib.import_module(module)
    with fewer_collections():  # as in the parent's run: see gc_pause.py
        try:
            import uvloop

            uvloop.run(_serve(sock, budget))
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            asyncio.run(_serve(sock, budget))


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the parent dies, even mid-call."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # pragma: no cover - the socket's EOF still ends us
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


async def _serve(sock: socket.socket, budget: Budget | None) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        init: Init = await read_message(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # started ahead for a run that never came
    async with AsyncExitStack() as stack:
        try:
            head = await Head.open(pickle.loads(init.head), budget, stack)
        except Exception as exc:
            writer.write(frame(("init-error", f"{type(exc).__name__}: {exc}")))
            await writer.drain()
            return
        writer.write(frame(("ready", None)))
        outbox = _Outbox(writer)
        queue: Channel[tuple[int, Any] | None] = Channel(init.capacity)
        service = head.service
        peered = service if isinstance(service, Peered) else None
        if peered is not None:
            peered.join(_Peers(writer))
        room = room_for(service, init.seats, init.workers)
        if room is not None:
            room.on_change = _ParkedTeller(room, writer).changed
        async with asyncio.TaskGroup() as group:
            tickers = [] if service is None else [group.create_task(_tell(service, writer))]
            if peered is not None:
                tickers.append(group.create_task(_tell_bound(peered)))
            async with asyncio.TaskGroup() as workers:
                for _ in range(init.workers):
                    workers.create_task(_work(queue, head, outbox, room))
                await _receive(reader, queue, peered)
                if room is not None:
                    room.open()  # every worker must take its end
                for _ in range(init.workers):
                    await queue.put(None)
            for ticker in tickers:
                ticker.cancel()
        if service is not None:  # the last word, after the last item
            writer.write(frame(("report", service.report())))
        await outbox.drain()
    writer.close()


async def _tell(service: Service, writer: asyncio.StreamWriter) -> None:
    """Send ``("report", service.report())`` a few times a second (progress, hints)."""
    while True:
        await asyncio.sleep(REPORT_EVERY)
        writer.write(frame(("report", service.report())))


async def _tell_bound(service: Peered) -> None:
    """Tell the service whether this loop is CPU-bound (``ports.LoopBound``), as it
    changes: bound after two bound windows in a row (``measure.py``), unbound at the
    first that is not."""
    clock = demand_clock()
    demand = Demand(windows=2)
    demand.sample(time.monotonic(), clock(), working=False)  # where the first one begins
    bound = False
    while True:
        await asyncio.sleep(WINDOW)
        now_bound = demand.sample(time.monotonic(), clock())
        if now_bound != bound:
            bound = now_bound
            service.hear(LoopBound(bound))


async def _receive(
    reader: asyncio.StreamReader, queue: Channel[Any], peered: Peered | None
) -> None:
    """Put every item the parent sends into the queue, until it says stop or goes away;
    hand the service what its peers told."""
    while True:
        try:
            message = await read_message(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            os._exit(0)  # the parent is gone: nobody wants what is in flight
        if message is None:
            return
        if type(message) is tuple:  # ("notice", notice), relayed from another loop
            if peered is not None:
                peered.hear(message[1])
            continue
        start = queue.put_some(message, 0)
        while start < len(message):  # never, while the parent keeps to its capacity
            await queue.put(message[start])
            start = queue.put_some(message, start + 1)


class _ParkedTeller:
    """Tells the parent how many items are parked here, once per turn of the loop in
    which that changed: it keeps that many items more out here (``pool.LoopPool``)."""

    def __init__(self, room: Room, writer: asyncio.StreamWriter) -> None:
        self._room = room
        self._writer = writer
        self._told = 0
        self._scheduled = False
        self._loop = asyncio.get_running_loop()

    def changed(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._tell)

    def _tell(self) -> None:
        self._scheduled = False
        parked = self._room.parked
        if parked != self._told and not self._writer.is_closing():
            self._told = parked
            self._writer.write(frame(("parked", parked)))


class _Peers:
    """The other loops, through the parent (``ports.Peers``): a notice goes at once."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def tell(self, notice: Any) -> None:
        if not self._writer.is_closing():
            self._writer.write(frame(("notice", notice)))


async def _work(queue: Channel[Any], head: Head, outbox: _Outbox, room: Room | None) -> None:
    run = head.run
    if room is not None:
        await room.sit()  # a seat first: workers beyond the budget wait here
    while True:
        if room is not None and not room.stays():
            await room.sit()
        item = await queue.get()
        if item is None:
            return
        ident, value = item
        try:
            value, retries = await run(value)
        except RemoteFailure as failure:
            outbox.add((ident, FAILED, failure, 0))
            continue
        outbox.add((ident, OK, value, retries))


class _Outbox:
    """Outcomes gathered during one turn of the loop, sent as one message after it.
    (Gathered for a millisecond instead, the messages were fewer but the CPU the same.)"""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[tuple[int, int, Any, int]] = []
        self._loop = asyncio.get_running_loop()

    def add(self, outcome: tuple[int, int, Any, int]) -> None:
        if not self._pending:
            self._loop.call_soon(self._send)
        self._pending.append(outcome)

    def _send(self) -> None:
        pending, self._pending = self._pending, []
        try:
            data = frame(pending)
        except Exception:
            data = frame([_picklable(outcome) for outcome in pending])
        self._writer.write(data)

    async def drain(self) -> None:
        if self._pending:
            self._send()
        await self._writer.drain()


def _picklable(outcome: tuple[int, int, Any, int]) -> tuple[int, int, Any, int]:
    try:
        pickle.dumps(outcome[2])
    except Exception as exc:
        error = TypeError(f"result cannot be sent back from the loop process: {exc}")
        return (outcome[0], FAILED, RemoteFailure.describe(error, stage="loops"), 0)
    return outcome
