"""How long a thread waits for the GIL while the event loop is busy, with and without
``GilYield`` (``_engine/gil.py``): the measurement behind it.

    .venv/bin/python benchmarks/gil.py

A thread job lets go of the GIL for 1 ms (``time.sleep``) and takes it back, over and
over, while the loop runs 100 tasks that never wait for anything but each other; the
figure is how many such jobs the thread finishes. Typical on a quiet 2-core machine: 1
without the yield, ~65 with it. Another process on the other core blurs it (the loop is
then descheduled and the thread runs), so this is a benchmark, not a test.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from conveyor._engine.gil import GilYield, in_thread


def thread_rounds_while_loop_is_busy(yielding: bool) -> int:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        gil = GilYield(loop)
        if yielding:
            gil.start()
        rounds = 0
        done = False

        async def jobs() -> None:
            nonlocal rounds
            while not done:
                await in_thread(loop.run_in_executor(None, time.sleep, 0.001))
                rounds += 1

        async def spin() -> None:
            for _ in range(3000):
                await asyncio.sleep(0)

        thread_jobs = asyncio.create_task(jobs())
        await asyncio.gather(*(spin() for _ in range(100)))
        done = True
        await thread_jobs
        gil.stop()
        return rounds

    return asyncio.run(main())


def main() -> None:
    starved = [thread_rounds_while_loop_is_busy(yielding=False) for _ in range(5)]
    served = [thread_rounds_while_loop_is_busy(yielding=True) for _ in range(5)]
    print(
        f"thread jobs done while the loop spins, medians of 5: without the yield "
        f"{statistics.median(starved)}, with it {statistics.median(served)}"
    )


if __name__ == "__main__":
    main()
