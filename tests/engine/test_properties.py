"""Property: for any mix of stages, failures and ordering, every input ends exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conveyor as cv

from . import procfns


def fails(x: int, seed: int) -> bool:
    return (x * 2654435761 + seed) % 7 == 0


def make_stage(kind: str, seed: int) -> Any:
    async def on_loop(item: tuple[int, int]) -> tuple[int, int]:
        await asyncio.sleep(0)
        if fails(item[0], seed):
            raise ValueError("injected")
        return item

    def on_threads(item: tuple[int, int]) -> tuple[int, int]:
        if fails(item[0], seed + 1):
            raise ValueError("injected")
        return item

    return {"loop": on_loop, "threads": on_threads}[kind]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 120),
    kinds=st.lists(st.sampled_from(["loop", "threads", "filter", "processes"]), max_size=3),
    ordered=st.booleans(),
    seed=st.integers(0, 1000),
    batch=st.one_of(st.none(), st.integers(1, 9)),
)
def test_every_input_ends_exactly_once(
    n: int, kinds: list[str], ordered: bool, seed: int, batch: int | None
) -> None:
    pipeline = cv.Pipeline([(i, i) for i in range(n)])
    for i, kind in enumerate(kinds):
        if kind == "filter":
            pipeline = pipeline.filter(lambda item, s=seed: (item[0] + s) % 5 != 0)
        elif kind == "processes":
            pipeline = pipeline.map(procfns.identity_pair, on="processes", workers=1)
        else:
            on = "loop" if kind == "loop" else "threads"  # placed by hand: auto is tested apart
            pipeline = pipeline.map(make_stage(kind, seed + i), on=on, concurrency=5)
    if batch:
        pipeline = pipeline.batch(batch).flat_map(lambda items: items)
    out: list[tuple[int, int]] = []
    result = pipeline.run(sink=out, ordered=ordered)

    keys_out = [item[0] for item in out]
    failed = sorted(f.key for f in result.failures)
    assert len(keys_out) == len(set(keys_out)), "a result came out twice"
    assert not set(keys_out) & set(failed), "an item both succeeded and failed"
    assert len(keys_out) + len(failed) + result.filtered == n
    assert result.items == n
    assert result.results == len(out)
    if ordered:
        assert keys_out == sorted(keys_out)
