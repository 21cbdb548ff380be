"""Helpers that keep blocking work off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any


async def shutdown_executor(executor: ThreadPoolExecutor, *, cancel_futures: bool = False) -> None:
    """Shut a thread pool down and wait for its threads, without blocking the loop.

    ``executor.shutdown(wait=True)`` joins threads, which would block the loop; running it
    via ``run_in_executor`` would need yet another pool. A short-lived plain thread does
    the joining and wakes the loop when done.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    def join() -> None:
        executor.shutdown(wait=True, cancel_futures=cancel_futures)
        loop.call_soon_threadsafe(wake)

    joiner = threading.Thread(target=join, name="conveyor-shutdown", daemon=True)
    joiner.start()
    try:
        await asyncio.shield(done)
    finally:
        if done.done():
            joiner.join()


def take(iterator: Iterator[Any], limit: int, max_seconds: float) -> list[Any]:
    """Up to ``limit`` items from a blocking iterator, or fewer once ``max_seconds`` passed.

    Pulling in batches on a thread keeps per-item thread hand-offs off the hot path, and
    the time cap keeps a slow generator's first items from waiting for a whole batch.
    """
    batch: list[Any] = []
    deadline = time.monotonic() + max_seconds
    for value in iterator:
        batch.append(value)
        if len(batch) >= limit or time.monotonic() >= deadline:
            break
    return batch
