"""The runner: drives source → stages → output on one event loop.

Data flow (``docs/architecture.md`` walks it in more steps: these are its 4, 5 and 7-8):

1. the source task (``_pump``) reads the input in batches (``source.py``), has the journal
   check each batch's keys ahead of time (``Writer.start_admit``), numbers each admitted
   item (its *root*) and puts it into the first stage's bounded inbox — so the input is
   read only as fast as the pipeline drains it;
2. each stage (``stages.py``) runs its workers over its inbox and hands every envelope to
   the next stage's inbox (or straight into it, when it is fusible), or, from the last
   stage, to the output, or reports it as a failure;
3. the last stage's workers deliver each envelope themselves (``_put_result``,
   ``_deliver``): counted, released per root through the ``RootTracker`` (in input order
   when ``ordered``), and passed to the consumer or to the ``Writer``, which writes,
   flushes and commits the journal on its own thread.

All tasks live in one ``asyncio.TaskGroup``. A stop (first Ctrl-C) ends the source and
tells every stage's service (``WindDown("stop")``): items waiting inside a service with
nothing sent (a fetch's waiting room) are left at once, unrecorded, for the next run;
what was sent drains. An abort (second Ctrl-C, or the grace period running out) cancels
the group. Either way the writer's final flush and commit run after the group has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from .._errors import Deferred, UsageError
from .channel import Channel
from .envelope import END, Envelope
from .events import EventBus, ObserverLike, RunFinished, RunStarted, Tick
from .gate import OrderGate, watched
from .gc_pause import fewer_collections
from .gil import GilYield
from .loops import WarmLoops, fold_head
from .outcomes import Failure
from .ports import STOPPED, Feed, HoldingReport, Holds, Ledger, Sink, Taken, WindDown
from .source import BATCH, count_hint, read_batches
from .spec import StageSpec
from .stages import StageRunner, StageSink
from .stall import StallWatch, oldest_in_flight
from .stats import RunResult, RunStatistics, Stall
from .tail import check_tail, held_politely, holding, hosts_of
from .threads import shutdown_executor
from .tracker import NOTHING, Finished, RootTracker
from .writer import Writer

OnError = Literal["record", "raise"]
RetryOnResume = Callable[[Any], str | tuple[str, int] | None]
"""Says of a result whether its key stays retryable: a kind, ``(kind, attempts)``, or None."""
_QUEUE_SIZE = 64
_ADMIT_AHEAD = 2  # source batches whose keys the journal checks before they are fed in
# With a journal the source is read in bigger batches: each costs one SQLite lookup on the
# journal's thread, and every thread hand-off waits for the GIL while the loop is busy.
_JOURNAL_BATCH = 8192
_TICK_SECONDS = 0.25
# A fed run waiting for items: after a root finishes, how long to let others finish too
# before handing them over and asking the ledger again (one thread hop for all of them).
_FED_SETTLE = 0.002
_FAILURES_KEPT = 10_000
# At the deadline, the items in flight get this long (or the run's grace, if shorter) to
# end before the rest is cancelled and recorded deferred.
_DEADLINE_GRACE = 5.0
_log = logging.getLogger("conveyor")


class Runner:
    """One run of a pipeline. Create, ``await run()``, read the ``RunResult``.

    Args:
        source: any iterable or async iterable, read lazily.
        stages: the stage specs, in order.
        key: a function giving each input item's key; by default its input position.
        ordered: deliver results in input order (bounded by ``window`` roots in flight).
        on_error: ``"record"`` failures and go on, or ``"raise"`` the first one.
        sink: where results go (written on a background thread), or None.
        consumer: an ``asyncio.Queue`` to receive results instead (for iteration).
        yield_failures: also put ``Failure`` objects into the consumer queue.
        open_ledger: opens the journal that decides which keys to run and records finished
            ones (called on the writer thread).
        commit_every, commit_interval: commit (flush the sink, record finished keys in the
            journal) every so many finished keys or seconds, whichever comes first.
        observers: event subscribers.
        grace: seconds the items in flight (sent: see ``stop``) may take to finish after
            ``stop()``.
        loops: run the pipeline's head (its async first stage, such as the fetch, and the
            plain inline maps after it) on this many loop processes (``loops/``).
        warm: loop processes started ahead for this run (``loops.start_ahead``): taken
            over when they fit ``loops`` and the head's shared budget, else ended.
        measured: start the head on this run's own loop and move it to the ``loops``
            loop processes only once that loop is CPU-bound (``loops/grow.py``).
        retry_on_resume: with a journal, called with each result: None when the result
            finishes its key (the journal records it done), or a kind (``"http-503"``), or
            ``(kind, attempts)``, when the key stays retryable: the result is written like
            any other, and the journal records its key as failed with that kind, so a run
            with ``retry_failed`` runs it again (see ``docs/io.md``).
        deadline: seconds after the start at which the run winds down: every stage's
            ``Peered`` service hears ``WindDown("deadline", elapsed)``, the source is read
            no further, the items in flight get a few seconds (at most ``grace``) to end,
            and what is left then ends deferred ("deadline"). Items never read are left
            for the next run (``RunResult.unread``, when the source knows its length).
        finish_at: a share of the input (0 to 1): once that many of its items have ended,
            every stage's ``Peered`` service hears ``WindDown("tail", elapsed)``, once.
            Needs a source that knows its length.
        stall_after: seconds without any item finishing (time during which every host
            with work is held back by its site left out) after which the run names its
            stall: ``RunStatistics.stall`` and one warning on the ``conveyor`` logger.
    """

    def __init__(
        self,
        source: Any,
        stages: Sequence[StageSpec],
        *,
        key: Callable[[Any], Hashable] | None = None,
        ordered: bool = False,
        on_error: OnError = "record",
        sink: Sink | None = None,
        consumer: asyncio.Queue[Any] | None = None,
        yield_failures: bool = False,
        open_ledger: Callable[[], Ledger] | None = None,
        observers: Sequence[ObserverLike] = (),
        grace: float = 10.0,
        window: int | None = None,
        commit_every: int = 10_000,
        commit_interval: float = 1.0,
        queue_size: int = _QUEUE_SIZE,
        loops: int = 1,
        warm: WarmLoops | None = None,
        measured: bool = False,
        retry_on_resume: RetryOnResume | None = None,
        deadline: float | None = None,
        finish_at: float | None = None,
        stall_after: float = 60.0,
    ) -> None:
        if on_error not in ("record", "raise"):
            raise UsageError(f"on_error={on_error!r}: choose 'record' or 'raise'")
        check_tail(deadline, finish_at, stall_after)
        self._deadline = deadline
        self._finish_at = finish_at
        self._stall_after = stall_after
        self._source = source
        # A source its ledger feeds (a crawl's frontier): items come from ``Ledger.take``.
        self._fed = isinstance(source, Feed)
        if self._fed and open_ledger is None:
            raise UsageError(f"{type(source).__name__} is read from a journal: pass one")
        self._specs = fold_head(tuple(stages), loops, measured=measured)
        self._warm = warm
        self._key = key
        self._ordered = ordered
        self._on_error = on_error
        self._consumer = consumer
        self._yield_failures = yield_failures
        self._ledger = open_ledger
        self._sink = sink
        self._bus = EventBus(tuple(observers))
        self._grace = grace
        concurrency = sum(spec.concurrency for spec in self._specs)
        biggest_batch = max((spec.batch_size for spec in self._specs), default=0)
        # The reorder window must hold a full batch, or a batch stage would wait forever.
        self._window = max(window or max(1024, 4 * concurrency), 2 * biggest_batch + 1)
        self._commit_every = commit_every
        self._commit_interval = commit_interval
        self._queue_size = queue_size
        journaled = open_ledger is not None
        self._finished_keys = Finished() if journaled else None
        # Only a journal records a key as retryable: without one the predicate is not called.
        self._retry_on_resume = retry_on_resume if journaled else None
        # A journaled run cut by its deadline records the keys left in flight deferred:
        # the tracker must know them one by one.
        single = all(spec.kind in ("map", "filter") for spec in self._specs) and not (
            journaled and deadline is not None
        )
        self._tracker = RootTracker(
            ordered=ordered, hold=journaled, finished=self._finished_keys, single=single
        )
        # A fed run's items carry extras to the ledger and its pump counts finished roots:
        # both go through the tracker.
        self._direct_results = self._tracker.single and consumer is None and not self._fed
        self._progress = asyncio.Event()  # a fed run: a root finished since the last look
        self._stages: list[StageRunner] = []
        # Ordered: each batch stage takes its items in input order, through a gate (gate.py).
        self._gates: dict[int, OrderGate] = {}
        self._writer: Writer
        self._ended: asyncio.Future[None]  # done when the output ends (or fails)
        self._commit_turn = asyncio.Lock()
        self._consumer_turn = asyncio.Lock()
        self._window_open: asyncio.Event | None = None
        self._stop_scope: asyncio.Timeout | None = None
        self._abort_scope: asyncio.Timeout | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._aborted = False
        self._finished = False
        self._started = 0.0
        self._total: int | None = None
        self._admitted = 0
        self._skipped = 0
        self._results = 0
        self._failed = 0
        self._filtered = 0
        self._failures: list[Failure] = []
        self._by_kind: Counter[str] = Counter()
        self._cut = False  # the deadline came: the source ends, then what is left
        self._unread = 0
        self._tail_told = False
        self._tail_failed = False
        self._stall: Stall | None = None
        self._watch: StallWatch | None = None
        self._last_ended = 0

    @property
    def consumer(self) -> asyncio.Queue[Any] | None:
        return self._consumer

    # -- control, callable from any thread via ``threadsafe`` ---------------------------

    def stop(self) -> None:
        """Stop reading input; let in-flight items finish within the grace period.

        Every stage's service hears ``WindDown("stop")``: the items it holds waiting with
        nothing sent for them (a fetch's items waiting on a host held back, in its
        waiting room: ``StageSpec.slots``) end at once, left unrecorded for the next run
        (``_put_failure``), so a stop ends midway however many items wait there."""
        if self._loop is None or self._stopped or self._finished:
            return
        self._stopped = True
        self._tell("stop")
        if self._stop_scope is not None:
            self._stop_scope.reschedule(self._loop.time())
        self._loop.call_later(self._grace, self.abort)

    @property
    def _halted(self) -> bool:
        """The source is read no further: a stop, or the deadline."""
        return self._stopped or self._cut

    def abort(self) -> None:
        """Cancel everything in flight now; what finished is still written and committed."""
        if self._loop is None or self._aborted or self._finished:
            return
        self._aborted = True
        self._stopped = True
        if self._stop_scope is not None:
            self._stop_scope.reschedule(self._loop.time())
        if self._abort_scope is not None:
            self._abort_scope.reschedule(self._loop.time())

    def threadsafe(self, action: Callable[[], None]) -> None:
        """Call ``stop`` or ``abort`` from another thread; a no-op once the run is over."""
        loop = self._loop
        if loop is not None and not self._finished:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(action)

    # -- the run ------------------------------------------------------------------------

    async def run(self) -> RunResult:
        gil = GilYield(asyncio.get_running_loop())  # see gil.py: the run's threads need it
        gil.start()
        try:
            with fewer_collections():  # see gc_pause.py
                return await self._run()
        finally:
            gil.stop()

    async def _run(self) -> RunResult:
        self._loop = asyncio.get_running_loop()
        self._started = time.perf_counter()
        self._stages = [
            StageRunner(spec, i, self._queue_size, self._bus, warm=self._warm if i == 0 else None)
            for i, spec in enumerate(self._specs)
        ]
        if self._ordered:
            self._gates = {
                s.index: OrderGate(s.inbox) for s in self._stages if s.spec.kind == "batch"
            }
        self._window_open = asyncio.Event()
        io = ThreadPoolExecutor(2, thread_name_prefix="conveyor-io")
        writer_thread = ThreadPoolExecutor(1, thread_name_prefix="conveyor-writer")
        writer = Writer(
            self._sink,
            self._ledger,
            writer_thread,
            commit_every=self._commit_every,
            commit_interval=self._commit_interval,
            finished=self._finished_keys,
            final_record=self._fed,
            holds=self._holds,
        )
        self._writer = writer
        self._ended = self._loop.create_future()
        error: BaseException | None = None
        try:
            try:
                self._total = await asyncio.get_running_loop().run_in_executor(
                    io, count_hint, self._source
                )
                if self._finish_at is not None and self._total is None:
                    fix = (
                        "a crawl's is not known ahead; use deadline instead"
                        if self._fed
                        else "this source cannot say it: give a list or a file source, or "
                        "use deadline instead"
                    )
                    raise UsageError(
                        f"finish_at={self._finish_at!r} needs the input's length: {fix}"
                    )
                if self._bus.active:
                    self._bus.emit(RunStarted(tuple(s.name for s in self._specs), self._total))
                await writer.open()
                self._take_up_holds(writer.held())
                self._watch = StallWatch(time.perf_counter(), after=self._stall_after)
                if self._deadline is not None:
                    self._loop.call_later(self._deadline, self._deadline_came)
                async with asyncio.timeout(None) as self._abort_scope:
                    if self._aborted:
                        self._abort_scope.reschedule(self._loop.time())
                    try:
                        await self._run_tasks(writer, io)
                    finally:
                        self._abort_scope = None
            except TimeoutError:
                if not self._aborted:
                    raise
            except BaseExceptionGroup as group:
                raise first_error(group) from None
            finally:
                if self._cut:
                    self._defer_left()
                # Whatever happened, commit what finished: an interrupted run resumes from it.
                try:
                    await writer.finish()
                except BaseException as exc:
                    error = exc
        finally:
            self._finished = True
            if self._ended.done() and not self._ended.cancelled():
                self._ended.exception()  # retrieved: it was raised, or the run was aborted
            await shutdown_executor(io, cancel_futures=True)
            await shutdown_executor(writer_thread)
        if error is not None:
            raise error
        result = self._result()
        if self._bus.active:
            self._bus.emit(RunFinished(result))
        return result

    async def _run_tasks(self, writer: Writer, io: ThreadPoolExecutor) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump_fed(writer) if self._fed else self._pump(writer, io))
            for stage in self._stages:
                group.create_task(self._run_stage(stage, io))
            ticker = group.create_task(self._tick())
            # Until the last stage ends, or the output fails (the group then cancels all).
            await self._ended
            ticker.cancel()

    async def _pump(self, writer: Writer, io: ThreadPoolExecutor) -> None:
        """Step 1: read, admit and number input items; then send END down the pipeline."""
        first = self._stages[0].inbox if self._stages else None
        assert self._window_open is not None
        position = 0
        try:
            async with asyncio.timeout(None) as self._stop_scope:
                if self._halted:
                    self._stop_scope.reschedule(asyncio.get_running_loop().time())
                async with contextlib.aclosing(
                    read_batches(self._source, io, _JOURNAL_BATCH if self._ledger else BATCH)
                ) as batches:
                    # The journal checks the next few batches' keys on its thread while
                    # this one is fed in, so the source never waits for its answers.
                    ahead: deque[tuple[list[Any], Sequence[Hashable], Any]] = deque()
                    async for batch in batches:
                        keys = self._keys_for(batch, position)
                        position += len(batch)
                        checking = writer.start_admit(keys) if self._ledger is not None else None
                        ahead.append((batch, keys, checking))
                        if len(ahead) > _ADMIT_AHEAD:
                            await self._feed(*ahead.popleft(), first)
                    while ahead:
                        await self._feed(*ahead.popleft(), first)
        except TimeoutError:
            if not self._halted:
                raise
        finally:
            self._stop_scope = None  # a finished scope cannot be rescheduled
        if first is not None:
            await first.put(END)
        else:
            self._end_output()

    async def _pump_fed(self, writer: Writer) -> None:
        """Step 1 for a source its ledger feeds (``ports.Feed``): take items from the
        ledger; when it has none ready, hand over what finished (its extras may hold new
        items) and ask again, once a root has finished or the ledger's ``retry_in`` has
        passed. The end: nothing taken after every admitted root finished and was handed
        over, and nothing put aside for later."""
        first = self._stages[0].inbox if self._stages else None
        # Twice what the first stage may have out (its budget, not a waiting room).
        want = min(_JOURNAL_BATCH, max(BATCH, 2 * self._specs[0].budget if self._specs else 0))
        ahead: asyncio.Future[Taken] | None = None
        try:
            async with asyncio.timeout(None) as self._stop_scope:
                if self._halted:
                    self._stop_scope.reschedule(asyncio.get_running_loop().time())
                while True:
                    taken = await (ahead or writer.take(want))
                    ahead = None
                    if not taken.items:
                        # Starved: hand over what finished (the items it found), look again.
                        idle = self._tracker.ended == self._admitted
                        self._progress.clear()
                        await self._hand_over(writer)
                        taken = await writer.take(want)
                    if taken.items:
                        # The next window is asked for now, so that it is ready when this
                        # one is in: the writer's thread may be busy with a batch.
                        ahead = writer.take(want)
                        keys = [key for key, _ in taken.items]
                        values = [value for _, value in taken.items]
                        await self._feed(values, keys, None, first)
                        continue
                    if idle and taken.retry_in is None:
                        break  # nothing in flight, nothing stored, nothing put aside
                    wait = None if taken.retry_in is None else max(0.001, taken.retry_in)
                    if idle:
                        await asyncio.sleep(wait or 0)
                        continue
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._progress.wait()
                    # More may finish at about the same time: one look for all of them.
                    await asyncio.sleep(_FED_SETTLE)
        except TimeoutError:
            if not self._halted:
                raise
        finally:
            self._stop_scope = None
            if ahead is not None:  # asked and never fed: its items wait for the next run
                ahead.add_done_callback(_retrieved)
        if first is not None:
            await first.put(END)
        else:
            self._end_output()

    async def _hand_over(self, writer: Writer) -> None:
        """Hand the writer what has finished now (not as a commit unless one is due)."""
        async with self._commit_turn:
            try:
                await writer.commit()
            except Exception as exc:
                self._fail_run(exc)
                raise

    def _keys_for(self, batch: list[Any], position: int) -> Sequence[Hashable]:
        # Position keys go as a range: the journal keeps those as spans, not key by key.
        key = self._key
        return [key(v) for v in batch] if key else range(position, position + len(batch))

    async def _feed(
        self,
        batch: list[Any],
        keys: Sequence[Hashable],
        checking: asyncio.Future[Sequence[bool]] | None,
        first: Channel[Any] | None,
    ) -> None:
        assert self._window_open is not None
        admitted = await checking if checking is not None else None
        if admitted is not None and all(admitted):
            admitted = None  # the common case: nothing to skip, no check per item
        # Envelopes go in together (one hand-over, one wake-up of this task per batch),
        # except that an ordered run first waits for room in its reorder window.
        ready: list[Envelope] = []
        for i, value in enumerate(batch):
            if admitted is not None and not admitted[i]:
                self._skipped += 1
                continue
            root = self._admitted + len(ready)
            if self._ordered and root - self._tracker.next_root >= self._window:
                await self._enter(ready, first)
                ready = []
                while root - self._tracker.next_root >= self._window:
                    self._window_open.clear()
                    await self._window_open.wait()
            self._tracker.admit(root, keys[i])
            for gate in self._gates.values():
                gate.admit(root)
            ready.append(Envelope(root, keys[i], value))
            if len(ready) == BATCH:
                # Envelopes are made as the first stage takes them, not a whole journal
                # batch (8,192) at once: fewer objects alive, and the caches keep up.
                await self._enter(ready, first)
                ready = []
        await self._enter(ready, first)

    async def _enter(self, envelopes: list[Envelope], first: Channel[Any] | None) -> None:
        """Put admitted envelopes into the first stage, refilling it when half empty."""
        done = 0
        try:
            while done < len(envelopes):
                if first is None:  # a pipeline without stages
                    self._admitted += 1
                    done += 1
                    await self._output(envelopes[done - 1])
                    continue
                await first.refill()
                entered = first.put_some(envelopes, done)
                self._admitted += entered - done
                done = entered
        except BaseException:
            for envelope in envelopes[done:]:  # stopped while waiting for room: never entered
                self._tracker.forget(envelope.root)
                for gate in self._gates.values():
                    gate.forget(envelope.root)
            raise

    async def _run_stage(self, stage: StageRunner, io: ThreadPoolExecutor) -> None:
        """Step 2: run one stage until its inbox ends, then end the next inbox."""
        last = stage.index == len(self._stages) - 1
        nxt = None if last else self._stages[stage.index + 1].inbox
        await stage.run(self._sink_of(stage.index), io)
        if nxt is not None:
            await nxt.put(END)
        else:
            self._end_output()

    def _sink_of(self, index: int) -> StageSink:
        """Where stage ``index`` sends items: the next stage's inbox, or straight into the
        next stage's processing when that one is fusible (see ``StageRunner.fusible``), or,
        in an ordered run, through the gate of the batch stage it feeds (``gate.py``),
        which also hears of every envelope born or ended upstream of it."""
        emit: Callable[[Envelope], Awaitable[None]]
        if index == len(self._stages) - 1:
            emit = self._output
        else:
            following = self._stages[index + 1]
            gate = self._gates.get(index + 1)
            if gate is not None:
                emit = gate.arrive
            elif following.fusible:
                emit = _fused(following.handle, self._sink_of(index + 1))
            else:
                emit = following.inbox.put
        sink = StageSink(emit, self._put_failure, self._put_drop, self._spawn)
        return watched(sink, [gate for at, gate in self._gates.items() if at > index])

    # -- step 3: the output, called by the last stage's workers ---------------------------
    #
    # Each envelope that reaches the end is counted, released through the tracker and
    # handed to the writer (or the consumer) right in the worker that finished it: no
    # queue and no task switch per item. The output never raises into a stage's code:
    # a failure of its own (or on_error="raise") ends the run through ``_ended``.

    async def _put_result(self, envelope: Envelope) -> None:
        self._results += 1
        if self._direct_results:
            # Every root is one envelope, in no order, and results go to the writer: the
            # tracker has nothing to hold, so the result goes straight over.
            writer = self._writer
            if self._finished_keys is not None:
                writer.add_done(envelope.value, envelope.key)
            else:
                writer.add_result(envelope.value)
            if writer.active and writer.due():
                await self._commit()
            return
        await self._deliver(envelope, (False, envelope.value), result=True)

    @property
    def _output(self) -> Callable[[Envelope], Awaitable[None]]:
        """Where results go: ``_put_result``, or ``_put_checked`` when a predicate says
        which results leave their key retryable (chosen once per stage, not per item)."""
        return self._put_result if self._retry_on_resume is None else self._put_checked

    def _put_checked(self, envelope: Envelope) -> Awaitable[None]:
        """``_put_result`` for a run given ``retry_on_resume``: one call of the predicate
        per result. A retryable result is written as any other, and its root is ended as
        a failure for the journal (the tracker keeps its root's first failure). Not a
        coroutine itself: it hands back the one its caller awaits, so a result that
        stays done costs the predicate's call and nothing more."""
        assert self._retry_on_resume is not None
        try:
            verdict = self._retry_on_resume(envelope.value)
            if verdict is None:
                return self._put_result(envelope)
            kind, attempts = (verdict, 1) if isinstance(verdict, str) else verdict
            kind, attempts = str(kind), int(attempts)
        except Exception as exc:  # the user's predicate: the run ends, as with on_error="raise"
            exc.add_note(f"conveyor: retry_on_resume raised on the result of {envelope.key!r}")
            self._fail_run(exc)
            return _done()
        self._results += 1
        return self._deliver(
            envelope, (False, envelope.value), failed=kind, attempts=attempts, result=True
        )

    async def _put_failure(self, envelope: Envelope, failure: Failure, exc: BaseException) -> None:
        if isinstance(exc, Deferred):  # not a failure: left for the next run (stages.py)
            if exc.reason == STOPPED and self._stopped:
                # Given up by its service at the stop with nothing sent: the root is not
                # ended (no output, no journal row), as an abort leaves what it cancels,
                # so the next run reads it again as if this one never had.
                return
            await self._deliver(envelope, NOTHING, deferred=exc.reason, until=exc.until)
            return
        self._record_failure(failure)
        if self._on_error == "raise":
            exc.add_note(
                f"conveyor: item {failure.key!r} failed in stage {failure.stage!r} "
                f"({failure.kind}, {failure.attempts} attempts)"
            )
            self._fail_run(exc)
            return
        failed, attempts = failure.kind, failure.attempts
        await self._deliver(envelope, (True, failure), failed=failed, attempts=attempts)

    async def _put_drop(self, envelope: Envelope, filtered: bool) -> None:
        if filtered:
            self._filtered += 1
        await self._deliver(envelope, NOTHING)

    def _spawn(self, root: int) -> None:
        self._tracker.spawn(root)

    async def _deliver(
        self,
        envelope: Envelope,
        output: Any,
        *,
        failed: str | None = None,
        attempts: int = 1,
        result: bool = False,
        deferred: str | None = None,
        until: float | None = None,
    ) -> None:
        if self._ended.done():
            return  # the run is failing: it is being cancelled
        released = self._tracker.end(
            envelope.roots(),
            envelope.pos,
            output,
            failed=failed,
            attempts=attempts,
            result=result,
            key=envelope.key,
            extra=envelope.extra,
            deferred=deferred,
            until=until,
        )
        if self._fed:
            self._progress.set()
        if self._ordered:
            assert self._window_open is not None
            self._window_open.set()
        if self._consumer is not None:
            if released:
                await self._to_consumer(released)
            return
        writer = self._writer
        for is_failure, value in released:
            if is_failure:
                writer.add_failure(value)
            else:
                writer.add_result(value)
        if writer.active and writer.due():
            await self._commit()

    async def _to_consumer(self, released: list[tuple[bool, Any]]) -> None:
        assert self._consumer is not None
        # Released in order, so put in that order: one worker's batch at a time.
        async with self._consumer_turn:
            for is_failure, value in released:
                if not is_failure or self._yield_failures:
                    await self._consumer.put(value)

    async def _commit(self) -> None:
        """Hand the writer what has gathered; one worker at a time, the others wait."""
        async with self._commit_turn:
            if not (self._writer.due() or self._writer.timely()):
                return  # another worker just did
            try:
                await self._writer.commit()
            except Exception as exc:  # the output failed (a full disk): the run ends
                self._fail_run(exc)

    def _fail_run(self, exc: BaseException) -> None:
        if not self._ended.done():
            self._ended.set_exception(exc)

    def _end_output(self) -> None:
        """The last stage has ended: nothing more reaches the output."""
        if not self._ended.done():
            self._ended.set_result(None)

    def _record_failure(self, failure: Failure) -> None:
        self._failed += 1
        self._by_kind[failure.kind] += 1
        if len(self._failures) < _FAILURES_KEPT:
            self._failures.append(failure)

    async def _tick(self) -> None:
        """A few times a second: a statistics event, and time-based commits."""
        while True:
            await asyncio.sleep(_TICK_SECONDS)
            try:
                self._look_at_tail()
            except Exception:  # a report of an unexpected shape: the notice, not the run
                if not self._tail_failed:
                    self._tail_failed = True
                    _log.exception("conveyor: the stall check failed; the run goes on")
            if self._bus.active:
                self._bus.emit(Tick(self.statistics()))
            if self._writer.active and (self._writer.due() or self._writer.timely()):
                await self._commit()

    # -- the run's tail: holds, deadline, finish_at, stalls --------------------------------

    def _take_up_holds(self, holds: Holds) -> None:
        """Hand the holds an earlier run kept to each stage whose factory takes them
        (``ports.Holding``), before any service opens or is shared to loop processes."""
        if not holds:
            return
        for stage in self._stages:
            stage.spec = holding(stage.spec, holds)

    def _holds(self) -> Holds | None:
        """The stages' services' holds now (``ports.HoldingReport``), for the journal to
        keep; None when no service's report has any to say."""
        merged: dict[str, tuple[str, float]] | None = None
        for stage in self._stages:
            report = stage.report()
            if isinstance(report, HoldingReport) and isinstance(report.holds, Mapping):
                merged = {} if merged is None else merged
                for key, (reason, until) in report.holds.items():
                    if key not in merged or merged[key][1] < until:
                        merged[key] = (reason, until)
        return merged

    def _tell(self, reason: str) -> None:
        """Every stage's service hears ``WindDown(reason, elapsed)``."""
        notice = WindDown(reason, time.perf_counter() - self._started)
        for stage in self._stages:
            stage.tell(notice)

    def _ended_roots(self) -> int:
        """Input items ended so far (results, failures, filtered, deferred)."""
        ended = self._tracker.ended
        return ended + self._results if self._direct_results else ended

    def _deadline_came(self) -> None:
        """The deadline: services wind down, the source ends, and after a short grace
        what is still in flight is cancelled (and recorded deferred: ``_defer_left``)."""
        if self._finished or self._cut:
            return
        self._cut = True
        assert self._loop is not None
        self._tell("deadline")
        if self._stop_scope is not None:
            self._stop_scope.reschedule(self._loop.time())
        self._loop.call_later(min(self._grace, _DEADLINE_GRACE), self._cut_rest)

    def _cut_rest(self) -> None:
        if self._loop is None or self._aborted or self._finished:
            return
        self._aborted = True
        if self._abort_scope is not None:
            self._abort_scope.reschedule(self._loop.time())

    def _defer_left(self) -> None:
        """After the deadline: the items still in flight end deferred ("deadline"), and
        the input not read is counted, when its length is known."""
        left = self._tracker.unfinished("deadline")
        if self._tracker.single:  # not kept one by one: only counted
            left = self._admitted - self._ended_roots()
            self._tracker.deferred["deadline"] += left
            self._tracker.ended += left
        if self._total is not None:
            self._unread = max(0, self._total - self._admitted - self._skipped)

    def _look_at_tail(self) -> None:
        """On each tick: ``finish_at`` reached? Nothing finishing, and not politely?"""
        ended = self._ended_roots()
        total = self._total
        if (
            self._finish_at is not None
            and not self._tail_told
            and total
            and ended + self._skipped >= self._finish_at * total
        ):
            self._tail_told = True
            self._tell("tail")
        watch = self._watch
        if watch is None:
            return
        now = time.perf_counter()
        if ended != self._last_ended or not any(s.flying for s in self._stages):
            self._last_ended = ended
            watch.progress(now)  # idle with nothing out is no stall either
            self._stall = None
            return
        stage = max(
            (s for s in self._stages if s.flying), key=lambda s: now - min(s.flying.values())
        )
        hosts = hosts_of(stage)
        seconds = watch.check(now, polite=held_politely(stage, hosts))
        if seconds is None:
            return
        oldest = oldest_in_flight({repr(e.key): t for e, t in stage.flying.items()}, now)
        self._stall = Stall(stage.spec.name, seconds, tuple(sorted(hosts)), tuple(oldest))
        _log.warning("conveyor: %s", self._stall.describe())

    # -- reporting ----------------------------------------------------------------------

    def statistics(self) -> RunStatistics:
        return RunStatistics(
            elapsed=time.perf_counter() - self._started,
            total=self._total,
            admitted=self._admitted,
            skipped=self._skipped,
            results=self._results,
            failed=self._failed,
            filtered=self._filtered,
            stages=tuple(s.snapshot() for s in self._stages),
            deferred=self._tracker.deferred.total(),
            stall=self._stall,
        )

    def _result(self) -> RunResult:
        results_dropped, failures_dropped = self._tracker.dropped  # of deferred roots
        return RunResult(
            items=self._admitted,
            results=self._results - results_dropped,
            failed=self._failed - failures_dropped,
            filtered=self._filtered,
            skipped=self._skipped,
            failures=tuple(self._failures),
            failures_by_kind=dict(self._by_kind),
            stages=tuple(s.snapshot(final=True) for s in self._stages),
            wall_seconds=time.perf_counter() - self._started,
            interrupted=self._stopped,
            failures_dropped=max(0, self._failed - failures_dropped - len(self._failures)),
            deferred=self._tracker.deferred.total(),
            deferred_by_reason=dict(self._tracker.deferred),
            unread=self._unread,
        )


async def _done() -> None:
    """An awaitable that does nothing."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Retrieve a future's outcome nobody awaits (asyncio warns of one left unread)."""
    if not future.cancelled():
        future.exception()


def _fused(
    handle: Callable[[Envelope, StageSink], Awaitable[None]], sink: StageSink
) -> Callable[[Envelope], Awaitable[None]]:
    def emit(envelope: Envelope) -> Awaitable[None]:
        return handle(envelope, sink)  # its coroutine, awaited by the caller: no extra frame

    return emit


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to show for a failed task group: the first real one, unwrapped."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return leaves[0] if leaves else group
