"""The stage's-service ports, pure: reports merge by their fields' rules, one rule says
what never waits, and the ordered gate lets a root in only when none of it is upstream."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

import conveyor as cv
from conveyor._engine.channel import Channel
from conveyor._engine.envelope import Envelope
from conveyor._engine.gate import OrderGate
from conveyor._engine.loops import fold_head
from conveyor._engine.loops.fold import loop_seats, loop_workers, shared_budget
from conveyor._engine.ports import StageReport, by_key, larger, merge_by, nested, same
from conveyor._engine.spec import make_stage
from conveyor._http.stats import FetchReport


@dataclass(frozen=True, slots=True)
class Host(StageReport):
    ok: int = 0
    slowest: float = field(default=0.0, metadata=merge_by(larger))


@dataclass(frozen=True, slots=True)
class Grown(StageReport):
    """A report grown the way a later feature will grow the fetch's: by adding fields."""

    done: int = 0
    limit: int = field(default=0, metadata=merge_by(same))
    hosts: Mapping[str, Host] = field(default_factory=dict, metadata=merge_by(by_key(nested)))


def test_a_report_merges_by_its_fields_own_rules() -> None:
    one = Grown(3, 10, {"a:80": Host(1, 0.5)})
    two = Grown(4, 10, {"a:80": Host(2, 0.2), "b:80": Host(5, 1.0)})
    assert one.merge(two) == Grown(7, 10, {"a:80": Host(3, 0.5), "b:80": Host(5, 1.0)})
    assert pickle.loads(pickle.dumps(one.merge(two))) == one.merge(two)
    with pytest.raises(TypeError, match="cannot merge"):
        one.merge(Host())  # type: ignore[arg-type]


def test_the_fetch_report_adds_up_counts_keeps_limits_and_joins_paused_hosts() -> None:
    one = FetchReport(requests=5, in_flight=2, concurrency=8, per_host=2, paused={"a:80": 3.0})
    two = FetchReport(requests=7, in_flight=1, concurrency=8, per_host=2, paused={"a:80": 1.0})
    merged = one.merge(two.merge(FetchReport(concurrency=8, per_host=2, paused={"b:80": 2.0})))
    assert (merged.requests, merged.in_flight, merged.concurrency, merged.per_host) == (12, 3, 8, 2)
    assert merged.paused == {"a:80": 3.0, "b:80": 2.0}


async def _call(x: int) -> int:
    return x


@pytest.mark.parametrize(
    "options", [{"rate": "5/s"}, {"retries": 2}, {"timeout": 1.0}, {"limit_per": (str, 2)}]
)
def test_one_rule_says_what_never_waits_and_loops_take_only_that(
    options: dict[str, object],
) -> None:
    assert make_stage("map", _call, on="loop").never_waits
    waits = make_stage("map", _call, on="loop", **options)  # type: ignore[arg-type]
    assert not waits.never_waits
    with pytest.raises(cv.UsageError, match="no rate, limit_per, retries or timeout"):
        fold_head((waits,), 2)


async def test_the_gate_lets_a_root_in_once_nothing_of_it_is_upstream() -> None:
    inbox: Channel[Envelope] = Channel(16)
    gate = OrderGate(inbox)
    for root in range(3):
        gate.admit(root)
    gate.spawn(0)  # root 0 has two children upstream (a flat_map)
    await gate.arrive(Envelope(2, "c", "c"))
    await gate.arrive(Envelope(0, "a", "a1", (1,)))
    assert inbox.qsize() == 0  # 0's other child is still upstream
    await gate.arrive(Envelope(0, "a", "a0", (0,)))
    assert inbox.qsize() == 2  # root 0, in position order; 1 is still upstream
    await gate.ended((1,))  # root 1 failed upstream: 2 may go in
    assert [(await inbox.get()).value for _ in range(inbox.qsize())] == ["a0", "a1", "c"]


@pytest.mark.parametrize(("per_host", "seats"), [(8, (50, 50)), (1, (100, 100))])
def test_each_loop_seats_its_part_of_the_shared_slots_when_hosts_are_spread(
    per_host: int, seats: tuple[int, ...]
) -> None:
    """Spread (a host's limits divide among the loops), the parent sends each item to the
    least busy loop, and each loop's waiting room starts at its part of the slots they
    share; with the whole budget each, the two loops let in twice the slots and every
    request waited for one. Owned (``per_host`` 1: a host has one loop), one loop may hold
    every busy host: the whole budget each, as the shared slots allow."""
    stages = cv.Pipeline([]).fetch(concurrency=100, per_host=per_host).stages
    (head,) = fold_head(stages, 2)
    assert shared_budget(head) == 100
    assert loop_seats(head) == seats
    assert loop_workers(head) == (100 + 1024,) * 2  # the room's workers, each loop
    odd = fold_head(cv.Pipeline([]).fetch(concurrency=101, per_host=8).stages, 2)[0]
    assert sum(loop_seats(odd)) == 101
