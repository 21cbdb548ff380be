"""Running one stage: worker tasks that take envelopes, call the function, pass results on.

The retry loop, rate and per-key limits and the counters live here, once for every
placement; the placement only knows how to call the function once (and keeps its
deadline). The one exception is the head of a pipeline on loop processes: there the
loop worker (``loops/worker.py``) calls the head's functions itself, which is why only
stages that never wait (``StageSpec.never_waits``) go there; the first stage's service
retries on its own, and its attempts are counted here from what comes back.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .._errors import Deferred
from .auto import AutoPlacement
from .channel import Channel
from .envelope import END, Envelope
from .events import EventBus, ItemFailed, ItemFinished, ItemRetrying, ItemStarted
from .gil import in_thread
from .limits import KeyedLimiter, TokenBucket
from .outcomes import Failure, RemoteFailure, original, own_attempts
from .place import placement_for
from .placement import Placement
from .ports import STOPPED, Carry, Peered, Service, StageReport
from .room import Room, room_for
from .spec import StageSpec
from .stats import StageCounters, StageStatistics
from .threads import take

if TYPE_CHECKING:
    from .loops.warm import WarmLoops

Emit = Callable[[Envelope], Awaitable[None]]
_PULL_BATCH = 256
# What a deferred envelope hands ``StageSink.fail`` for its failure: the runner tells a
# deferral by the exception (``_errors.Deferred``) and makes no failure record of it.
_DEFERRED = Failure(None, "", "deferred", "", 0, "Deferred")


class StageSink:
    """Where a stage sends envelopes: the next stage, or the end of the pipeline."""

    def __init__(
        self,
        emit: Emit,
        fail: Callable[[Envelope, Failure, BaseException], Awaitable[None]],
        drop: Callable[[Envelope, bool], Awaitable[None]],
        spawn: Callable[[int], None],
    ) -> None:
        self.emit = emit
        self.fail = fail
        self.drop = drop  # (envelope, counted_as_filtered)
        self.spawn = spawn


class StageRunner:
    def __init__(
        self,
        spec: StageSpec,
        index: int,
        queue_size: int,
        bus: EventBus,
        *,
        warm: WarmLoops | None = None,
    ) -> None:
        self.spec = spec
        self._warm = warm  # loop processes started ahead, for a stage placed on them
        self.index = index
        self.inbox: Channel[Any] = Channel(queue_size)
        self.counters = StageCounters(spec.name, spec.place, spec.workers)
        self._bus = bus
        self._bucket = TokenBucket(spec.rate) if spec.rate else None
        self._keyed = KeyedLimiter(spec.limit_per[1]) if spec.limit_per else None
        self._key_fn = spec.limit_per[0] if spec.limit_per else None
        self.placement: Placement | None = None
        self._ready = asyncio.Event()  # the placement is started
        self._call: Callable[[Any], Awaitable[Any]] | None = None
        self._inline: Callable[[Any], Any] | None = None  # called, not awaited
        self._plain_inline: Callable[[Any], Any] | None = None  # the same, for a plain map
        self._io: ThreadPoolExecutor | None = None
        self._service: Service | None = None  # the spec's factory's, while the run lasts
        self._room: Room | None = None  # seats for workers beyond the slots (``room.py``)
        # The worker tasks' group while they are being started and run (``_more_workers``).
        self._workers: tuple[asyncio.TaskGroup, StageSink] | None = None
        # Items awaited now (not inline calls), with the time each call began: what the
        # stall notice names (``runner.py``). One dict store and pop per item.
        self.flying: dict[Envelope, float] = {}

    @property
    def fusible(self) -> bool:
        """Cheap enough to run inside the previous stage's workers instead of its own.

        A plain function placed ``inline`` runs on the loop without awaiting anything, so
        calling it right where the previous stage produced the item saves a queue hand-off
        and a task switch per item, and holds the previous stage's slot only for that
        call. Anything that can wait (rates, per-key limits, retries with backoff) keeps
        its own workers, so it never holds the previous stage's slots while it waits.
        """
        spec = self.spec
        return (
            spec.kind in ("map", "filter")
            and spec.place in ("inline", "auto")  # auto: inline once measured cheap
            and spec.factory is None
            and spec.never_waits
        )

    async def run(self, out: StageSink, io: ThreadPoolExecutor) -> None:
        """Process the inbox until END, then return (the caller passes END on)."""
        self._io = io
        if self.spec.kind == "batch":
            await self._run_batches(out)
            return
        assert self.spec.fn is not None
        if self.spec.factory is not None:
            async with self.spec.factory() as service:
                self._service = service
                # Seats for the workers beyond the slots (``room.py``): a plain stage's only
                # (``_plain_worker`` takes them).
                if self.plain:
                    self._room = room_for(service, self.spec.budget, self.spec.concurrency)
                await self._run_workers(service.call, out)
        else:
            await self._run_workers(self.spec.fn, out)

    async def _run_workers(self, fn: Callable[[Any], Any], out: StageSink) -> None:
        placement = placement_for(self.spec, fn, warm=self._warm)
        self.placement = placement
        placement.counters = self.counters
        placement.more_workers = self._more_workers
        if isinstance(placement, AutoPlacement):
            placement.on_decided = self._placed
        await placement.start()
        if self._room is None and self.plain:
            self._room = placement.room  # a service the placement opened parks items
        # A loop function without a timeout is awaited straight away: one frame less.
        # Set once the placement runs: until then, fused items wait for ``_ready``.
        self._call = placement.direct or placement.call
        self._inline = placement.inline
        self._plain_inline = self._inline if self.plain else None
        self._ready.set()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(placement.serve())
                try:
                    async with asyncio.TaskGroup() as workers:
                        self._workers = (workers, out)
                        for number in range(self.spec.concurrency):
                            name = f"conveyor {self.spec.name} worker {number}"  # tracebacks
                            workers.create_task(self._worker(out), name=name)
                finally:
                    self._workers = None
                placement.close()
        finally:
            placement.close()
            await placement.shutdown()
            self.counters.timeouts_abandoned = placement.abandoned

    def snapshot(self, *, final: bool = False) -> StageStatistics:
        """The stage now, with what its service says of itself (``Service.report``; on
        loop processes, their reports merged)."""
        placement = self.placement
        report = self.report()
        return self.counters.snapshot(
            0 if final else self.inbox.qsize(),
            final=final,
            details=report,
            restarts=0 if placement is None else placement.restarts,
        )

    def tell(self, notice: Any) -> None:
        """Hand the stage's service a notice from the run (``ports.WindDown``): heard by
        a ``Peered`` service here, or by each loop process's (``Placement.tell``)."""
        service = self._service
        if isinstance(service, Peered):
            service.hear(notice)
        elif self.placement is not None:
            self.placement.tell(notice)

    def report(self) -> StageReport | None:
        """What the stage's service says of itself now (on loop processes: merged)."""
        service, placement = self._service, self.placement
        report = service.report() if service is not None else None
        if report is None and placement is not None:
            report = placement.report()
        return report

    def _more_workers(self, count: int) -> None:
        """Run ``count`` more worker tasks, in the same group (none once it has ended)."""
        if self._workers is None:
            return
        group, out = self._workers
        for _ in range(count):
            group.create_task(self._worker(out), name=f"conveyor {self.spec.name} worker")

    def _placed(self, auto: AutoPlacement) -> None:
        """``on="auto"`` has chosen (``auto.py``): show it, and call inline from now on."""
        chosen = auto.chosen
        assert chosen is not None
        self.counters.place = chosen.place
        self.counters.reason = auto.reason
        self.counters.workers = auto.workers
        if chosen.place == "inline" and self.plain:
            self._plain_inline = chosen.fn

    @property
    def plain(self) -> bool:
        """A map that never waits (a fetch stage, most maps)."""
        return self.spec.kind == "map" and self.spec.never_waits

    async def _worker(self, out: StageSink) -> None:
        if self.plain:
            await self._plain_worker(out)
            return
        inbox = self.inbox
        handle = self.handle
        while True:
            envelope = await inbox.get()
            if envelope is END:
                inbox.put_nowait(END)  # let the sibling workers see it too
                return
            await handle(envelope, out)

    async def _plain_worker(self, out: StageSink) -> None:
        """``_worker`` for a ``plain`` stage: ``handle`` and ``_attempt`` written out in one
        loop, so each item costs two coroutines and frames less (they are most of what a
        stage adds to a fetch)."""
        inbox, emit = self.inbox, out.emit
        call, inline = self._call, self._inline
        # A service that retries inside says how many tries each result took (on loop
        # processes the pool counts them, where it sees the service's results).
        service = self._service
        # A service's result may carry something for the ledger (``ports.Carry``).
        carries = self.spec.has_service
        flying = self.flying
        room = self._room
        assert call is not None, "the stage's placement starts before its workers"
        if room is not None:
            await room.sit()  # a seat first: workers beyond the slots wait here
        while True:
            if room is not None and not room.stays():
                await room.sit()
            envelope = await inbox.get()
            if envelope is END:
                inbox.put_nowait(END)  # let the sibling workers see it too
                if room is not None:
                    room.open()  # and those without a seat
                return
            if inline is not None:
                error = self._call_inline(envelope, inline)
                await (emit(envelope) if error is None else self._failed(envelope, error, 1, out))
                continue
            began = flying[envelope] = self._begin(envelope)
            try:
                value = await call(envelope.value)
            except Exception as exc:
                del flying[envelope]
                self._count_call(began)
                if carries and isinstance(exc, RemoteFailure):
                    envelope.extra = exc.extra
                await self._failed(envelope, exc, 1, out)
                continue
            except BaseException:
                self._count_call(began)
                raise
            del flying[envelope]
            self._succeeded(envelope, began)
            if service is not None:
                self.counters.retried += service.attempts(value) - 1
            if carries and type(value) is Carry:
                envelope.extra = value.extra
                if value.drop:
                    if value.deferred is not None:  # left for the next run, not filtered
                        self.counters.deferred += 1
                        deferral = Deferred("deferred by its service", reason=value.deferred)
                        await out.fail(envelope, _DEFERRED, deferral)
                        continue
                    self.counters.filtered += 1
                    await out.drop(envelope, True)
                    continue
                value = value.value
            envelope.value = value
            await emit(envelope)

    def _call_inline(self, envelope: Envelope, fn: Callable[[Any], Any]) -> Exception | None:
        """A plain inline call, counted; the exception it raised, or None (then the
        envelope holds the result)."""
        began = self._begin(envelope)
        try:
            envelope.value = fn(envelope.value)
        except Exception as exc:
            self._count_call(began)
            return exc
        self._succeeded(envelope, began)
        return None

    def _begin(self, envelope: Envelope) -> float:
        """Count a plain stage's call (its one attempt) as started; the time it starts."""
        if self._bus.items:
            self._bus.emit(ItemStarted(self.spec.name, envelope.key, 1))
        self.counters.started += 1
        self.counters.in_flight += 1
        return perf_counter()

    def _count_call(self, began: float) -> float:
        seconds = perf_counter() - began
        self.counters.busy += seconds
        self.counters.in_flight -= 1
        return seconds

    def _succeeded(self, envelope: Envelope, began: float) -> None:
        seconds = self._count_call(began)
        self.counters.succeeded += 1
        self.counters.latency.add(seconds)
        if self._bus.items:
            self._bus.emit(ItemFinished(self.spec.name, envelope.key, seconds))

    async def handle(self, envelope: Envelope, out: StageSink) -> None:
        """Process one envelope: from this stage's workers, or a fused previous stage's."""
        if self._call is None:  # a fused stage's first items may come before it started
            await self._ready.wait()
        fn = self._plain_inline
        if fn is not None:  # the usual fused stage: a plain function, called right here
            error = self._call_inline(envelope, fn)
            await (out.emit(envelope) if error is None else self._failed(envelope, error, 1, out))
            return
        kind = self.spec.kind
        if kind == "flat_map":
            await self._flat_map(envelope, out)
            return
        ok, value = await self._attempt(envelope, out)
        if not ok:
            return
        if kind == "map":
            envelope.value = value
            await out.emit(envelope)
        elif value:  # filter
            await out.emit(envelope)
        else:
            self.counters.filtered += 1
            await out.drop(envelope, True)

    async def _attempt(self, envelope: Envelope, out: StageSink) -> tuple[bool, Any]:
        """Call the function with retries; on final failure report it and return (False, _)."""
        spec = self.spec
        counters = self.counters
        bus = self._bus
        call = self._call
        inline = self._inline
        assert call is not None, "the stage's placement starts before any item"
        limited = self._bucket is not None or self._keyed is not None
        attempt = 0
        while True:
            attempt += 1
            if bus.items if attempt == 1 else bus.active:
                bus.emit(ItemStarted(spec.name, envelope.key, attempt))
            key: Hashable = None
            if limited:
                try:
                    key = await self._limit(envelope.value)
                except Exception as exc:  # a key function that raised
                    return await self._failed(envelope, exc, attempt, out)
            counters.started += 1
            counters.in_flight += 1
            began = perf_counter()
            if inline is None:
                self.flying[envelope] = began
            try:
                value = inline(envelope.value) if inline else await call(envelope.value)
            except Exception as exc:
                self.flying.pop(envelope, None)
                self._count_call(began)
                raised = original(exc)  # as the user's code raised it, also in a process
                # A deferral is the service's word on the item for this run: never retried.
                if isinstance(raised, Deferred) or not spec.retry.should_retry(raised, attempt):
                    return await self._failed(envelope, exc, attempt, out)
                # ``retry_after``: a convention of the exceptions a function raises (the
                # fetch's carry a server's Retry-After), documented on ``Retry``.
                delay = spec.retry.next_delay(
                    attempt, retry_after=getattr(raised, "retry_after", None)
                )
                counters.retried += 1
                if bus.active:
                    bus.emit(ItemRetrying(spec.name, envelope.key, attempt, delay, str(exc)))
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self._count_call(began)
                raise
            finally:
                if self._keyed is not None and key is not None:
                    self._keyed.release(key)
            self.flying.pop(envelope, None)
            self._succeeded(envelope, began)
            return True, value

    async def _limit(self, value: Any) -> Hashable:
        """Wait for the stage's rate and per-key limits; the key taken (None: none)."""
        if self._bucket is not None:
            await self._bucket.wait()
        if self._keyed is None:
            return None
        assert self._key_fn is not None
        key = self._key_fn(value)
        await self._keyed.acquire(key)
        return key

    async def _failed(
        self, envelope: Envelope, exc: Exception, attempt: int, out: StageSink
    ) -> tuple[bool, Any]:
        raised = original(exc)
        if isinstance(raised, Deferred):
            # Not a failure: the item is left for the next run (the runner ends it
            # deferred, and its root with it; given up at a stop, it ends nothing).
            if raised.reason != STOPPED:
                self.counters.deferred += 1
            await out.fail(envelope, _DEFERRED, raised)
            return False, None
        self.counters.failed += 1
        failure = Failure.from_exception(
            exc, key=envelope.key, stage=self.spec.name, attempts=attempt, item=envelope.value
        )
        if self.spec.has_service and failure.stage == self.spec.name:
            # The service's own tries (a bad URL: 0); a failure of a later stage of a head
            # on loop processes is that stage's.
            self.counters.retried += max(0, (own_attempts(exc) or 1) - 1)
        if self._bus.active:
            self._bus.emit(ItemFailed(failure))
        await out.fail(envelope, failure, raised)
        return False, None

    async def _flat_map(self, parent: Envelope, out: StageSink) -> None:
        fn = self.spec.fn
        assert fn is not None
        ok, produced = await self._attempt(parent, out)
        if not ok:
            return
        children = 0
        try:
            async for child in self._iterate(fn, produced):
                out.spawn(parent.root)
                await out.emit(Envelope(parent.root, parent.key, child, (*parent.pos, children)))
                children += 1
        except Exception as exc:
            self.counters.succeeded -= 1
            await self._failed(parent, exc, 1, out)
            return
        await out.drop(parent, False)  # the parent itself ends here; its children go on

    async def _iterate(self, fn: Callable[..., Any], produced: Any) -> AsyncIterator[Any]:
        if inspect.isawaitable(produced):
            produced = await produced
        if isinstance(produced, AsyncIterable):
            async for child in produced:
                yield child
            return
        iterator: Iterator[Any] = iter(produced)
        if self.spec.place != "threads":
            for child in iterator:
                yield child
            return
        loop = asyncio.get_running_loop()
        while True:
            batch = await in_thread(
                loop.run_in_executor(self._io, take, iterator, _PULL_BATCH, 0.02)
            )
            if not batch:
                return
            for child in batch:
                yield child

    async def _run_batches(self, out: StageSink) -> None:
        size = self.spec.batch_size
        wait = self.spec.batch_timeout
        inbox = self.inbox
        buffer: list[Envelope] = []
        deadline = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if buffer and wait is not None:
                try:
                    async with asyncio.timeout_at(deadline):
                        envelope = await inbox.get()
                except TimeoutError:
                    await self._emit_batch(buffer, out)
                    buffer = []
                    continue
            else:
                envelope = await inbox.get()
            if envelope is END:
                if buffer:
                    await self._emit_batch(buffer, out)
                return
            if not buffer:
                deadline = loop.time() + (wait or 0.0)
            buffer.append(envelope)
            if len(buffer) >= size:
                await self._emit_batch(buffer, out)
                buffer = []

    async def _emit_batch(self, buffer: list[Envelope], out: StageSink) -> None:
        buffer.sort(key=lambda e: (e.root, e.pos))
        first = buffer[0]
        members = tuple(root for e in buffer for root in e.roots())
        self.counters.started += len(buffer)
        self.counters.succeeded += 1
        batch = Envelope(
            first.root,
            tuple(e.key for e in buffer),
            [e.value for e in buffer],
            first.pos,
            members,
        )
        await out.emit(batch)
