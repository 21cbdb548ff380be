"""The code inside one loop process: the head of a pipeline on an event loop of its own.

The parent (``loops.py``) sends batches of ``(id, value)``; this process runs each value
through the head's stages (an async first stage such as the fetch, then cheap plain
maps) with ``concurrency`` worker tasks, and sends back batches of outcomes:
``(id, OK, value, retries)`` or ``(id, FAILED, (stage, kind, message, attempts,
error_type), 0)``, where ``retries`` are the first stage's own (``StageSpec.own_attempts``);
and, a few times a second, ``("details", {...})``: what the first stage's function says of
itself (the HTTP client's requests out, hosts waiting or paused).
Batches form naturally: everything that finished in one turn of the loop goes in one
message. When the parent's end of the socket closes (it exited, or was killed), this
process ends too: no loop process outlives its parent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import os
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from .._errors import failure_kind
from .gc_pause import fewer_collections
from .slots import LoopSlots

OK, FAILED = 0, 1
DETAILS_EVERY = 0.25  # seconds between two ("details", ...) messages
HEADER = struct.Struct("!I")


async def read_message(reader: asyncio.StreamReader) -> Any:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return pickle.loads(await reader.readexactly(size))


def frame(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def loop_main(
    sock: socket.socket, slots: LoopSlots | None = None, modules: tuple[str, ...] = ()
) -> None:
    """The loop process's entry point (``multiprocessing`` spawns it). The first message
    on ``sock`` is ``(head, concurrency)``; ``modules`` are imported before it comes, so a
    process started ahead of its run (``loops.warm_up``) is ready sooner."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    for module in modules:
        importlib.import_module(module)
    with fewer_collections():  # as in the parent's run: see gc_pause.py
        try:
            import uvloop

            uvloop.run(_serve(sock, slots))
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            asyncio.run(_serve(sock, slots))


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


async def _serve(sock: socket.socket, slots: LoopSlots | None) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        head_bytes, concurrency = await read_message(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # started ahead for a run that never came
    async with AsyncExitStack() as stack:
        try:
            stages = pickle.loads(head_bytes)
            if slots is not None:  # the global slots, shared with the other loops
                first = stages[0]
                stages = (dataclasses.replace(first, factory=first.factory.with_slots(slots)),
                          *stages[1:])  # fmt: skip
            chain = await _open_chain(stages, stack)
        except Exception as exc:
            writer.write(frame(("init-error", f"{type(exc).__name__}: {exc}")))
            await writer.drain()
            return
        writer.write(frame(("ready", None)))
        outbox = _Outbox(writer)
        queue: asyncio.Queue[tuple[int, Any] | None] = asyncio.Queue()
        # What the first stage's function tells of itself (the HTTP client's details).
        details = getattr(getattr(chain[0], "__self__", None), "details", None)
        ticker = asyncio.create_task(_tell(details, writer)) if details is not None else None
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(_work(queue, chain, outbox)) for _ in range(concurrency)]
            await _receive(reader, queue)
            for _ in workers:
                queue.put_nowait(None)
        if ticker is not None:
            ticker.cancel()
        if details is not None:
            writer.write(frame(("details", details())))  # the last word, after the last item
        await outbox.drain()
    writer.close()


async def _tell(details: Callable[[], Any], writer: asyncio.StreamWriter) -> None:
    """Send ``("details", details())`` a few times a second (progress, hints)."""
    while True:
        await asyncio.sleep(DETAILS_EVERY)
        writer.write(frame(("details", details())))


async def _receive(reader: asyncio.StreamReader, queue: asyncio.Queue[Any]) -> None:
    """Put every item the parent sends into the queue, until it says stop or goes away."""
    while True:
        try:
            message = await read_message(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            os._exit(0)  # the parent is gone: nobody wants what is in flight
        if message is None:
            return
        for item in message:
            queue.put_nowait(item)


Chain = tuple[Callable[[Any], Any], tuple[tuple[str, Callable[[Any], Any]], ...], str, bool]


async def _open_chain(stages: Any, stack: AsyncExitStack) -> Chain:
    """The head's functions: the first (async, perhaps from a per-run factory), then the
    plain maps, each with its stage name for failures."""
    first, *rest = stages
    fn = first.fn if first.factory is None else await stack.enter_async_context(first.factory())
    return fn, tuple((spec.name, spec.fn) for spec in rest), first.name, first.own_attempts


async def _work(queue: asyncio.Queue[Any], chain: Chain, outbox: _Outbox) -> None:
    first, rest, first_name, own_attempts = chain
    while True:
        item = await queue.get()
        if item is None:
            return
        ident, value = item
        stage = first_name
        retries = 0
        try:
            value = await first(value)
            if own_attempts:
                retries = getattr(value, "attempts", 1) - 1
            for name, fn in rest:
                stage = name  # named in the failure if this one raises
                value = fn(value)
        except Exception as exc:
            attempts = getattr(exc, "attempts", None)
            detail = (
                stage,
                failure_kind(exc),
                str(exc) or type(exc).__name__,
                attempts if isinstance(attempts, int) else 1,
                type(exc).__name__,
            )
            outbox.add((ident, FAILED, detail, 0))
            continue
        outbox.add((ident, OK, value, retries))


class _Outbox:
    """Outcomes gathered during one turn of the loop, sent as one message after it."""

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
        message = f"result cannot be sent back from the loop process: {exc}"
        return (outcome[0], FAILED, ("loops", "error", message, 1, type(exc).__name__), 0)
    return outcome
