"""Host health as rows a person reads: the few hosts worth naming, and the rest summed.

Pure: host reports in (``health.HostHealth``), plain rows out, for the summary's tables
(``host_tables.py``) and the report's section (``host_page.py``). A job over a million
hosts still shows a bounded table: the top hosts by wasted requests and by requests,
then one row for all the others added up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .health import HostHealth

OTHERS = "(other hosts)"
REASONS = {
    "paused": "paused by the site (Retry-After)",
    "paused-beyond-cap": "the site asked for a pause beyond --max-pause",
    "breaker": "host failing (breaker open)",
    "quota": "the site's rate-limit quota spent",
    "tail": "--finish-at: left for the next run",
    "deadline": "--deadline reached",
    "robots": "robots.txt unreachable",
}


def reason_text(reason: str) -> str:
    """A deferral reason in words."""
    return REASONS.get(reason, reason)


@dataclass(frozen=True, slots=True)
class HostRow:
    """One host's line (or the others', summed: then no percentiles and no pauses)."""

    host: str
    requests: int = 0
    records: int | None = None  # records written for it (the run's tally), when known
    ok: int = 0
    refusals: int = 0
    server_errors: int = 0
    net_fails: int = 0
    bytes: int = 0
    pause_count: int = 0
    retry_after: str | None = None  # the last Retry-After the site sent
    breaker_openings: int = 0
    deferred: int = 0
    p50: float | None = None
    p95: float | None = None
    statuses: tuple[tuple[int, int], ...] = ()
    hosts: int | None = 1  # hosts behind this row (None: more than counted, not known)

    @property
    def wasted(self) -> int:
        """Requests that brought nothing: refusals, server errors and network failures."""
        return self.refusals + self.server_errors + self.net_fails


def host_row(health: HostHealth, records: int | None = None) -> HostRow:
    said = [p.retry_after for p in health.pauses if p.retry_after is not None]
    return HostRow(
        host=health.host,
        requests=health.requests,
        records=records,
        ok=health.ok,
        refusals=health.refusals,
        server_errors=health.server_errors,
        net_fails=health.net_fails,
        bytes=health.bytes,
        pause_count=health.pause_count,
        retry_after=said[-1] if said else None,
        breaker_openings=health.breaker_openings,
        deferred=health.deferred,
        p50=health.latency_p50,
        p95=health.latency_p95,
        statuses=tuple(health.statuses),
    )


def _summed(rows: list[HostRow], *, known: bool = True) -> HostRow:
    statuses: dict[int, int] = {}
    for row in rows:
        for status, n in row.statuses:
            statuses[status] = statuses.get(status, 0) + n
    records = [r.records for r in rows]
    return HostRow(
        host=OTHERS,
        requests=sum(r.requests for r in rows),
        records=None if None in records else sum(r.records or 0 for r in rows),
        ok=sum(r.ok for r in rows),
        refusals=sum(r.refusals for r in rows),
        server_errors=sum(r.server_errors for r in rows),
        net_fails=sum(r.net_fails for r in rows),
        bytes=sum(r.bytes for r in rows),
        pause_count=sum(r.pause_count for r in rows),
        breaker_openings=sum(r.breaker_openings for r in rows),
        deferred=sum(r.deferred for r in rows),
        statuses=tuple(sorted(statuses.items())),
        hosts=len(rows) if known else None,
    )


def ranked_rows(
    hosts: Mapping[str, HostHealth],
    records: Mapping[str, int] | None = None,
    *,
    top: int = 12,
) -> list[HostRow]:
    """At most ``top`` hosts, then one row summing the rest: first the hosts with the
    most wasted requests (those that need a look), then the busiest. Every host is in
    exactly one row, so the rows add up to the run's totals."""
    rows = [
        host_row(h, None if records is None else records.get(host, 0))
        for host, h in hosts.items()
        if host != OTHERS
    ]
    # The client may already have summed the hosts it could not keep one by one: that
    # row joins ours, and the count of hosts behind it is then not known.
    lumped = hosts.get(OTHERS)
    rows.sort(key=lambda r: (-r.wasted, -r.requests, r.host))
    wasteful = [r for r in rows if r.wasted][: (top + 1) // 2]
    chosen = {r.host for r in wasteful}
    busiest = [r for r in rows if r.host not in chosen]
    busiest.sort(key=lambda r: (-r.requests, r.host))
    shown = wasteful + busiest[: top - len(wasteful)]
    rest = busiest[top - len(wasteful) :]
    if lumped is not None:
        rest.append(host_row(lumped))
    return shown + ([_summed(rest, known=lumped is None)] if rest else [])


def held_rows(hosts: Mapping[str, HostHealth], *, top: int = 5) -> list[HostRow]:
    """The hosts that were held back (paused by the site, or their breaker opened), those
    that cost the most items first."""
    rows = [
        host_row(h)
        for host, h in hosts.items()
        if (h.pause_count or h.breaker_openings) and host != OTHERS
    ]
    rows.sort(key=lambda r: (-r.deferred, -(r.pause_count + r.breaker_openings), r.host))
    return rows[:top]


def wasted_rows(hosts: Mapping[str, HostHealth], *, top: int = 5) -> list[HostRow]:
    """The hosts with the most wasted requests (refusals and failures), most first."""
    rows = [host_row(h) for host, h in hosts.items() if h.wasted and host != OTHERS]
    rows.sort(key=lambda r: (-r.wasted, r.host))
    return rows[:top]


def size_text(n: int) -> str:
    """Bytes as a person reads them: ``512 B``, ``3.2 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"  # pragma: no cover - the loop returns at GiB
