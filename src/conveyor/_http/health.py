"""The per-host part of the fetch's report, bounded: at most ``HOSTS_SHOWN`` hosts by name.

The report is asked a few times a second and, with loop processes, pickled to the parent,
so it cannot hold every host of a job over millions of them. It holds the ``HOSTS_SHOWN``
hosts that matter most (the most wasted requests first: refusals, server errors, network
failures; then the most requests), and one row, ``OTHER_HOSTS``, that adds up the rest.
A host the controller forgot (``forget_idle``) keeps its final report here, under the
same bound, so it is neither lost nor counted twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from .host_report import HostReport

HOSTS_SHOWN = 32
OTHER_HOSTS = "(other hosts)"


def _weight(report: HostReport) -> tuple[int, int]:
    return report.wasted, report.requests


class HostBook:
    """Final reports of forgotten hosts, and the bounded selection the report carries."""

    __slots__ = ("_gone", "_other", "limit")

    def __init__(self, limit: int = HOSTS_SHOWN) -> None:
        self.limit = limit
        self._gone: dict[str, HostReport] = {}
        self._other = HostReport(OTHER_HOSTS)

    def forgotten(self, reports: Mapping[str, HostReport]) -> None:
        """Hosts the controller dropped, with their final reports."""
        gone = self._gone
        for host, report in reports.items():
            seen = gone.get(host)
            gone[host] = report if seen is None else seen.merge(report)
        if len(gone) > self.limit:
            keep = heapq.nlargest(self.limit, gone.values(), key=_weight)
            kept = {report.host for report in keep}
            for host in [h for h in gone if h not in kept]:
                self._other = self._other.merge(_renamed(gone.pop(host)))

    def select(self, live: Mapping[str, HostReport]) -> dict[str, HostReport]:
        """The live hosts' reports and the forgotten ones', at most ``limit`` by name plus
        the roll-up of the rest (a host both live and forgotten is merged)."""
        every = dict(self._gone)
        for host, report in live.items():
            seen = every.get(host)
            every[host] = report if seen is None else seen.merge(report)
        other = self._other
        if len(every) > self.limit:
            keep = heapq.nlargest(self.limit, every.values(), key=_weight)
            kept = {report.host for report in keep}
            for host, report in every.items():
                if host not in kept:
                    other = other.merge(_renamed(report))
            every = {report.host: report for report in keep}
        if other.requests or other.deferred:
            every[OTHER_HOSTS] = other
        return every


def _renamed(report: HostReport) -> HostReport:
    """A host's figures as part of the roll-up (its timeline and pauses are its own)."""
    return HostReport(
        OTHER_HOSTS,
        requests=report.requests,
        ok=report.ok,
        refusals=report.refusals,
        server_errors=report.server_errors,
        net_fails=report.net_fails,
        statuses=report.statuses,
        latency=report.latency,
        bytes=report.bytes,
        pause_count=report.pause_count,
        breaker_openings=report.breaker_openings,
        retries=report.retries,
        retries_denied=report.retries_denied,
        deferred=report.deferred,
    )
