"""Loop processes: the head of a pipeline on several event loops, one per process.

One event loop is one core. A fetch job whose loop is busy all the time (parsing HTTP,
building rows) goes faster only with more loops, and in Python that means processes. The
parent keeps everything that must happen once: it reads the input, keeps the journal and
writes the sink. The loop processes run the head of the pipeline (the fetch and the cheap
plain maps fused after it; ``loop_worker.py``).

Each item goes to the loop its *route key* names, by a stable hash (for a fetch, the
URL's host:port): one host is owned by one loop, so per-host limits, pacing and
Retry-After pauses hold exactly as on one loop. Items travel in batches over a socket
pair: everything routed in one turn of the parent's loop goes in one message.

The first stage's ``concurrency`` is one budget over all loops: slots in a semaphore the
loops share (``slots.py``) when the first stage can take them (the fetch can), else the
parent never sends more items out than that.

A loop process that dies fails nothing at once: the items it held are sent again to the
process that replaces it; an item whose loop died under it ``MAX_CRASHES`` times fails
with kind ``worker-crashed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import socket
import zlib
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import NotPicklableError, UsageError, WorkerCrashed
from .loop_worker import FAILED, frame, loop_main, read_message
from .outcomes import RemoteFailure
from .slots import SharedSlots
from .spec import StageSpec

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

MAX_CRASHES = 2
_START_TIMEOUT = 60.0


def route_index(key: str, loops: int) -> int:
    """The loop that owns ``key``: stable across runs and processes (not ``hash()``)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % loops


@dataclass(slots=True)
class _Pending:
    value: Any
    future: asyncio.Future[Any]
    crashes: int = 0


@dataclass(slots=True)
class _Loop:
    index: int
    process: BaseProcess | None = None
    writer: asyncio.StreamWriter | None = None
    reader_task: asyncio.Task[None] | None = None
    pending: dict[int, _Pending] = field(default_factory=dict)
    outgoing: list[tuple[int, Any]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dead: str | None = None  # why it could not be replaced


class LoopPool:
    """``loops`` loop processes running ``head`` (pickled stage specs); ``call(value)``
    routes one value by ``route(value)`` and returns what the head made of it."""

    def __init__(
        self,
        heads: list[tuple[StageSpec, ...]],
        *,
        concurrency: tuple[int, ...],
        route: Callable[[Any], str],
        shared: int | None = None,
    ) -> None:
        try:
            self._heads = [pickle.dumps(head) for head in heads]
        except Exception as exc:
            names = ", ".join(spec.name for spec in heads[0])
            raise NotPicklableError(
                f"stages {names} cannot be sent to loop processes ({exc}); define their "
                "functions with `def` at module level, or run with loops=1"
            ) from None
        self._concurrency = concurrency
        self._route = route
        import multiprocessing  # here: a run with one loop never loads it

        self._ctx = multiprocessing.get_context("spawn")
        # The global slots the loops share (slots.py), when the head's first stage takes
        # them; loop processes started ahead (``warm_up``) bring theirs.
        self._shared = shared
        self._slots: SharedSlots | None = None
        self._warm: list[tuple[BaseProcess, socket.socket]] = []
        self._loops = [_Loop(i) for i in range(len(heads))]
        self._next_id = 0
        self._flush_scheduled = False
        self._closing = False
        self.restarts = 0  # loop processes replaced after dying (in the details)
        # Told how many retries the first stage made for results that came back (see
        # StageSpec.own_attempts); failures carry their own attempts.
        self.on_retries: Callable[[int], None] | None = None
        self.details_by_loop: dict[int, dict[str, Any]] = {}  # each loop's latest details

    async def start(self) -> None:
        warm = _take_warm(len(self._loops), self._shared)
        if warm is not None:
            self._slots, self._warm = warm.slots, warm.processes
        elif self._shared is not None:
            self._slots = SharedSlots(self._ctx, self._shared, len(self._loops))
        started = await asyncio.gather(
            *(self._start(loop) for loop in self._loops), return_exceptions=True
        )
        errors = [e for e in started if isinstance(e, BaseException)]
        if errors:
            await self.kill()  # the ones that did start
            raise errors[0]

    async def _start(self, loop: _Loop) -> None:
        if self._warm:
            process, parent_end = self._warm.pop(0)  # started ahead, in index order
        else:
            process, parent_end, child_end = _spawn(self._ctx, loop.index, self._slots, ())
            with child_end:  # open until the child has it
                await asyncio.to_thread(process.start)
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        writer.write(frame((self._heads[loop.index], self._concurrency[loop.index])))
        try:
            async with asyncio.timeout(_START_TIMEOUT):
                tag, detail = await read_message(reader)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            tag, detail = "init-error", f"it exited with code {process.exitcode}"
        if tag != "ready":
            process.kill()
            writer.close()
            raise UsageError(f"loop process {loop.index} could not start: {detail}")
        loop.process, loop.writer = process, writer
        loop.reader_task = asyncio.get_running_loop().create_task(self._read(loop, reader))
        loop.ready.set()
        if loop.pending:  # what its predecessor held, and what came while it started
            loop.outgoing = [(ident, p.value) for ident, p in loop.pending.items()]
            self._schedule_flush()

    # -- calls ----------------------------------------------------------------------------

    def call(self, value: Any) -> asyncio.Future[Any]:
        """Send ``value`` to its loop; the future holds the head's result (or raises)."""
        loop = self._loops[route_index(self._route(value), len(self._loops))]
        ident = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if loop.dead is not None:
            future.set_exception(WorkerCrashed(loop.dead))
            return future
        loop.pending[ident] = _Pending(value, future)
        loop.outgoing.append((ident, value))
        self._schedule_flush()
        return future

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for loop in self._loops:
            if loop.outgoing and loop.writer is not None and loop.ready.is_set():
                batch, loop.outgoing = loop.outgoing, []
                loop.writer.write(frame(batch))

    async def _read(self, loop: _Loop, reader: asyncio.StreamReader) -> None:
        pending = loop.pending
        try:
            while True:
                retries = 0
                message = await read_message(reader)
                if type(message) is tuple:  # ("details", {...}): see loop_worker
                    self.details_by_loop[loop.index] = message[1]
                    continue
                for ident, status, payload, retried in message:
                    entry = pending.pop(ident, None)
                    if entry is None or entry.future.done():
                        continue
                    if status == FAILED:
                        entry.future.set_exception(RemoteFailure(*payload))
                    else:
                        retries += retried
                        entry.future.set_result(payload)
                if retries and self.on_retries is not None:
                    self.on_retries(retries)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        if not self._closing:
            await self._replace(loop)

    async def _replace(self, loop: _Loop) -> None:
        """The loop process died: fail what it broke too often, start another for the rest."""
        loop.ready.clear()
        code = loop.process.exitcode if loop.process is not None else None
        if loop.writer is not None:
            loop.writer.close()
        loop.writer = None
        loop.outgoing.clear()
        for ident, entry in list(loop.pending.items()):
            entry.crashes += 1
            if entry.crashes >= MAX_CRASHES:
                del loop.pending[ident]
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
                if not entry.future.done():
                    entry.future.set_exception(WorkerCrashed(loop.dead))
            loop.pending.clear()

    def details(self) -> dict[str, Any]:
        """The loops' latest details as one: counts added up, paused hosts together (each
        host has one loop); limits as the loops were given them."""
        merged: dict[str, Any] = {}
        paused: dict[str, float] = {}
        for details in self.details_by_loop.values():
            for name, value in details.items():
                if name == "paused":
                    paused.update(value)
                elif name in ("concurrency", "per_host"):
                    merged[name] = value
                elif isinstance(value, int | float):
                    merged[name] = merged.get(name, 0) + value
        if merged:
            merged["paused"] = dict(sorted(paused.items(), key=lambda item: -item[1])[:5])
            merged["loop_restarts"] = self.restarts
        return merged

    # -- the end --------------------------------------------------------------------------

    async def close(self) -> None:
        """Tell every loop there is no more; wait for them to finish and exit. With items
        still in flight (the run was cancelled), kill them instead."""
        if any(loop.pending for loop in self._loops):
            await self.kill()
            return
        self._closing = True
        self._flush()
        for loop in self._loops:
            if loop.writer is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    loop.writer.write(frame(None))
        await asyncio.to_thread(self._join, 5.0)
        await self.kill()

    async def kill(self) -> None:
        self._closing = True
        for loop in self._loops:
            if loop.process is not None and loop.process.is_alive():
                loop.process.kill()
            if loop.writer is not None:
                loop.writer.close()
            if loop.reader_task is not None:
                loop.reader_task.cancel()
            for entry in loop.pending.values():
                if not entry.future.done():
                    entry.future.cancel()
        await asyncio.to_thread(self._join, 5.0)

    def _join(self, timeout: float) -> None:
        for loop in self._loops:
            if loop.process is not None:
                loop.process.join(timeout)


def _spawn(
    context: Any, index: int, slots: SharedSlots | None, modules: Sequence[str]
) -> tuple[BaseProcess, socket.socket, socket.socket]:
    """A loop process, not yet started, and the two ends of its socket (the child's to
    close once the process has started)."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = context.Process(
        target=loop_main,
        args=(child_end, None if slots is None else slots.for_loop(index), tuple(modules)),
        name=f"conveyor-loop-{index}",
        daemon=True,
    )
    return process, parent_end, child_end


@dataclass
class _WarmLoops:
    processes: list[tuple[BaseProcess, socket.socket]]
    slots: SharedSlots | None
    shared: int | None


_warm_loops: _WarmLoops | None = None


def warm_up(count: int, *, shared: int | None, modules: Sequence[str] = ()) -> None:
    """Start ``count`` loop processes now, before the run is even built, so that their
    start-up (an interpreter and its imports, ~0.2 s each) overlaps the caller's own
    (``conveyor fetch`` calls this right after reading its options). They import
    ``modules`` and wait for their head. The next ``LoopPool`` with as many loops and the
    same shared slots takes them; one that differs ends them. They end with this process
    in any case (their socket's end, and ``PR_SET_PDEATHSIG``)."""
    global _warm_loops
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    slots = None if shared is None else SharedSlots(context, shared, count)
    processes = []
    for index in range(count):
        process, parent_end, child_end = _spawn(context, index, slots, modules)
        with child_end:
            process.start()
        processes.append((process, parent_end))
    _warm_loops = _WarmLoops(processes, slots, shared)


def _take_warm(count: int, shared: int | None) -> _WarmLoops | None:
    global _warm_loops
    warm, _warm_loops = _warm_loops, None
    if warm is None:
        return None
    if len(warm.processes) == count and warm.shared == shared:
        return warm
    for process, parent_end in warm.processes:  # started for another run shape
        parent_end.close()
        process.kill()
    return None


def _reap(process: Any) -> None:
    """Wait for a dying loop process to be gone; kill it if it lingers."""
    process.join(5.0)
    if process.is_alive():
        process.kill()
        process.join()


def fold_head(specs: tuple[StageSpec, ...], loops: int) -> tuple[StageSpec, ...]:
    """With ``loops`` > 1: the pipeline's head -- its first stage (async, such as the fetch)
    and the plain maps right after it (inline or auto, module-level) -- becomes one stage
    placed on loop processes.
    The rest of the pipeline stays in this process, where it was placed."""
    if loops <= 1 or not specs:
        return specs
    first = specs[0]
    if not (first.kind == "map" and first.place == "loop" and _never_waits(first)):
        raise UsageError(
            f"loops={loops}: the first stage ({first.name!r}) must be an async map such as "
            ".fetch(), with no rate, limit_per, retries or timeout of its own; "
            "or run with loops=1"
        )
    shares = hasattr(first.factory, "with_slots")
    head = [first]
    for spec in specs[1:]:
        # Inline maps, and plain ones left to on="auto": in a loop process they run inline
        # (a loop process is a process of its own: CPU work there is on another core).
        if not (spec.kind == "map" and spec.place in ("inline", "auto") and _never_waits(spec)):
            break
        try:
            pickle.dumps(spec.fn)
        except Exception:
            break  # a lambda: it stays here, and gets what the head made
        head.append(spec)
    folded = StageSpec(
        kind="map",
        name=first.name,
        fn=first.fn,
        place="loops",
        workers=min(loops, first.concurrency),
        # One budget for all loops, however they are spread (a loop owning the busy hosts
        # may hold all of it): the loops' shared slots when the first stage can take them
        # (slots.py), with some items more out, waiting in the loops; else kept here.
        concurrency=first.concurrency + (_in_transit(first.concurrency) if shares else 0),
        route=first.route,
        remote=tuple(head),
        own_attempts=first.own_attempts,
    )
    return (folded, *specs[len(head) :])


def _in_transit(concurrency: int) -> int:
    """Items out beyond the shared slots: enough to cover the trip to a loop and back at
    the rates a loop reaches, so that no slot stands free while its next item travels."""
    return max(64, concurrency // 2)


def shared_slots(spec: StageSpec) -> int | None:
    """The slots the loops of a folded head share (the first stage's concurrency), or
    None when its first stage cannot take them and the parent keeps the budget."""
    first = spec.remote[0]
    return first.concurrency if hasattr(first.factory, "with_slots") else None


def _never_waits(spec: StageSpec) -> bool:
    """No rate, per-key limit, retries or timeout: nothing the parent would have to keep."""
    return (
        spec.rate is None
        and spec.limit_per is None
        and spec.retry.attempts == 1
        and spec.timeout is None
    )


def loop_heads(spec: StageSpec) -> list[tuple[StageSpec, ...]]:
    """The head each loop process runs: the first stage's per-run factory shares out the
    global limits (``share(index, loops)``), when it has one."""
    first, *rest = spec.remote
    share = getattr(first.factory, "share", None)
    heads = []
    for index in range(spec.workers):
        factory = first.factory if share is None else share(index, spec.workers)
        heads.append((dataclasses.replace(first, factory=factory), *rest))
    return heads


def loop_concurrency(spec: StageSpec) -> tuple[int, ...]:
    """Each loop's worker tasks: the first stage's whole concurrency, since one loop may
    own all the busy hosts. What holds the total is the shared slots, or the parent's
    budget (``fold_head``); items beyond a loop's workers wait in its queue."""
    return (spec.remote[0].concurrency,) * spec.workers


AUTO_MIN_ITEMS = 20_000  # below this, starting processes costs more than they save
_BYTES_PER_URL = 50  # for a file source, whose size is known at once (its count is not)


def resolve_loops(loops: int | str, source: Any) -> int:
    """``loops=`` as a number: ``"auto"`` is one loop per usable core when the source is
    large enough to pay for starting them (20,000 items, or a 1 MB file), else one."""
    if loops == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
        return cores if cores > 1 and _large(source) else 1
    if isinstance(loops, bool) or not isinstance(loops, int) or loops < 1:
        raise UsageError(f"loops={loops!r} must be a whole number of at least 1, or 'auto'")
    return loops


def resolve_loops_for_file(loops: int | str, path: str) -> int:
    """``resolve_loops`` for a source read from the file at ``path`` (``-``: stdin), before
    the source itself is made (the CLI starts loop processes early: ``warm_up``)."""
    return resolve_loops(loops, _FileOnly(path))


@dataclass(frozen=True)
class _FileOnly:
    path: str


def _large(source: Any) -> bool:
    if isinstance(source, Sized):
        return len(source) >= AUTO_MIN_ITEMS
    path = getattr(source, "path", None)
    if isinstance(path, str | os.PathLike):
        try:
            return os.path.getsize(path) >= AUTO_MIN_ITEMS * _BYTES_PER_URL
        except OSError:
            return False
    return False
