"""A busy event loop must not starve the run's threads (writer, journal, thread stages)."""

from __future__ import annotations

import asyncio
import threading
import time

from conveyor._engine.gil import GilYield


def thread_progress_while_loop_is_busy(yielding: bool) -> int:
    """Rounds a thread completes (each: let go of the GIL, then take it back) while the
    loop runs 100 tasks that never wait for anything but each other."""
    rounds = 0
    stop = threading.Event()

    def helper() -> None:
        nonlocal rounds
        while not stop.is_set():
            time.sleep(0.001)
            rounds += 1

    async def busy() -> None:
        gil = GilYield(asyncio.get_running_loop())
        if yielding:
            gil.start()

        async def spin() -> None:
            for _ in range(3000):
                await asyncio.sleep(0)

        await asyncio.gather(*(spin() for _ in range(100)))
        gil.stop()

    thread = threading.Thread(target=helper)
    thread.start()
    try:
        asyncio.run(busy())
    finally:
        stop.set()
        thread.join()
    return rounds


def test_a_thread_gets_the_gil_while_the_loop_is_busy() -> None:
    starved = thread_progress_while_loop_is_busy(yielding=False)
    served = thread_progress_while_loop_is_busy(yielding=True)
    # Without the yield a waiting thread gets the GIL only every few hundred ms.
    assert served > 5 * max(starved, 1), (starved, served)
