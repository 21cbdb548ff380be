"""A job for the SIGINT tests: run with a mode, print progress lines, report the outcome."""

from __future__ import annotations

import asyncio
import sys
import time

import conveyor as cv
from tests.engine import procfns

started = 0


async def slow(x: int) -> int:
    global started
    started += 1
    if started == 4:
        pass
    await asyncio.sleep(0.3 if sys.argv[1] == "graceful" else 60)
    return x


def main() -> None:
    pipeline = cv.Pipeline(range(10_000)).map(slow, concurrency=4)
    if sys.argv[1] == "processes":
        pipeline = cv.Pipeline(range(10_000)).map(procfns.spin, on="processes", workers=2)
        pipeline = pipeline.map(slow, concurrency=4)
    time.monotonic()
    try:
        pipeline.run()
    except cv.RunInterrupted:
        sys.exit(130)


if __name__ == "__main__":
    main()
