"""Host health and deferred items as the display, the summary and the report read them.

The ONE place that reads the politeness figures off the run: ``RunResult.deferred`` /
``deferred_by_reason``, ``unread``, ``RunStatistics.deferred`` / ``stall``, and the fetch report's
``hosts`` (a ``HostReport`` per host), ``held`` and ``deferred``. Everything else in
``_observe`` and ``_cli`` asks these functions, so how the figures are found is decided here.

They are read with ``getattr`` and a default: a result from a run that did not produce a
figure (an older journal's, a report type without the field) shows nothing rather than
failing. The host reports are typed by what is read of them (``HostHealth``), so this
layer needs no import of ``_http`` beyond the fetch report's type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .._engine.stats import RunResult, RunStatistics, StageStatistics
from .._http.stats import FetchReport


class StepLike(Protocol):
    """One point of a host's timeline: the controller's concurrency and rate from ``at``."""

    @property
    def at(self) -> float: ...
    @property
    def limit(self) -> int: ...
    @property
    def rate(self) -> float | None: ...


class PauseLike(Protocol):
    """One pause of a host (``HostReport.pauses``)."""

    @property
    def at(self) -> float: ...
    @property
    def seconds(self) -> float: ...
    @property
    def status(self) -> int | None: ...
    @property
    def retry_after(self) -> str | None: ...
    @property
    def deferred(self) -> bool: ...


class HostHealth(Protocol):
    """What the display reads of a host's report (``_http/host_report.py``'s ``HostReport``)."""

    @property
    def host(self) -> str: ...
    @property
    def requests(self) -> int: ...
    @property
    def ok(self) -> int: ...
    @property
    def refusals(self) -> int: ...
    @property
    def server_errors(self) -> int: ...
    @property
    def net_fails(self) -> int: ...
    @property
    def statuses(self) -> tuple[tuple[int, int], ...]: ...
    @property
    def bytes(self) -> int: ...
    @property
    def pauses(self) -> tuple[PauseLike, ...]: ...
    @property
    def pause_count(self) -> int: ...
    @property
    def breaker_openings(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def retries_denied(self) -> int: ...
    @property
    def deferred(self) -> int: ...
    @property
    def timeline(self) -> tuple[StepLike, ...]: ...
    @property
    def wasted(self) -> int: ...
    @property
    def latency_p50(self) -> float | None: ...
    @property
    def latency_p95(self) -> float | None: ...

    def merge(self, other: Any) -> Any: ...


class StallLike(Protocol):
    """The stall watchdog's notice (``_engine/stats.py``'s ``Stall``)."""

    @property
    def stage(self) -> str: ...
    @property
    def seconds(self) -> float: ...
    @property
    def hosts(self) -> tuple[str, ...]: ...
    @property
    def oldest(self) -> tuple[tuple[str, float], ...]: ...


def fetch_reports(stages: Iterable[StageStatistics]) -> list[FetchReport]:
    """The fetch stages' reports (a crawl's too: ``CrawlReport`` is one)."""
    return [s.details for s in stages if isinstance(s.details, FetchReport)]


def host_health(stages: Iterable[StageStatistics]) -> dict[str, HostHealth]:
    """Every host's report, the fetch stages' put together (empty: no figures)."""
    merged: dict[str, HostHealth] = {}
    for report in fetch_reports(stages):
        hosts: Mapping[str, HostHealth] = getattr(report, "hosts", None) or {}
        for host, health in hosts.items():
            seen = merged.get(host)
            merged[host] = health if seen is None else seen.merge(health)
    return merged


def held_hosts(stats: RunStatistics | None) -> dict[str, tuple[str, float]]:
    """Hosts held back now, with why ("paused", "breaker", ...) and the seconds left.
    A report without ``held`` gives its ``paused`` hosts (held because the site said so)."""
    found: dict[str, tuple[str, float]] = {}
    for report in fetch_reports(stats.stages if stats is not None else ()):
        held = getattr(report, "held", None)
        if isinstance(held, Mapping) and held:
            found.update(held)
        else:
            found.update({host: ("paused", left) for host, left in report.paused.items()})
    return found


def deferred_by_reason(result: RunResult) -> dict[str, int]:
    """Items deferred to the next run, by reason: the run's own count, else the fetch
    stages' (``FetchReport.deferred``)."""
    counted: Mapping[str, int] | None = getattr(result, "deferred_by_reason", None)
    if counted:
        return {reason: n for reason, n in counted.items() if n}
    return _reports_deferred(result.stages)


def deferred_count(result: RunResult) -> int:
    """Items deferred to the next run in all (``RunResult.deferred``)."""
    counted = getattr(result, "deferred", None)
    if isinstance(counted, int):
        return counted
    return sum(deferred_by_reason(result).values())


def unread_count(result: RunResult) -> int:
    """Input items the run did not read because its deadline came (``RunResult.unread``):
    like deferred items, the next run takes them up."""
    unread = getattr(result, "unread", None)
    return unread if isinstance(unread, int) else 0


def live_deferred(stats: RunStatistics | None) -> int:
    """Items deferred so far in a running run (``RunStatistics.deferred``)."""
    if stats is None:
        return 0
    counted = getattr(stats, "deferred", None)
    if isinstance(counted, int):
        return counted
    return sum(_reports_deferred(stats.stages).values())


def stall_of(stats: RunStatistics | None) -> StallLike | None:
    """The stall notice of a running run (``RunStatistics.stall``), or None."""
    stall: StallLike | None = getattr(stats, "stall", None) if stats is not None else None
    return stall


def _reports_deferred(stages: Iterable[StageStatistics]) -> dict[str, int]:
    found: dict[str, int] = {}
    for report in fetch_reports(stages):
        by_reason: Mapping[str, int] = getattr(report, "deferred", None) or {}
        for reason, n in by_reason.items():
            if n:
                found[reason] = found.get(reason, 0) + n
    return found
