"""What one client is doing: ``HttpStats`` (``statistics()``) and ``FetchReport``
(``details()``, the fetch stage's report), frozen snapshots both."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._engine.ports import Holds, StageReport, add, by_key, larger, merge_by, nested, same
from .host_report import HostReport


def later(a: tuple[Any, float], b: tuple[Any, float]) -> tuple[Any, float]:
    """Of two ``(reason, time)`` holds of one host, the one that ends later."""
    return a if a[1] >= b[1] else b


@dataclass(frozen=True, slots=True)
class HttpStats:
    """A snapshot of one client, for progress bars and reports."""

    in_flight: int
    waiting: int
    per_host: dict[str, int] = field(default_factory=dict)
    fetches: int = 0
    requests: int = 0
    retries: int = 0
    redirects: int = 0
    responses: int = 0
    failures: int = 0
    bytes_read: int = 0
    slowed_hosts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchReport(StageReport):
    """What the fetch stage's client says of itself a few times a second, for the live
    display, the per-host hint and the run's result (``StageStatistics.details``).

    With loop processes each loop's client sends its own, and the reports merge field by
    field (``StageReport.merge``): counts add up, the limits are the ones every loop was
    given, and paused hosts are put together. A new figure is a new field with its merge
    rule; nothing else changes.

    Attributes:
        requests: requests sent (each retry and redirect hop is one).
        retries: retries made.
        in_flight: requests out now.
        concurrency: the limit on requests out at once, in all.
        per_host: the limit on requests out at once to one host.
        waiting_for_host: requests waiting for a slot of their host.
        hosts_at_limit: hosts with all their ``per_host`` slots taken.
        paused: hosts held back now (a pause, its breaker, its quota), with the seconds
            left: ``held`` without the reasons, kept for readers of before.
        hosts: per-host health (``HostReport``), at most ``health.HOSTS_SHOWN`` hosts by
            name (the most wasteful, then the busiest) plus ``"(other hosts)"``, the rest
            added up; hosts the controller forgot keep their final report.
        held: up to 5 hosts held back now, per client: why and the seconds left (the
            live display's "held back" line).
        holds: site pauses and open breakers running now, with their ends as Unix times:
            what the journal keeps across runs (``ports.HoldingReport``).
        deferred: items the client deferred, by reason ("paused-beyond-cap", "deadline",
            "tail", "breaker", ...).
    """

    requests: int = 0
    retries: int = 0
    in_flight: int = 0
    concurrency: int = field(default=0, metadata=merge_by(same))
    per_host: int = field(default=0, metadata=merge_by(same))
    waiting_for_host: int = 0
    hosts_at_limit: int = 0
    paused: Mapping[str, float] = field(default_factory=dict, metadata=merge_by(by_key(larger)))
    hosts: Mapping[str, HostReport] = field(default_factory=dict, metadata=merge_by(by_key(nested)))
    held: Mapping[str, tuple[str, float]] = field(
        default_factory=dict, metadata=merge_by(by_key(later))
    )
    holds: Holds = field(default_factory=dict, metadata=merge_by(by_key(later)))
    deferred: Mapping[str, int] = field(default_factory=dict, metadata=merge_by(by_key(add)))
