"""The end-of-run summary as rich tables: a pure function of the result and the report data.

One small table per topic, grouped, rather than one wide table: each stays readable in an
80-column terminal, and topics with nothing to say (no failures, no HTTP) are left out.
Without a terminal (a log file, CI, ``| tee``) no width limits them: print them on a
``summary_console``, and every table takes the width its cells need, nothing cut.
"""

from __future__ import annotations

from collections import Counter

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table

from .._engine.stats import RunResult
from .health import deferred_by_reason, deferred_count, host_health, unread_count
from .host_tables import health_tables
from .series import ReportData

# The width of a summary console without a terminal: more than any summary line needs, so
# tables (which take only the width their cells need) are never cut at 80 columns as rich
# does by default when it cannot ask a terminal.
UNLIMITED_WIDTH = 1_000


def summary_console(*, stderr: bool = False) -> Console:
    """A console for the summary and the closing lines: on stdout, or stderr if ``stderr``.

    On a terminal it has the terminal's width, and tables fit it; without one (a log file,
    CI, a pipe) it has no practical limit, so whole numbers and headers are printed.
    """
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = UNLIMITED_WIDTH
    return console


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def counts_table(result: RunResult, data: ReportData) -> Table:
    """Items in and out, the rate, and how the run ended. With fetch records tallied, the
    records by outcome (ok, HTTP 4xx, HTTP 5xx, failed) instead of results and failures:
    a 404 is a result of the run, not a page that was fetched ok."""
    # How the run ended goes in the title: one column fewer keeps the table in 80 columns.
    table = _table("Run (interrupted)" if result.interrupted else "Run")
    cells: list[tuple[str, str, str | None]] = [("items", f"{result.items:,}", None)]
    if data.outcomes:
        styles = {"ok": "green", "4xx": "yellow", "5xx": "red", "failed": "red"}
        for name, n in data.outcomes.items():
            cells.append((name, f"{n:,}", styles[name] if n or name == "ok" else None))
    else:
        cells.append(("results", f"{result.results:,}", "green"))
        cells.append(("failed", f"{result.failed:,}", "red" if result.failed else None))
    deferred = deferred_count(result)
    if deferred:  # not fetched this time, kept for the next run: not in the output
        cells.append(("deferred", f"{deferred:,}", "yellow"))
    unread = unread_count(result)
    if unread:  # the deadline came before they were read: the next run reads them
        cells.append(("unread", f"{unread:,}", "yellow"))
    cells += [
        ("filtered", f"{result.filtered:,}", None),
        ("skipped", f"{result.skipped:,}", None),
        ("retries", f"{data.retries:,}", None),
        ("seconds", f"{result.wall_seconds:,.2f}", None),
        ("items/s", f"{result.items_per_second:,.1f}", "bold"),
    ]
    for name, _, style in cells:
        table.add_column(name, justify="right", style=style)
    table.add_row(*(value for _, value, _ in cells))
    return table


def stages_table(result: RunResult) -> Table:
    """Per stage: where it ran, outcomes and latency percentiles of successful attempts."""
    table = _table("Stages (latency of successful attempts, ms)")
    table.collapse_padding = True  # nine columns: one space between them fits 80 columns
    table.add_column("stage", no_wrap=True)
    # Placement and workers share a column ("threads x4") so the table fits 80 columns.
    table.add_column("on", no_wrap=True)
    table.add_column("ok", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("retried", justify="right")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("busy s", justify="right")
    for s in result.stages:
        table.add_row(
            s.name,
            f"{s.place} x{s.workers}",
            f"{s.succeeded:,}",
            f"{s.failed:,}",
            f"{s.retried:,}",
            _ms(s.p50),
            _ms(s.p95),
            _ms(s.p99),
            f"{s.busy_seconds:,.2f}",
        )
    return table


def placement_table(result: RunResult) -> Table:
    """Stages that ``on="auto"`` placed by measuring them, and why there."""
    table = _table("Placed by measurement (on='auto')")
    table.add_column("stage", no_wrap=True)
    table.add_column("on", no_wrap=True)
    table.add_column("because")
    for s in result.stages:
        if s.reason:
            table.add_row(s.name, s.place, s.reason)
    return table


def failures_table(result: RunResult) -> Table:
    """Failures by kind, most common first, each with its share of all failures."""
    table = _table("Failures by kind")
    table.add_column("kind", style="red")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    total = sum(result.failures_by_kind.values()) or 1
    for kind, n in Counter(result.failures_by_kind).most_common():
        table.add_row(kind, f"{n:,}", f"{n / total:.0%}")
    return table


def status_table(data: ReportData) -> Table:
    """HTTP status codes of the fetch records, in code order."""
    table = _table("Status codes")
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, n in data.status_codes.items():
        style = {"2": "green", "3": "blue", "4": "yellow", "5": "red"}.get(status[:1], "dim")
        table.add_row(f"[{style}]{status}[/]", f"{n:,}")
    return table


def hosts_table(data: ReportData) -> Table:
    """The hosts with most errors (an error kind, or status 400 or more)."""
    table = _table("Hosts with most errors")
    table.add_column("host")
    table.add_column("errors", justify="right", style="red")
    table.add_column("requests", justify="right")
    table.add_column("error rate", justify="right")
    for h in data.hosts:
        table.add_row(h.host, f"{h.errors:,}", f"{h.requests:,}", f"{h.errors / h.requests:.0%}")
    return table


def summary_group(result: RunResult, data: ReportData) -> Group:
    """Every summary table that has something to say, in reading order."""
    parts: list[RenderableType] = [counts_table(result, data)]
    if result.stages:
        parts.append(stages_table(result))
    if any(s.reason for s in result.stages):
        parts.append(placement_table(result))
    if result.failures_by_kind:
        parts.append(failures_table(result))
    if data.status_codes:
        parts.append(status_table(data))
    if data.hosts:
        parts.append(hosts_table(data))
    parts += health_tables(
        host_health(result.stages), deferred_by_reason(result), data.records_by_host or None
    )
    if data.crawl is not None:
        from .crawl import crawl_tables

        parts += crawl_tables(data.crawl, data.depths, list(data.busiest))
    return Group(*parts)
