"""The per-host part of the fetch's report, bounded: at most ``HOSTS_SHOWN`` hosts by name.

The report is asked a few times a second and, with loop processes, pickled to the parent,
so it cannot hold every host of a job over millions of them. It holds the ``HOSTS_SHOWN``
hosts that matter most (the most wasted requests first: refusals, server errors, network
failures; then the most requests), and one row, ``OTHER_HOSTS``, that adds up the rest.
A host the controller forgot (``forget_idle``) keeps its final report here, under the
same bound, so it is neither lost nor counted twice. Only the chosen hosts' reports are
built; the rest are added up from their counts (the roll-up has no latency histogram,
statuses or timeline of its own for live hosts).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from .host_report import HostReport, HostTally

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

    def select(self, live: Iterable[tuple[str, HostTally]]) -> dict[str, HostReport]:
        """The reports of at most ``limit`` hosts, live (their tallies) or forgotten, and
        ``OTHER_HOSTS``: the rest added up. Only the chosen live hosts' reports are built;
        the others are added from their counts (a few operations per host)."""
        limit = self.limit
        tallies = list(live)
        chosen = {host for host, _ in heapq.nlargest(limit, tallies, key=_tally_weight)}
        every = dict(self._gone)
        rest = _Sum()
        for host, tally in tallies:
            if host not in chosen:
                rest.add(tally)
                continue
            report = tally.report(host)
            seen = every.get(host)
            every[host] = report if seen is None else seen.merge(report)
        other = self._other.merge(rest.report()) if rest.hosts else self._other
        if len(every) > limit:
            keep = heapq.nlargest(limit, every.values(), key=_weight)
            kept = {report.host for report in keep}
            for host, report in every.items():
                if host not in kept:
                    other = other.merge(_renamed(report))
            every = {report.host: report for report in keep}
        if other.requests or other.deferred:
            every[OTHER_HOSTS] = other
        return every


def _tally_weight(item: tuple[str, HostTally]) -> tuple[int, int]:
    counts = item[1].counts
    wasted = counts[1] + counts[2] + counts[3]
    return wasted, wasted + counts[0]


class _Sum:
    """Live hosts not shown by name, added up from their tallies' counts."""

    __slots__ = ("bytes", "counts", "deferred", "hosts", "openings", "pauses", "retries")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]
        self.hosts = self.bytes = self.deferred = self.openings = self.pauses = 0
        self.retries = [0, 0]

    def add(self, tally: HostTally) -> None:
        self.hosts += 1
        counts = self.counts
        for index, count in enumerate(tally.counts):
            counts[index] += count
        self.bytes += tally.bytes
        self.deferred += tally.deferred
        self.openings += tally.breaker_openings
        self.pauses += tally.pause_count
        self.retries[0] += tally.retries
        self.retries[1] += tally.retries_denied

    def report(self) -> HostReport:
        ok, refusals, server_errors, net_fails = self.counts
        return HostReport(
            OTHER_HOSTS,
            requests=ok + refusals + server_errors + net_fails,
            ok=ok,
            refusals=refusals,
            server_errors=server_errors,
            net_fails=net_fails,
            bytes=self.bytes,
            pause_count=self.pauses,
            breaker_openings=self.openings,
            retries=self.retries[0],
            retries_denied=self.retries[1],
            deferred=self.deferred,
        )


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
