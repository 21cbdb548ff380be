"""The writer: hands results, failures and journal commits to one background thread.

Sinks and journals are plain blocking code; they run on a single thread, in batches, so the
event loop never waits on a disk. At most one batch is being written while the next one
fills, which overlaps I/O with processing and bounds memory to two batches.

Commit order is what makes resume exact: write the batch, ``flush()`` the sink to a durable
position, and only then ``record()`` the finished keys with that position.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._errors import SinkError
from .outcomes import Failure
from .ports import KeyOutcome, Ledger, Sink


class Writer:
    def __init__(
        self,
        sink: Sink | None,
        open_ledger: Callable[[], Ledger] | None,
        thread: ThreadPoolExecutor,
        *,
        failures_to_sink: bool,
        commit_every: int,
        commit_interval: float,
    ) -> None:
        self._sink = sink
        self._open_ledger = open_ledger
        self._ledger: Ledger | None = None
        self._thread = thread
        self._failures_to_sink = failures_to_sink
        self._every = commit_every
        self._interval = commit_interval
        self._results: list[Any] = []
        self._failures: list[Failure] = []
        self._outcomes: list[KeyOutcome] = []
        self._in_flight: asyncio.Future[None] | None = None
        self._last_commit = time.monotonic()
        self._opened = False
        self._broken = False  # a write failed: write and record nothing more
        self.commits = 0

    @property
    def active(self) -> bool:
        return self._sink is not None or self._open_ledger is not None

    async def open(self) -> None:
        await self._call(self._open)

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
        """Ask the journal, on the writer thread, which keys to run; await the answer later."""
        assert self._ledger is not None
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._thread, self._ledger.admit, keys)

    def add_result(self, value: Any) -> None:
        if self._sink is not None:
            self._results.append(value)

    def add_failure(self, failure: Failure) -> None:
        if self._sink is not None and self._failures_to_sink:
            self._failures.append(failure)

    def add_outcomes(self, outcomes: list[KeyOutcome]) -> None:
        if self._ledger is not None:
            self._outcomes.extend(outcomes)

    def due(self) -> bool:
        waiting = len(self._results) + len(self._failures) + len(self._outcomes)
        if not waiting:
            return False
        return waiting >= self._every or time.monotonic() - self._last_commit >= self._interval

    async def commit(self) -> None:
        """Start writing what has gathered; wait first for the previous batch, if any."""
        if self._in_flight is not None:
            previous, self._in_flight = self._in_flight, None
            await previous
        results, self._results = self._results, []
        failures, self._failures = self._failures, []
        outcomes, self._outcomes = self._outcomes, []
        self._last_commit = time.monotonic()
        if results or failures or outcomes:
            loop = asyncio.get_running_loop()
            self._in_flight = loop.run_in_executor(
                self._thread, self._write, results, failures, outcomes
            )

    def _write(
        self, results: list[Any], failures: list[Failure], outcomes: list[KeyOutcome]
    ) -> None:
        if self._broken:
            return
        sink, ledger = self._sink, self._ledger
        try:
            position = None
            if sink is not None:
                if results:
                    sink.write(results)
                if failures:
                    sink.write_failures(failures)
                if ledger is not None:
                    position = sink.flush()
            if ledger is not None:
                ledger.record(outcomes, position)
        except BaseException as exc:
            # The output may now end in a partial write: commit nothing after it. The
            # journal still points at the last good position, so a resume cuts it off.
            self._broken = True
            if isinstance(exc, OSError) and not isinstance(exc, SinkError):
                raise SinkError(f"cannot write the output: {exc.strerror or exc}") from exc
            raise
        self.commits += 1

    async def finish(self) -> None:
        """Write what is left, flush, and close the sink and the journal (also after errors)."""
        error: BaseException | None = None
        try:
            if self._opened:
                await self.commit()
                if self._in_flight is not None:
                    await self._in_flight
                if self._sink is not None and not self._broken:
                    await self._call(self._sink.flush)
        except BaseException as exc:
            error = exc
        finally:
            self._in_flight = None
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
            return await loop.run_in_executor(self._thread, fn, *args)
        except OSError as exc:
            if isinstance(exc, SinkError):
                raise
            raise SinkError(f"cannot write the output: {exc.strerror or exc}") from exc
