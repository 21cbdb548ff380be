"""A job for the deferred-items kill test, run in a child process that the test kills.

    python -m tests.engine.defer_job MODE OUTPUT JOURNAL INPUT

MODE ``threads`` runs each line through ``defer_fns.line_number`` on threads; ``loops``
through an async twin of it on two loop processes. Which items defer is read from
``CONVEYOR_TEST_DEFER`` (``defer_fns``). Prints the run's counts when it ends.
"""
# ruff: noqa: T201 - this script talks to the test through its stdout

from __future__ import annotations

import asyncio
import sys
from typing import Any

import conveyor as cv
from conveyor._io import read_lines

from . import defer_fns


def own_key(line: str) -> str:
    return line


async def line_number(line: str) -> dict[str, Any]:
    n = int(line.rpartition("-")[2])
    await asyncio.sleep(0.005)
    defer_fns.check(n)
    return {"key": line, "n": n}


def main() -> int:
    mode, output, journal, source = sys.argv[1:5]
    pipeline = cv.Pipeline(read_lines(source), key=own_key)
    if mode == "threads":
        pipeline = pipeline.map(defer_fns.line_number, on="threads", workers=4)
        result = pipeline.run(output, journal=journal)
    else:
        pipeline = pipeline.map(line_number, concurrency=8)
        result = pipeline.run(output, journal=journal, loops=2)
    print(f"DONE results={result.results} deferred={result.deferred} skipped={result.skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
