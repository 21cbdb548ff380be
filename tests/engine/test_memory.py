"""Flat memory: peak allocation does not grow with the length of the input."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import conveyor as cv
from conveyor._engine.writer import MAX_GATHERED


async def parse(x: int) -> dict[str, int]:
    return {"n": x, "square": x * x}


def keep_even(record: dict[str, int]) -> bool:
    return record["n"] % 2 == 0


def generated(n: int) -> Iterator[int]:
    yield from range(n)


def peak_for(n: int) -> int:
    pipeline = cv.Pipeline(generated(n)).map(parse).filter(keep_even).map(parse_again)
    tracemalloc.start()
    try:
        result = pipeline.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.items == n
    assert result.results == n // 2
    return peak


async def parse_again(record: dict[str, int]) -> int:
    return record["square"]


def test_peak_memory_is_flat_in_input_length() -> None:
    small = peak_for(10_000)
    large = peak_for(200_000)
    assert large <= 1.5 * small, f"peak {large:,} B for 200k items vs {small:,} B for 10k"


class SlowDisk:
    """A sink that takes 20 ms a write, as a loaded disk might: results must not pile up."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def open(self, position: object = None) -> None:
        pass

    def write(self, results: list[object]) -> None:
        time.sleep(0.02)
        self.batches.append(len(results))

    def write_failures(self, failures: list[object]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_slow_sink_holds_the_run_back_instead_of_gathering_results() -> None:
    sink = SlowDisk()
    workers = 10
    result = cv.Pipeline(range(40_000)).map(parse, concurrency=workers).run(sink=sink)
    assert result.results == sum(sink.batches) == 40_000
    # While the sink is busy, results gather up to a bound, then the workers wait for it
    # (each holding the one result it finished).
    assert max(sink.batches) <= MAX_GATHERED + workers
    assert len(sink.batches) >= 40_000 // MAX_GATHERED
