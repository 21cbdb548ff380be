"""Reading the source lazily, in batches, without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .gil import in_thread
from .threads import take

BATCH = 256
_BATCH_SECONDS = 0.02
# In-memory sequences cannot block, so they are read right on the loop.
_IN_MEMORY = (list, tuple, range, dict, set, frozenset, str, bytes)


def count_hint(source: Any) -> int | None:
    """How many items the source holds, when that is cheap to know."""
    if isinstance(source, _IN_MEMORY):
        return len(source)
    counter = getattr(source, "count", None)
    if callable(counter) and not isinstance(source, Iterator):
        try:
            total = counter()
        except TypeError:
            return None
        return total if isinstance(total, int) else None
    return None


async def read_batches(
    source: Any, io: ThreadPoolExecutor, size: int = BATCH
) -> AsyncGenerator[list[Any], None]:
    """Yield lists of up to ``size`` items; a slow generator still yields within ~20 ms of
    an item."""
    if hasattr(source, "__aiter__"):
        async for value in source:
            yield [value]
        return
    if isinstance(source, _IN_MEMORY):
        items = list(source) if isinstance(source, dict | set | frozenset) else source
        for start in range(0, len(items), size):
            yield list(items[start : start + size])
        return
    iterator = iter(source)
    loop = asyncio.get_running_loop()
    try:
        while True:
            batch = await in_thread(loop.run_in_executor(io, take, iterator, size, _BATCH_SECONDS))
            if not batch:
                return
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            # A generator must be closed on the thread that is allowed to run it.
            await asyncio.shield(loop.run_in_executor(io, close))
