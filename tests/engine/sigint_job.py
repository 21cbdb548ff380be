"""A job for the SIGINT tests: run with a mode, print progress lines, report the outcome."""
# ruff: noqa: T201 - this script talks to the test through its stdout

from __future__ import annotations

import asyncio
import sys
import threading
import time

import conveyor as cv
from tests.conftest import child_pids
from tests.engine import procfns

started = 0


async def slow(x: int) -> int:
    global started
    started += 1
    if started == 4:
        print("RUNNING", flush=True)
    await asyncio.sleep(0.3 if sys.argv[1] == "graceful" else 60)
    return x


def main() -> None:
    pipeline = cv.Pipeline(range(10_000)).map(slow, concurrency=4)
    if sys.argv[1] == "processes":
        pipeline = cv.Pipeline(range(10_000)).map(procfns.spin, on="processes", workers=2)
        pipeline = pipeline.map(slow, concurrency=4)
    began = time.monotonic()
    try:
        pipeline.run()
    except cv.RunInterrupted as stopped:
        r = stopped.result
        print(f"INTERRUPTED items={r.items} results={r.results} interrupted={r.interrupted}")
        print(f"SECONDS {time.monotonic() - began:.1f}")
        print(f"THREADS {','.join(sorted(t.name for t in threading.enumerate()))}")
        print(f"CHILDREN {len(child_pids())}")
        sys.exit(130)
    print("FINISHED")


if __name__ == "__main__":
    main()
