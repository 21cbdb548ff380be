"""The run's tail, the pure parts: its flags checked, the holds an earlier run kept
handed to a stage's factory, and whether a quiet stage is only being polite. The runner
(``runner.py``) does the rest: the deadline, ``finish_at`` and the stall notice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .._errors import UsageError
from .ports import HeldReport, Holding, Holds
from .spec import StageSpec
from .stages import StageRunner


def check_tail(deadline: float | None, finish_at: float | None, stall_after: float) -> None:
    """Refuse tail flags that mean nothing, with the fix."""
    if deadline is not None and not (isinstance(deadline, int | float) and deadline > 0):
        raise UsageError(f"deadline={deadline!r} must be seconds above zero (30 * 60: 30 min)")
    if finish_at is not None and not (isinstance(finish_at, int | float) and 0 < finish_at <= 1):
        raise UsageError(f"finish_at={finish_at!r}: give a share of the input, like 0.99")
    if not (isinstance(stall_after, int | float) and stall_after > 0):
        raise UsageError(f"stall_after={stall_after!r} must be seconds above zero")


def holding(spec: StageSpec, holds: Holds) -> StageSpec:
    """``spec`` with its service factory given the kept holds (``ports.Holding``); for a
    head folded onto loop processes, its first stage's factory."""
    if isinstance(spec.factory, Holding):
        spec = dataclasses.replace(spec, factory=spec.factory.holding(holds))
    if spec.remote and isinstance(spec.remote[0].factory, Holding):
        first = spec.remote[0]
        assert first.factory is not None
        first = dataclasses.replace(first, factory=first.factory.holding(holds))
        spec = dataclasses.replace(spec, remote=(first, *spec.remote[1:]))
    return spec


def hosts_of(stage: StageRunner) -> set[str]:
    """The route keys (hosts) of a stage's items in flight, when it has a route rule."""
    route = stage.spec.route
    if route is None:
        return set()
    hosts = set()
    for envelope in list(stage.flying):
        try:
            hosts.add(str(route(envelope.value)))
        except Exception:  # an item the route rule cannot read: no host to name
            continue
    return hosts


def held_politely(stage: StageRunner, hosts: set[str]) -> bool:
    """Whether every host the stage has work for is held back by its site now, as its
    service's report says (``ports.HeldReport``)."""
    report = stage.report()
    if not hosts or not isinstance(report, HeldReport):
        return False
    held = report.held
    # A protocol checks the name only: a report may have a ``held`` of another kind (a
    # crawl's counts its held pages).
    return isinstance(held, Mapping) and hosts <= held.keys()
