"""The writer: hands results, failures and journal commits to one background thread.

Sinks and journals are plain blocking code; they run on a single thread, in batches, so the
event loop never waits on a disk. One batch is on the thread at a time. A batch goes over
once ``WRITE_EVERY`` results have gathered and the thread is free; while it is busy,
results go on gathering, up to ``MAX_GATHERED``, and only then does the loop wait. So
batches grow to fit the thread: each hand-over costs the thread a wait for the GIL (up to
the interpreter's 5 ms switch interval while the loop is busy), and bigger batches pay
that less often. Memory stays bounded by ``MAX_GATHERED`` results and the batch in hand.

A *commit* makes the output durable and records it: every ``commit_every`` finished keys or
``commit_interval`` seconds, whichever first. Its order is what makes resume exact: write
the batch, ``flush()`` the sink to a durable position, and only then ``record()`` the
finished keys with that position. Keys finish no earlier than their results are handed
over, and the thread runs batches in order, so each commit covers every result of its keys.
Between commits, each batch ``stage()``s its finished keys in the journal's open
transaction, so a commit only has the last batch's keys left to store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._errors import SinkError
from .gil import in_thread
from .outcomes import Failure
from .ports import Holds, KeepsHolds, KeyOutcome, Ledger, Sink, Taken
from .threads import shutdown_executor
from .tracker import Finished

# Each hand-over costs the loop more than its bookkeeping: the thread then waits for the
# GIL (see gil.py), and a waiting thread is woken at every release of it. Fewer, bigger
# batches; the ticker still hands over whatever waits, once a second.
WRITE_EVERY = 1024
MAX_GATHERED = 8192


class Writer:
    def __init__(
        self,
        sink: Sink | None,
        open_ledger: Callable[[], Ledger] | None,
        thread: ThreadPoolExecutor,
        *,
        commit_every: int,
        commit_interval: float,
        finished: Finished | None = None,
        final_record: bool = False,
        holds: Callable[[], Holds | None] | None = None,
    ) -> None:
        self._sink = sink
        # The services' holds now (``ports.Holds``), asked at each commit for a ledger
        # that keeps them (``ports.KeepsHolds``); None: no service says.
        self._holds = holds
        # What the last commit wrote; None before the first (which writes what the
        # services say, so holds an earlier run kept and nobody holds now are dropped).
        self._holds_kept: dict[str, tuple[str, float]] | None = None
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._thread = thread
        # The journal answers admit() on a thread of its own, so a batch of keys never
        # waits behind a write and fsync on the writer thread.
        self._admitter = (
            ThreadPoolExecutor(1, thread_name_prefix="conveyor-journal") if open_ledger else None
        )
        self._admitting = 0  # admit() calls on the journal's thread not answered yet
        self._every = commit_every
        self._interval = commit_interval
        # A fed run's ledger keeps more than finished keys (a crawl's frontier: links read
        # from other shards, seeds): its last commit is made even when no key finished.
        self._final_record = final_record
        self._results: list[Any] = []
        self._failures: list[Failure] = []
        self._gathered = 0  # len(results) + len(failures), kept: due() runs for every item
        # Finished keys, filled by the run's RootTracker: what the next commit records.
        self.finished = finished if finished is not None else Finished()
        self._done = self.finished.done  # the same list for the whole run (see take)
        self._uncommitted = 0  # finished keys handed over (staged) since the last commit
        self._in_flight: asyncio.Future[None] | None = None  # the batch on the thread
        self._last_commit = time.monotonic()
        self._opened = False
        self._broken = False  # a write failed: write and record nothing more
        self._unflushed = False  # written since the last flush (set on the thread)
        self.active = sink is not None or open_ledger is not None

    async def open(self) -> None:
        await self._call(self._open)
        if self._ledger is not None:
            # The journal gets ready on the thread while the run begins; the first batch
            # waits for that there, as behind any batch in flight.
            loop = asyncio.get_running_loop()
            self._in_flight = in_thread(loop.run_in_executor(self._thread, self._prepare))

    def _open(self) -> None:
        # On the writer thread: SQLite connections belong to the thread that opened them.
        position = None
        if self._open_ledger is not None:
            self._ledger = self._open_ledger()
            position = self._ledger.sink_position
        if self._sink is not None:
            self._sink.open(position)
        self._opened = True

    def start_admit(self, keys: Sequence[Hashable]) -> asyncio.Future[Sequence[bool]]:
        """Ask the journal, on its thread, which keys to run; await the answer later."""
        assert self._ledger is not None
        assert self._admitter is not None
        loop = asyncio.get_running_loop()
        if not self._admitting:  # in order: nothing asked of the thread is still pending
            answer = self._ledger.admit_now(keys)
            if answer is not None:
                # A thread hop costs more than such an answer: the result must wait for
                # the GIL to come back to the loop (see gil.py).
                now = loop.create_future()
                now.set_result(answer)
                return now
        self._admitting += 1
        future = in_thread(loop.run_in_executor(self._admitter, self._ledger.admit, keys))
        future.add_done_callback(self._admitted)
        return future

    def _admitted(self, _: object) -> None:
        self._admitting -= 1

    def add_result(self, value: Any) -> None:
        if self._sink is not None:
            self._results.append(value)
            self._gathered += 1

    def add_done(self, value: Any, key: Hashable) -> None:
        """A result that finished its key: the runner's common case, in one call."""
        if self._sink is not None:
            self._results.append(value)
            self._gathered += 1
        self._done.append(key)

    def add_failure(self, failure: Failure) -> None:
        if self._sink is not None:
            self._failures.append(failure)
            self._gathered += 1

    def due(self) -> bool:
        """Whether to hand over what has gathered, by count: asked after every item, so
        the common answer costs two comparisons (``timely`` asks the clock)."""
        gathered = self._gathered
        if gathered < WRITE_EVERY and len(self._done) < WRITE_EVERY:
            return False
        if self._in_flight is not None and not self._in_flight.done():
            return gathered >= MAX_GATHERED  # the thread is busy: go on gathering
        return True

    def timely(self) -> bool:
        """Whether something waits (holds that changed count: a site's pause must be kept
        even while nothing finishes) and ``commit_interval`` has passed since the last
        commit."""
        if time.monotonic() - self._last_commit < self._interval:
            return False
        return bool(self._gathered or len(self.finished)) or self._holds_changed()

    def _holds_changed(self) -> bool:
        holds = self.holds_now()
        return holds is not None and dict(holds) != self._holds_kept

    async def commit(self, *, final: bool = False) -> None:
        """Hand what has gathered to the thread, as a commit when one is due (or ``final``).

        Waits only while the previous batch is still being written, and before it takes
        anything: a commit cancelled in that wait (the run's tick, cancelled as the run
        ends) leaves what has gathered for the next one. Taken first, it was lost with
        the cancelled commit: the run's last results were never written, its count said
        they were, and it exited 0 (a busy CI run lost 4 of 60 rows so).
        """
        await self._wait_in_flight()
        now = time.monotonic()
        timely = final or now - self._last_commit >= self._interval
        results, self._results = self._results, []
        failures, self._failures = self._failures, []
        self._gathered = 0
        outcomes: tuple[list[Hashable], list[KeyOutcome]] | None = None
        extras: list[tuple[Hashable, Any]] = []
        if self._ledger is not None:
            outcomes = self.finished.take()
            extras = self.finished.take_extras()
            self._uncommitted += len(outcomes[0]) + len(outcomes[1])
        durable = self._ledger is not None and (timely or self._uncommitted >= self._every)
        if durable or timely:
            self._last_commit = now
        holds = self.holds_now() if durable else None
        if holds is not None and dict(holds) == self._holds_kept:
            holds = None  # unchanged: nothing to write
        if durable:
            if not (
                results
                or failures
                or self._uncommitted
                or holds is not None
                or (final and self._final_record)
            ):
                return
            self._uncommitted = 0
        elif not (results or failures or (outcomes and (outcomes[0] or outcomes[1]))):
            return
        if holds is not None:
            self._holds_kept = dict(holds)
        loop = asyncio.get_running_loop()
        self._in_flight = in_thread(
            loop.run_in_executor(
                self._thread, self._write, results, failures, outcomes, extras, durable, holds
            )
        )

    def holds_now(self) -> Holds | None:
        """The services' holds, when the ledger keeps them and a service says (asked on
        the loop, once a commit)."""
        if self._holds is None or not isinstance(self._ledger, KeepsHolds):
            return None
        return self._holds()

    def held(self) -> Holds:
        """The holds the ledger kept from earlier runs (none without one that keeps
        them): for the stages' factories (``ports.Holding``), once it is open."""
        ledger = self._ledger
        return ledger.held() if isinstance(ledger, KeepsHolds) else {}

    def take(self, limit: int) -> asyncio.Future[Taken]:
        """Items from the ledger, for a run it feeds (``ports.Feed``): asked on the thread,
        after every batch handed over before, so it sees what they stored. Await the
        answer when it is needed (a take may be asked ahead, while the last is fed in)."""
        assert self._ledger is not None
        # Never awaited (an abort), what it took is the ledger's to give back: a new run
        # of the job takes it again.
        loop = asyncio.get_running_loop()
        return in_thread(loop.run_in_executor(self._thread, self._ledger.take, limit))

    async def _wait_in_flight(self) -> None:
        # Shielded: if this task is cancelled, finish() still waits for the batch.
        batch = self._in_flight
        if batch is None:
            return
        try:
            await asyncio.shield(batch)
        finally:
            if batch.done():
                self._in_flight = None

    def _prepare(self) -> None:
        assert self._ledger is not None
        with self._breaking_on_error():  # not ready: write and record nothing
            self._ledger.prepare()

    def _write(
        self,
        results: list[Any],
        failures: list[Failure],
        outcomes: tuple[list[Hashable], list[KeyOutcome]] | None,
        extras: list[tuple[Hashable, Any]],
        durable: bool,
        holds: Holds | None = None,
    ) -> None:
        if self._broken:
            return
        sink, ledger = self._sink, self._ledger
        # The output may end in a partial write: commit nothing after it. The journal
        # still points at the last good position, so a resume cuts it off.
        with self._breaking_on_error():
            position = None
            if sink is not None:
                if results:
                    sink.write(results)
                if failures:
                    sink.write_failures(failures)
                self._unflushed = True
                if durable:
                    position = sink.flush()
                    self._unflushed = False
            if outcomes is not None and ledger is not None:
                done, others = outcomes
                if durable:
                    if holds is not None and isinstance(ledger, KeepsHolds):
                        ledger.hold(holds)  # written in the record's transaction
                    ledger.record(others, position, done, extras)
                elif done or others:
                    ledger.stage(others, done, extras)

    @contextlib.contextmanager
    def _breaking_on_error(self) -> Iterator[None]:
        """On the thread: after an error, write and record nothing more."""
        try:
            yield
        except BaseException as exc:
            self._broken = True
            if isinstance(exc, OSError) and not isinstance(exc, SinkError):
                raise SinkError(f"cannot write the output: {exc.strerror or exc}") from exc
            raise

    async def finish(self) -> None:
        """Write what is left, flush, and close the sink and the journal (also after errors)."""
        error: BaseException | None = None
        try:
            if self._opened:
                await self.commit(final=True)
                await self._wait_in_flight()
                if self._sink is not None and self._unflushed and not self._broken:
                    await self._call(self._sink.flush)
        except BaseException as exc:
            error = exc
        finally:
            self._in_flight = None  # one left runs before _close: the thread keeps order
            if self._admitter is not None:  # no admit may run while the journal closes
                await shutdown_executor(self._admitter, cancel_futures=True)
            await self._call(self._close)
        if error is not None:
            raise error

    def _close(self) -> None:
        try:
            if self._sink is not None and self._opened:
                self._sink.close()
        finally:
            if self._ledger is not None:
                self._ledger.close()

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await in_thread(loop.run_in_executor(self._thread, fn, *args))
        except OSError as exc:
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"cannot write the output: {exc.strerror or exc}") from exc
