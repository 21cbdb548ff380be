"""A pool of worker processes that fails only the item that broke a worker.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when one worker dies,
failing every pending future. Here each worker has its own pipe and a two-slot shared array
holding the index and start time of the item it is running, so when a worker dies or
overruns the deadline only that item fails; the rest of its chunk goes back to the queue
and a fresh worker takes the dead one's place.

Small items travel in chunks sized from the measured cost per item (about 20 ms of work per
chunk), so pickling and pipe round-trips do not dominate. Pipe I/O and pickling happen on
one host thread per worker, never on the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import math
import multiprocessing
import multiprocessing.connection
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from .._errors import ItemTimeout, UsageError, WorkerCrashed
from ._worker import worker_main
from .gil import in_thread
from .guard import UNGUARDED_EXIT, refuse_in_bootstrap, unguarded_message
from .threads import shutdown_executor

_CHUNK_SECONDS = 0.02  # aim for this much work per chunk
_MAX_CHUNK = 64
_POLL = 0.05  # how often a host thread checks a worker's deadline


@dataclass(frozen=True, slots=True)
class ProcessPoolStatistics:
    workers: int
    busy: int
    pending: int
    chunk_size: int
    restarts: int


class _Worker:
    def __init__(self, ctx: Any, fn_bytes: bytes) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.state = ctx.RawArray("d", 2)
        self.state[0] = -1
        self.process: BaseProcess = ctx.Process(
            target=worker_main, args=(child_conn, fn_bytes, self.state), daemon=True
        )
        self.process.start()
        child_conn.close()
        self._stopped = False

    def wait_ready(self) -> None:
        try:
            if not self.conn.poll(60):
                raise UsageError("a worker process did not start within 60 s")
            tag, detail = self.conn.recv()
        except (EOFError, OSError):
            code = self._exitcode()
            if code == UNGUARDED_EXIT:
                self.stop()
                raise UsageError(
                    f"a worker process could not start: {unguarded_message('worker process')}"
                ) from None
            tag, detail = "init-error", f"the process exited with code {code}"
        if tag != "ready":
            self.stop()
            raise UsageError(
                f"a worker process could not load the stage function ({detail}); "
                "define it in an importable module, and guard the script's entry point "
                "with `if __name__ == '__main__':`"
            )

    def _exitcode(self) -> int | None:
        self.process.join(1)
        return self.process.exitcode

    def run_chunk(self, values: list[Any], timeout: float | None) -> tuple[str, Any]:
        """Blocking: send a chunk and wait for its results, a crash or an overrun."""
        try:
            self.conn.send(values)
        except (OSError, ValueError):
            return "crashed", (0, self._exitcode())
        sentinel = self.process.sentinel
        while True:
            ready = multiprocessing.connection.wait([self.conn, sentinel], _POLL)
            if self.conn in ready:
                try:
                    return "done", self.conn.recv()
                except (EOFError, OSError):
                    pass  # died while sending: fall through to the crash report
            if self.conn in ready or sentinel in ready:
                return "crashed", (max(0, int(self.state[0])), self._exitcode())
            if timeout is not None and self.state[0] >= 0:
                if time.monotonic() - self.state[1] > timeout:
                    index = int(self.state[0])
                    self.stop()
                    return "timeout", index

    def stop(self) -> None:
        """Blocking: ask the worker to leave, then make sure it has. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
            self.process.join(0.5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.process.close()


_Pending = tuple[Any, "asyncio.Future[Any]"]


class ProcessPool:
    """Runs a picklable function on ``workers`` processes; ``await pool.call(value)``."""

    def __init__(self, fn_bytes: bytes, *, workers: int, timeout: float | None, name: str) -> None:
        self._fn_bytes = fn_bytes
        self._size = workers
        self._timeout = timeout
        self._name = name
        self._ctx = multiprocessing.get_context("spawn")
        self._pending: collections.deque[_Pending] = collections.deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix=f"conveyor-{name}-io")
        self._workers: list[_Worker | None] = [None] * workers
        self._busy = 0
        self._per_item = 0.0  # moving average of seconds per item, 0 until measured
        self._restarts = 0

    async def start(self) -> None:
        refuse_in_bootstrap()  # an unguarded script, re-run inside a worker: see guard.py
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._threads, self._start_worker, i) for i in range(self._size))
        )

    def _start_worker(self, slot: int) -> None:
        worker = _Worker(self._ctx, self._fn_bytes)
        self._workers[slot] = worker
        worker.wait_ready()

    async def serve(self) -> None:
        """Feed chunks to every worker until ``close()``; run this as a task of the stage."""
        async with asyncio.TaskGroup() as group:
            for slot in range(self._size):
                group.create_task(self._feed(slot))

    async def call(self, value: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((value, future))
        self._wakeup.set()
        return await future

    def close(self) -> None:
        self._closing = True
        self._wakeup.set()

    async def shutdown(self) -> None:
        """Stop every worker process and the host threads (after ``serve`` returned)."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._threads, w.stop) for w in self._workers if w is not None)
        )
        self._workers = [None] * self._size
        await shutdown_executor(self._threads)

    def _chunk_size(self) -> int:
        if self._per_item <= 0:
            return 1
        wanted = max(1, min(_MAX_CHUNK, int(_CHUNK_SECONDS / self._per_item)))
        # Share what is waiting among the workers rather than hand it all to one.
        fair = max(1, math.ceil(len(self._pending) / self._size))
        return min(wanted, fair)

    def _take_chunk(self) -> list[_Pending]:
        chunk: list[_Pending] = []
        size = self._chunk_size()
        while self._pending and len(chunk) < size:
            value, future = self._pending.popleft()
            if not future.done():  # the caller may have given up (cancelled) meanwhile
                chunk.append((value, future))
        return chunk

    async def _feed(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending and not self._closing:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._closing and not self._pending:
                return
            chunk = self._take_chunk()
            if not chunk:
                continue
            worker = self._workers[slot]
            assert worker is not None
            self._busy += 1
            try:
                outcome, detail = await in_thread(
                    loop.run_in_executor(
                        self._threads, worker.run_chunk, [v for v, _ in chunk], self._timeout
                    )
                )
            except BaseException:
                # Cancelled: the worker may be mid-chunk; kill it so its thread returns.
                worker.process.kill()
                for _, future in chunk:
                    future.cancel()
                raise
            finally:
                self._busy -= 1
            if outcome == "done":
                self._settle(chunk, detail)
            else:
                await self._replace(slot, worker)
                self._fail_one(chunk, outcome, detail)

    def _settle(self, chunk: list[_Pending], detail: tuple[float, list[tuple[bool, Any]]]) -> None:
        seconds, results = detail
        per_item = seconds / max(1, len(results))
        self._per_item = per_item if self._per_item <= 0 else 0.7 * self._per_item + 0.3 * per_item
        for (_, future), (ok, value) in zip(chunk, results, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _fail_one(self, chunk: list[_Pending], outcome: str, detail: Any) -> None:
        """Fail the item that was running; send the rest of the chunk round again."""
        if outcome == "timeout":
            index = int(detail)
            error: Exception = ItemTimeout(
                f"took longer than {self._timeout} s in a worker process (the worker was replaced)"
            )
        else:
            index, exitcode = detail
            error = WorkerCrashed(
                f"the worker process died (exit code {exitcode}) while running this item"
            )
        index = min(index, len(chunk) - 1)
        _, future = chunk[index]
        if not future.done():
            future.set_exception(error)
        # Items before ``index`` finished but their results died with the worker; run again.
        for pending in reversed(chunk[:index] + chunk[index + 1 :]):
            self._pending.appendleft(pending)
        self._wakeup.set()

    async def _replace(self, slot: int, dead: _Worker) -> None:
        loop = asyncio.get_running_loop()
        self._restarts += 1
        self._workers[slot] = None
        await loop.run_in_executor(self._threads, dead.stop)
        await loop.run_in_executor(self._threads, self._start_worker, slot)

    @property
    def restarts(self) -> int:
        """Worker processes replaced after dying or overrunning their deadline."""
        return self._restarts

    def statistics(self) -> ProcessPoolStatistics:
        return ProcessPoolStatistics(
            workers=self._size,
            busy=self._busy,
            pending=len(self._pending),
            chunk_size=self._chunk_size(),
            restarts=self._restarts,
        )
