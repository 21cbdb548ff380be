"""Streaming faces: ``async for x in pipeline`` and ``for x in pipeline``.

The async iterator runs the runner as a task beside the consumer, in a task group the
iterator owns. The sync iterator runs that same async iterator on a background thread and
hands results over in small batches through a bounded thread-safe queue, so a slow
consumer slows the pipeline down instead of filling memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._engine.envelope import END
from .._engine.gil import in_thread
from .._engine.runner import Runner, first_error
from .._engine.threads import shutdown_executor
from .portal import run_on_new_loop

MakeRunner = Callable[["asyncio.Queue[Any]"], Runner]
_HANDOFF_BATCH = 256


async def iterate_async(make: MakeRunner) -> AsyncGenerator[Any, None]:
    results: asyncio.Queue[Any] = asyncio.Queue(256)
    runner = make(results)

    async def drive() -> None:
        await runner.run()
        await results.put(END)

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(drive())
            while (value := await results.get()) is not END:
                yield value
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    finally:
        # A consumer that stops early (break, aclose) must not leave the run going.
        runner.abort()


class _Closed(Exception):
    pass


def iterate_sync(make: MakeRunner) -> Iterator[Any]:
    handoff: queue.Queue[Any] = queue.Queue(4)
    closed = threading.Event()
    holder: dict[str, Runner] = {}

    def remember(q: asyncio.Queue[Any]) -> Runner:
        holder["runner"] = runner = make(q)
        return runner

    async def pump() -> None:
        hand = ThreadPoolExecutor(1, thread_name_prefix="conveyor-handoff")
        loop = asyncio.get_running_loop()
        try:
            async with contextlib.aclosing(iterate_async(remember)) as results:
                batch: list[Any] = []
                async for value in results:
                    batch.append(value)
                    if len(batch) >= _HANDOFF_BATCH or not _more_ready(holder):
                        await in_thread(loop.run_in_executor(hand, _put, handoff, closed, batch))
                        batch = []
                if batch:
                    await in_thread(loop.run_in_executor(hand, _put, handoff, closed, batch))
        finally:
            await shutdown_executor(hand)

    def target() -> None:
        outcome: Any = END
        try:
            run_on_new_loop(pump())
        except _Closed:
            return  # the consumer left: nobody to tell
        except BaseException as exc:
            outcome = exc
        with contextlib.suppress(_Closed):
            _put(handoff, closed, outcome)

    thread = threading.Thread(target=target, name="conveyor-iter")
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        closed.set()
        runner = holder.get("runner")
        if runner is not None:
            runner.threadsafe(runner.abort)
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.05)  # unblock a producer waiting on a full queue
        thread.join()


def _more_ready(holder: dict[str, Runner]) -> bool:
    """Whether more results are already waiting, so batching costs no latency."""
    runner = holder.get("runner")
    consumer = runner.consumer if runner is not None else None
    return consumer is not None and not consumer.empty()


def _put(handoff: queue.Queue[Any], closed: threading.Event, item: Any) -> None:
    while not closed.is_set():
        try:
            handoff.put(item, timeout=0.05)
            return
        except queue.Full:
            continue
    raise _Closed
