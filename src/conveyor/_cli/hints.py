"""Hints the fetch job gives when a setting, not the network, is what keeps it slow.

``PerHostHint`` watches the fetch stage's report at every tick (a ``FetchReport``, merged
over the loop processes). When requests wait for a busy host while slots of
``--concurrency`` stand free, the per-host limit is what holds the job back; when that
lasts a second or more, the hint is given once: live (``Progress.note``) and in the
summary, with the flag that changes it. With the per-host controller, ``--per-host`` is a
ceiling: the hint is given only while some host's limit stands at the highest it has
been (its report's timeline), not cut down by the host's refusals or slowness: a host the
controller keeps lower would not go faster for a higher ceiling. (The ceiling itself is
not in the report: with loop processes each holds a part of it.)
"""

from __future__ import annotations

from collections.abc import Callable

from .._engine.events import Event, Tick
from .._http.stats import FetchReport

_TICKS = 4  # consecutive ticks (~1 s) the per-host limit must hold the job back


class PerHostHint:
    wants_item_events = False  # ticks are enough

    def __init__(self, tell: Callable[[str], None] | None = None) -> None:
        self._tell = tell
        self._streak = 0
        self.message: str | None = None

    def on_event(self, event: Event) -> None:
        if self.message is not None or type(event) is not Tick:
            return
        for stage in event.statistics.stages:
            if isinstance(stage.details, FetchReport):
                self._look(stage.details)
                return

    def _look(self, report: FetchReport) -> None:
        waiting, per_host = report.waiting_for_host, report.per_host
        concurrency = report.concurrency
        free = concurrency - report.in_flight
        # Held back by the hosts: requests wait for their host's slots while at least a
        # tenth of the global slots (and one) stand idle.
        if waiting > 0 and free >= max(1, concurrency // 10) and _ceiling_binds(report):
            self._streak += 1
        else:
            self._streak = 0
        if self._streak < _TICKS:
            return
        self.message = (
            f"--per-host {per_host} is what holds this job back: {waiting:,} requests wait "
            f"for their host while {free:,} of --concurrency {concurrency:,} slots are free. "
            "Raise --per-host to go faster, if the sites can take it (the default, 8, is "
            "there to be polite to servers)."
        )
        if self._tell is not None:
            self._tell(self.message)


def _ceiling_binds(report: FetchReport) -> bool:
    """Whether ``--per-host`` may be what limits a host: always without the controller's
    per-host reports; with them, when a host's latest limit is the highest it has had."""
    hosts = getattr(report, "hosts", None)
    if not hosts:
        return True
    for health in hosts.values():
        steps = getattr(health, "timeline", ())
        if steps and steps[-1].limit >= max(step.limit for step in steps):
            return True
    return False
