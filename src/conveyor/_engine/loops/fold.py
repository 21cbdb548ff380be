"""Which part of a pipeline runs on loop processes, and how its limits are shared out.

Pure: specs in, specs out. ``fold_head`` replaces the pipeline's head -- its async first
stage and the plain maps right after it -- by one stage placed on ``loops``; the rest
stays in the parent, where it was placed. ``spread`` says whether a key's items may go
to every loop (its limits divided among them) or each key keeps one loop.
"""

from __future__ import annotations

import dataclasses
import pickle

from ..._errors import UsageError
from ..ports import part
from ..spec import StageSpec


def fold_head(
    specs: tuple[StageSpec, ...], loops: int, *, measured: bool = False
) -> tuple[StageSpec, ...]:
    """With ``loops`` > 1: the pipeline's head -- its first stage (async, such as the
    fetch) and the plain maps right after it (inline or auto, module-level) -- becomes one
    stage placed on loop processes. ``measured``: the stage starts on the run's own loop
    and moves to the loop processes only once that loop is CPU-bound (``grow.py``)."""
    if loops <= 1 or not specs:
        return specs
    first = specs[0]
    if not (first.kind == "map" and first.place == "loop" and first.never_waits):
        raise UsageError(
            f"loops={loops}: the first stage ({first.name!r}) must be an async map such as "
            ".fetch(), with no rate, limit_per, retries or timeout of its own; "
            "or run with loops=1"
        )
    head = [first]
    for spec in specs[1:]:
        # Inline maps, and plain ones left to on="auto": in a loop process they run inline
        # (a loop process is a process of its own: CPU work there is on another core).
        if not (spec.kind == "map" and spec.place in ("inline", "auto") and spec.never_waits):
            break
        try:
            pickle.dumps(spec.fn)
        except Exception:
            break  # a lambda: it stays here, and gets what the head made
        head.append(spec)
    folded = StageSpec(
        kind="map",
        name=first.name,
        fn=first.fn,
        place="loops",
        workers=min(loops, first.budget),
        # One budget for all loops, however they are spread (a loop owning the busy hosts
        # may hold all of it): the slots the loops' services share (slots.py), when the
        # first stage has a service, with some items more out, waiting in the loops; else
        # kept here. Beyond the budget, the first stage's waiting room (``StageSpec.slots``)
        # is out too: its items wait inside a loop's service, taking no slot. Measured,
        # the head starts on the run's loop, where the items in transit would only wait:
        # the stage gets its workers for them when it moves (grow.py).
        concurrency=first.concurrency + (0 if measured else in_transit(first)),
        route=first.route,
        remote=tuple(head),
        measured=measured,
    )
    return (folded, *specs[len(head) :])


def in_transit(first: StageSpec) -> int:
    """Items out beyond the shared slots of a head whose first stage is ``first``: enough
    to cover the trip to a loop and back at the rates a loop reaches, so that no slot
    stands free while its next item travels (none when the parent keeps the budget)."""
    return max(64, first.budget // 2) if first.factory is not None else 0


def capacity(spec: StageSpec) -> int:
    """The most items the parent has out in the loop processes of a folded head (each
    loop's queue is bounded by it): the first stage's workers (its budget and its
    waiting room) and the items in transit."""
    first = spec.remote[0]
    return first.concurrency + in_transit(first)


def shared_budget(spec: StageSpec) -> int | None:
    """The slots the loops of a folded head share (the first stage's budget: a fetch's
    ``concurrency``, never its waiting room), or None when its first stage has no service
    to hold them and the parent keeps the budget."""
    first = spec.remote[0]
    return first.budget if first.factory is not None else None


def spread(spec: StageSpec) -> bool:
    """Whether the items of one route key (a host) may go to every loop, each holding a
    part of the key's limits (``ServiceFactory.spreads``), rather than to the one loop
    that owns the key. Spread, a single busy host uses every loop; owned, it uses one.
    A head with no service has no per-key limits to divide: always spread."""
    first = spec.remote[0]
    return first.factory is None or first.factory.spreads(spec.workers)


def loop_seats(spec: StageSpec) -> tuple[int, ...]:
    """Each loop's waiting room before any item parks (``room.py``): the items its service
    may have at work at once. Spread, the parent sends each item to the least busy loop,
    so each loop's part of the shared slots is enough: with the whole budget each, the
    loops let in twice the slots, and every request then waited for one and was handed
    it (the slow path of ``Limits.acquire``, ~5 µs a page). Owned, one loop may hold every
    busy key: the whole budget each, as the shared slots allow."""
    first = spec.remote[0]
    if not spread(spec):
        return (first.budget,) * spec.workers
    return tuple(part(first.budget, index, spec.workers) for index in range(spec.workers))


def loop_heads(spec: StageSpec) -> list[tuple[StageSpec, ...]]:
    """The head each loop process runs: the first stage's service factory shares out
    what it divides among the loops (``ServiceFactory.share``)."""
    first, *rest = spec.remote
    spreads = spread(spec)
    heads = []
    for index in range(spec.workers):
        factory = first.factory
        if factory is not None:
            factory = factory.share(index, spec.workers, spread=spreads)
        heads.append((dataclasses.replace(first, factory=factory), *rest))
    return heads


def loop_workers(spec: StageSpec) -> tuple[int, ...]:
    """Each loop's worker tasks: all the first stage's workers (its budget and its
    waiting room), since one loop may own all the busy hosts. What holds the total is the
    shared slots, or the parent's budget (``fold_head``); items beyond a loop's workers
    wait in its queue."""
    return (spec.remote[0].concurrency,) * spec.workers
