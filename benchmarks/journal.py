"""What the resume journal costs: the same run with and without ``journal=``.

    .venv/bin/python benchmarks/journal.py            # 20,000 items, 31 interleaved repeats
    .venv/bin/python benchmarks/journal.py --quick    # 5 repeats

Each run sends N fast items (a no-op ``async def``, concurrency 100) to a JSON-lines sink.
The journaled run also creates the journal, admits every key through it, stages finished
keys in SQLite as it goes, commits every 10,000 items or second (sink fsync, then one
journal transaction; so once mid-run at 20,000 items), and closes the journal (a WAL
checkpoint); the plain run writes the same file and fsyncs it once, at the end. Every
measurement runs in a fresh subprocess, the two are interleaved (plain, journal, plain,
journal, ...), and the report gives medians and the journal's overhead in throughput, two
ways: from the two medians, and as the median of each interleaved pair's overhead. A run
takes ~50 ms, so a busy moment of the machine moves a median by several percent; a pair
runs at nearly the same moment, which makes the second figure the steadier one.

Two key shapes: the default position keys (ints), and URL keys from a ``key=`` function.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def _noop(x: str) -> str:
    return x


def _identity(x: str) -> str:
    return x


def case(journaled: bool, keys: str, n: int, folder: str) -> float:
    import conveyor as cv
    from conveyor._io import JsonLines

    items = [f"https://example.com/page/{i}" for i in range(n)]
    pipeline = cv.Pipeline(items, key=_identity if keys == "url" else None)
    pipeline = pipeline.map(_noop, concurrency=100)
    journal = os.path.join(folder, "run.journal") if journaled else None
    began = time.perf_counter()
    result = pipeline.run(sink=JsonLines(os.path.join(folder, "out.jsonl")), journal=journal)
    elapsed = time.perf_counter() - began
    assert result.results == n, result
    return elapsed


def measure(journaled: bool, keys: str, n: int) -> float:
    with tempfile.TemporaryDirectory(dir=HERE) as folder:  # the real disk, not a tmpfs
        done = subprocess.run(
            [sys.executable, __file__, "--case", str(int(journaled)), keys, str(n), folder],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--case", nargs=4)
    args = parser.parse_args()
    if args.case:
        journaled, keys, n, folder = args.case
        print(f"{case(journaled == '1', keys, int(n), folder):.6f}")
        return
    repeats = 5 if args.quick else 31
    n = args.items
    print(f"{n:,} items, {repeats} interleaved repeats, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    report = {}
    for keys in ("position", "url"):
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for journaled in (False, True):
                times[journaled].append(measure(journaled, keys, n))
        plain, journal = statistics.median(times[False]), statistics.median(times[True])
        overhead = (1 - plain / journal) * 100  # throughput lost to the journal
        paired = statistics.median(
            (1 - p / j) * 100 for p, j in zip(times[False], times[True], strict=True)
        )
        report[keys] = {
            "plain_s": plain,
            "journal_s": journal,
            "overhead_pct": overhead,
            "paired_overhead_pct": paired,
        }
        print(
            f"{keys:>8} keys: no journal {plain:.3f} s ({n / plain:,.0f} items/s), "
            f"journal {journal:.3f} s ({n / journal:,.0f} items/s): "
            f"{overhead:.1f}% less throughput (median of pairs: {paired:.1f}%)"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
