"""Engine benchmarks, each against what a user would write by hand, in the same run.

    .venv/bin/python benchmarks/engine.py            # full: 5 interleaved repeats
    .venv/bin/python benchmarks/engine.py --quick    # 3 repeats, smaller memory case

Every measurement runs in a fresh subprocess (so one case's memory or warm caches cannot
help another), the contenders are interleaved (A B C A B C …, so a noisy neighbour hits
all of them alike), and the report gives medians and ratios.

1. overhead: 100,000 no-op ``async def`` items through conveyor vs ``asyncio.gather`` over
   a semaphore vs aiometer, all with concurrency 100 on the same loop type (uvloop).
2. cpu: 2,000 items of ~1 ms pure-Python work on ``processes`` (2 workers) vs ``threads``.
3. memory: peak RSS for N items through a 3-stage pipeline vs ``asyncio.gather`` of all N.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


# -- the cases, each run in its own process: `engine.py --case NAME ARGS...` ------------------


async def _noop(x: int) -> int:
    return x


def case_conveyor_overhead(n: int) -> float:
    import conveyor as cv

    began = time.perf_counter()
    result = cv.Pipeline(range(n)).map(_noop, concurrency=100).run()
    assert result.results == n
    return time.perf_counter() - began


def case_gather_overhead(n: int) -> float:
    import asyncio

    import uvloop

    async def main() -> None:
        semaphore = asyncio.Semaphore(100)

        async def one(x: int) -> int:
            async with semaphore:
                return await _noop(x)

        results = await asyncio.gather(*(one(x) for x in range(n)))
        assert len(results) == n

    began = time.perf_counter()
    uvloop.run(main())
    return time.perf_counter() - began


def case_aiometer_overhead(n: int) -> float:
    import aiometer
    import uvloop

    async def main() -> None:
        jobs = [functools.partial(_noop, x) for x in range(n)]
        results = await aiometer.run_all(jobs, max_at_once=100)
        assert len(results) == n

    began = time.perf_counter()
    uvloop.run(main())
    return time.perf_counter() - began


def spin(n: int) -> int:
    """About 1 ms of pure-Python CPU work."""
    deadline = time.perf_counter() + 0.001
    x = 0
    while time.perf_counter() < deadline:
        x += 1
    return n


def case_cpu(n: int, on: str) -> float:
    import conveyor as cv

    sys.path.insert(0, str(HERE))
    from engine import spin as importable_spin  # workers import it by module name

    began = time.perf_counter()
    result = cv.Pipeline(range(n)).map(importable_spin, on=on, workers=2).run()
    assert result.results == n
    return time.perf_counter() - began


async def _parse(x: int) -> dict[str, int]:
    return {"n": x}


async def _enrich(record: dict[str, int]) -> int:
    return record["n"] * 2


def case_memory_conveyor(n: int) -> float:
    import conveyor as cv

    def source() -> Any:
        yield from range(n)

    began = time.perf_counter()
    result = cv.Pipeline(source()).map(_parse).filter(lambda r: r["n"] % 3 != 0).map(_enrich).run()
    assert result.items == n
    return time.perf_counter() - began


def case_memory_gather(n: int) -> float:
    import asyncio

    import uvloop

    async def one(x: int) -> int | None:
        record = await _parse(x)
        return await _enrich(record) if record["n"] % 3 else None

    async def main() -> None:
        results = await asyncio.gather(*(one(x) for x in range(n)))
        assert len(results) == n

    began = time.perf_counter()
    uvloop.run(main())
    return time.perf_counter() - began


CASES = {
    "conveyor-overhead": case_conveyor_overhead,
    "gather-overhead": case_gather_overhead,
    "aiometer-overhead": case_aiometer_overhead,
    "cpu": case_cpu,
    "memory-conveyor": case_memory_conveyor,
    "memory-gather": case_memory_gather,
}


# -- the driver ------------------------------------------------------------------------------


def measure(case: str, *args: object) -> dict[str, float]:
    """Run one case in a fresh interpreter; return its seconds and peak RSS in MiB."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--case", case, *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"case {case} {args} failed with exit code {proc.returncode}")
    return {"seconds": json.loads(out)["seconds"], "rss_mib": usage.ru_maxrss / 1024}


def interleaved(
    contenders: dict[str, tuple[Any, ...]], repeats: int
) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (case, *args) in contenders.items():
            runs[name].append(measure(case, *args))
    return runs


def median(runs: list[dict[str, float]], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller memory case")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.case:
        name, *raw = options.case
        args = [int(a) if a.isdigit() else a for a in raw]
        print(json.dumps({"seconds": CASES[name](*args)}))
        return

    repeats = 3 if options.quick else 5
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {repeats} interleaved repeats\n"
    )

    n = 100_000
    runs = interleaved(
        {
            "conveyor": ("conveyor-overhead", n),
            "gather+semaphore": ("gather-overhead", n),
            "aiometer": ("aiometer-overhead", n),
        },
        repeats,
    )
    ours = median(runs["conveyor"], "seconds")
    print(f"1. overhead, {n:,} no-op async items, concurrency 100 (median wall seconds)")
    for name, results in runs.items():
        secs = median(results, "seconds")
        print(
            f"   {name:<18} {secs:6.3f} s  {n / secs:>10,.0f} items/s  "
            f"conveyor is {secs / ours:4.2f}x as fast"
        )

    cpu_n = 2_000
    runs = interleaved(
        {"processes": ("cpu", cpu_n, "processes"), "threads": ("cpu", cpu_n, "threads")}, repeats
    )
    procs, threads = median(runs["processes"], "seconds"), median(runs["threads"], "seconds")
    print(f"\n2. cpu, {cpu_n:,} items of ~1 ms pure Python, 2 workers (median wall seconds)")
    print(f"   processes {procs:6.3f} s ({cpu_n / procs:,.0f} items/s)")
    print(f"   threads   {threads:6.3f} s ({cpu_n / threads:,.0f} items/s)")
    print(f"   processes give {threads / procs:4.2f}x the throughput of threads")

    sizes = (100_000, 1_000_000) if not options.quick else (20_000, 200_000)
    mem_repeats = 1 if options.quick else 2
    contenders: dict[str, tuple[Any, ...]] = {}
    for size in sizes:
        contenders[f"conveyor {size:,}"] = ("memory-conveyor", size)
        contenders[f"gather   {size:,}"] = ("memory-gather", size)
    runs = interleaved(contenders, mem_repeats)
    print("\n3. memory: peak RSS through a 3-stage pipeline (map, filter, map)")
    for name, results in runs.items():
        rss, secs = median(results, "rss_mib"), median(results, "seconds")
        print(f"   {name:<20} {rss:8.1f} MiB peak RSS   {secs:6.2f} s")


if __name__ == "__main__":
    main()
