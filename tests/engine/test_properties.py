"""Property: for any mix of stages, placements, failures and ordering, every input ends
exactly once, and an ordered run delivers in input order."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conveyor as cv

from . import procfns

# A stage: ("map", on), ("filter", on), ("flat_map", on) or ("batch", size). Batches are
# undone by the flat_map right after them, so every result is one input item again.
SYNC_PLACES = ["auto", "inline", "threads", "processes"]
stages = st.one_of(
    st.tuples(st.just("map"), st.sampled_from(SYNC_PLACES)),
    st.tuples(st.just("map"), st.just("loop")),  # apart: the loop reorders the most
    st.tuples(st.just("filter"), st.sampled_from(["auto", "inline", "threads"])),
    st.tuples(st.just("flat_map"), st.sampled_from(["auto", "inline", "threads"])),
    st.tuples(st.just("batch"), st.integers(1, 9)),
)


def on_loop(seed: int) -> Any:
    async def call(item: tuple[int, int]) -> tuple[int, int]:
        # A few turns of the loop, more or fewer by item: items overtake one another.
        for _ in range((item[0] * 7 + seed) % 4):
            await asyncio.sleep(0)
        return procfns.fail_some(item, seed)

    return call


def add(pipeline: cv.Pipeline, stage: tuple[str, Any], seed: int) -> cv.Pipeline:
    kind, how = stage
    if kind == "batch":
        return pipeline.batch(how).flat_map(lambda items: items, on="inline")
    if kind == "filter":
        return pipeline.filter(lambda item, s=seed: (item[0] + s) % 5 != 0, on=how)
    if kind == "flat_map":
        return pipeline.flat_map(lambda item: [item], on=how)
    if how == "loop":
        return pipeline.map(on_loop(seed), on="loop", concurrency=5)
    fn = functools.partial(procfns.fail_some, seed=seed)  # picklable, for processes
    workers = 1 if how == "processes" else None
    return pipeline.map(fn, on=how, concurrency=5, workers=workers)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 120),
    chosen=st.lists(stages, max_size=5),
    ordered=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_every_input_ends_exactly_once(
    n: int, chosen: list[tuple[str, Any]], ordered: bool, seed: int
) -> None:
    pipeline = cv.Pipeline([(i, i) for i in range(n)])
    for i, stage in enumerate(chosen):
        pipeline = add(pipeline, stage, seed + i)
    out: list[tuple[int, int]] = []
    result = pipeline.run(sink=out, ordered=ordered)

    keys_out = [item[0] for item in out]
    # By the item: after a batch, an item's key is its batch's keys.
    failed = sorted(f.item[0] for f in result.failures)
    assert len(keys_out) == len(set(keys_out)), "a result came out twice"
    assert not set(keys_out) & set(failed), "an item both succeeded and failed"
    assert len(keys_out) + len(failed) + result.filtered == n
    assert result.items == n
    assert result.results == len(out)
    if ordered:
        assert keys_out == sorted(keys_out)
