"""A run its ledger feeds (``ports.Feed``): items come from ``Ledger.take``, and what a
service's result carries (``ports.Carry``) reaches the ledger with its item's key."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor._engine.runner import Runner
from conveyor._engine.spec import make_stage
from conveyor._errors import UsageError

from .counter_service import CollectingSink
from .fed_service import Tree, TreeFactory, TreeLedger


async def _unused(item: Any) -> Any:  # pragma: no cover - the service's call runs instead
    raise AssertionError("the stage calls its service")


def _stages(size: int, drop: frozenset[int] = frozenset(), *, double: bool = False) -> list[Any]:
    stage = make_stage(
        "map", _unused, on="loop", concurrency=8, name="tree", factory=TreeFactory(size, drop)
    )
    if not double:
        return [stage]
    return [stage, make_stage("flat_map", lambda n: [n, n], name="twice")]


@pytest.mark.parametrize("loops", [1, 2])
async def test_every_item_the_run_finds_is_run_once_and_the_run_ends(loops: int) -> None:
    ledger, sink = TreeLedger(), CollectingSink()
    drop = frozenset({5, 9})
    runner = Runner(
        Tree(),
        _stages(300, drop),
        key=lambda n: n,
        sink=sink,
        open_ledger=lambda: ledger,
        loops=loops,
    )
    result = await runner.run()
    assert sorted(sink.out) == sorted(set(range(300)) - drop)
    assert set(ledger.finished) == set(range(300))
    assert {ledger.finished[n] for n in drop} == {"filtered"}
    # Every item's carried children reached the ledger with its key, dropped ones too.
    assert ledger.extras[5] == [11, 12]
    assert len(ledger.extras) == 300
    assert (result.items, result.results, result.filtered) == (300, 298, 2)


async def test_extras_go_with_the_root_when_it_splits() -> None:
    ledger, sink = TreeLedger(), CollectingSink()
    runner = Runner(
        Tree(), _stages(40, double=True), key=lambda n: n, sink=sink, open_ledger=lambda: ledger
    )
    await runner.run()
    assert sorted(sink.out) == sorted(list(range(40)) * 2)
    assert len(ledger.extras) == 40


async def test_items_put_aside_are_waited_for() -> None:
    ledger, sink = TreeLedger(hold=(1000, 1001)), CollectingSink()
    runner = Runner(Tree(), _stages(20), key=lambda n: n, sink=sink, open_ledger=lambda: ledger)
    await runner.run()
    assert sorted(sink.out) == [*range(20), 1000, 1001]


def test_a_fed_source_needs_a_ledger() -> None:
    with pytest.raises(UsageError, match="journal"):
        Runner(Tree(), _stages(3))
