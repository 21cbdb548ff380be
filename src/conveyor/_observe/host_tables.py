"""The summary's politeness tables: items deferred by reason, and host health in a few lines
(the hosts held back, the hosts with the most wasted requests). Pure: rows in, rich out."""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.table import Table

from .health import HostHealth
from .host_rows import HostRow, held_rows, reason_text, wasted_rows


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def deferred_table(by_reason: Mapping[str, int]) -> Table:
    """Items deferred to the next run, by reason, most first."""
    table = _table("Deferred to the next run")
    table.add_column("reason", style="yellow")
    table.add_column("items", justify="right")
    for reason, n in sorted(by_reason.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(reason_text(reason), f"{n:,}")
    return table


def _why(row: HostRow) -> str:
    parts = []
    if row.pause_count:
        said = f", last Retry-After: {row.retry_after}" if row.retry_after else ""
        parts.append(f"paused by the site {row.pause_count:,}x{said}")
    if row.breaker_openings:
        parts.append(f"breaker opened {row.breaker_openings:,}x")
    return "; ".join(parts)


def held_table(rows: list[HostRow]) -> Table:
    """The hosts held back during the run, and the items that cost."""
    table = _table("Hosts held back")
    table.add_column("host", no_wrap=True)
    table.add_column("why")
    table.add_column("deferred", justify="right")
    for row in rows:
        table.add_row(row.host, _why(row), f"{row.deferred:,}")
    return table


def wasted_table(rows: list[HostRow], records: Mapping[str, int] | None = None) -> Table:
    """The hosts with the most wasted requests, with their latency (ok answers)."""
    table = _table("Hosts with most wasted requests (latency of ok answers, ms)")
    table.collapse_padding = True
    table.add_column("host", no_wrap=True)
    table.add_column("requests", justify="right")
    if records is not None:
        table.add_column("records", justify="right")
    table.add_column("refused", justify="right")
    table.add_column("5xx", justify="right")
    table.add_column("net fail", justify="right")
    table.add_column("wasted", justify="right", style="red")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    for row in rows:
        cells = [row.host, f"{row.requests:,}"]
        if records is not None:
            cells.append(f"{records.get(row.host, 0):,}")
        cells += [
            f"{row.refusals:,}",
            f"{row.server_errors:,}",
            f"{row.net_fails:,}",
            f"{row.wasted:,}",
            _ms(row.p50),
            _ms(row.p95),
        ]
        table.add_row(*cells)
    return table


def health_tables(
    hosts: Mapping[str, HostHealth],
    by_reason: Mapping[str, int],
    records: Mapping[str, int] | None = None,
) -> list[Table]:
    """The tables that have something to say: deferred, held back, most wasted."""
    tables: list[Table] = []
    if by_reason:
        tables.append(deferred_table(by_reason))
    held = held_rows(hosts)
    if held:
        tables.append(held_table(held))
    wasted = wasted_rows(hosts)
    if wasted:
        tables.append(wasted_table(wasted, records))
    return tables
