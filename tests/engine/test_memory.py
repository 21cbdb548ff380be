"""Flat memory: peak allocation does not grow with the length of the input."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import conveyor as cv


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
