"""Where a stage's function runs: inline, on the loop, on threads, on worker processes,
or on loop processes (``on="auto"`` measures and picks one of the first four: ``auto.py``;
``place.py`` makes the placement a spec asks for).

Each placement offers ``call(value)``, which runs the function once and raises
``ItemTimeout`` only when the stage's own deadline fired, and the verbs of a pool:
``start()``, ``serve()`` (run as a task of the stage until ``close()``) and
``shutdown()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import ItemTimeout
from .gil import in_thread
from .ports import StageReport
from .room import Room
from .spec import StageSpec
from .stats import StageCounters
from .threads import shutdown_executor

if TYPE_CHECKING:
    from .loops.warm import WarmLoops


class Placement:
    place = "inline"

    def __init__(self, fn: Callable[[Any], Any], spec: StageSpec) -> None:
        self.fn = fn
        self.timeout = spec.timeout
        self.abandoned = 0  # threads still running an item that already timed out
        self.counters: StageCounters | None = None  # the stage's, set before start()
        # Set by the stage before start(): run this many more worker tasks (a placement
        # whose calls start to travel, and want items waiting at the far end: grow.py).
        self.more_workers: Callable[[int], None] | None = None
        # Seats for the stage's workers beyond its slots (``room.py``), when the placement
        # opens the service that parks items itself (``GrowingLoops``, before its move).
        self.room: Room | None = None

    async def start(self) -> None:
        return None

    async def serve(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    def tell(self, notice: Any) -> None:
        """A notice from the run for the services this placement opened elsewhere (loop
        processes: each loop's ``Peered`` service hears it); here, none."""

    def report(self) -> StageReport | None:
        """What the function's service says of itself, when the placement holds it (loop
        processes: their reports, merged); else None."""
        return None

    @property
    def restarts(self) -> int:
        """Processes replaced after dying (worker or loop processes)."""
        return 0

    @property
    def direct(self) -> Callable[[Any], Any] | None:
        """An async function to await instead of ``call``, when there is nothing to add."""
        return None

    @property
    def inline(self) -> Callable[[Any], Any] | None:
        """A plain function to call instead of awaiting ``call``: the inline placement."""
        return self.fn if type(self) is Placement else None

    async def call(self, value: Any) -> Any:
        return self.fn(value)

    def _expired(self) -> ItemTimeout:
        return ItemTimeout(f"took longer than {self.timeout} s")


class LoopPlacement(Placement):
    place = "loop"

    @property
    def direct(self) -> Callable[[Any], Any] | None:
        """The coroutine function itself when no timeout wraps it: the stage awaits its
        coroutine straight away, one frame less per item."""
        return self.fn if self.timeout is None else None

    async def call(self, value: Any) -> Any:
        if self.timeout is None:
            return await self.fn(value)
        try:
            async with asyncio.timeout(self.timeout) as scope:
                return await self.fn(value)
        except TimeoutError:
            if scope.expired():  # our deadline, not a TimeoutError raised by the function
                raise self._expired() from None
            raise


class ThreadPlacement(Placement):
    place = "threads"

    def __init__(self, fn: Callable[[Any], Any], spec: StageSpec) -> None:
        super().__init__(fn, spec)
        self._pool = ThreadPoolExecutor(spec.workers, thread_name_prefix=f"conveyor-{spec.name}")

    async def call(self, value: Any) -> Any:
        job = self._pool.submit(self.fn, value)
        waiter = in_thread(asyncio.wrap_future(job))
        if self.timeout is None:
            return await waiter
        try:
            async with asyncio.timeout(self.timeout) as scope:
                return await waiter
        except TimeoutError:
            if not scope.expired():
                raise
            if not job.cancel():
                # A thread cannot be stopped: count it until it finishes on its own.
                self.abandoned += 1
                loop = asyncio.get_running_loop()
                job.add_done_callback(lambda _: loop.call_soon_threadsafe(self._finished))
            raise self._expired() from None

    def _finished(self) -> None:
        self.abandoned -= 1

    async def shutdown(self) -> None:
        await shutdown_executor(self._pool, cancel_futures=True)


class Pool(Protocol):
    """What a placement that runs its calls on a pool of processes asks of the pool: the
    verbs ``ProcessPool`` and ``LoopPool`` share."""

    @property
    def restarts(self) -> int: ...

    async def start(self) -> None: ...

    async def serve(self) -> None: ...

    def close(self) -> None: ...

    async def shutdown(self) -> None: ...


class _Pooled(Placement):
    """A placement whose calls run on a pool of processes: the verbs go to the pool."""

    pool: Pool

    async def start(self) -> None:
        await self.pool.start()

    async def serve(self) -> None:
        await self.pool.serve()

    def close(self) -> None:
        self.pool.close()

    async def shutdown(self) -> None:
        await self.pool.shutdown()

    @property
    def restarts(self) -> int:
        return self.pool.restarts


class ProcessPlacement(_Pooled):
    place = "processes"

    def __init__(self, fn: Callable[[Any], Any], spec: StageSpec) -> None:
        super().__init__(fn, spec)
        assert spec.fn_bytes is not None
        from .processes import ProcessPool  # here: multiprocessing loads only when used

        self.pool = self.processes = ProcessPool(
            spec.fn_bytes, workers=spec.workers, timeout=spec.timeout, name=spec.name
        )

    async def call(self, value: Any) -> Any:
        return await self.processes.call(value)


class LoopsPlacement(_Pooled):
    """The head of the pipeline on loop processes (``loops/``); ``call`` routes."""

    place = "loops"

    def __init__(
        self, fn: Callable[[Any], Any], spec: StageSpec, warm: WarmLoops | None = None
    ) -> None:
        super().__init__(fn, spec)
        from .loops.pool import LoopPool  # here: a run with one loop never loads it

        self.pool = self.loops = LoopPool.for_head(spec, warm)

    async def start(self) -> None:
        if self.counters is not None:
            self.loops.on_retries = self._count_retries
        await self.loops.start()

    def report(self) -> StageReport | None:
        return self.loops.report()

    def tell(self, notice: Any) -> None:
        self.loops.tell(notice)

    def _count_retries(self, retries: int) -> None:
        assert self.counters is not None
        self.counters.retried += retries

    def call(self, value: Any) -> Any:  # a future, awaited as the coroutine would be
        return self.loops.call(value)
