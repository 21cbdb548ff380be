"""The HTML report page: one self-contained file, readable offline.

Inline CSS and inline SVG only, no script and no external resource, so the file can be
mailed, attached to a ticket or opened years later. Every value from the run (stage names,
hosts, error messages) is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from html import escape

from .._engine.stats import RunResult, StageStatistics
from .charts import RED, Series, bar_chart, empty_chart, hbar_chart, line_chart, status_color
from .health import deferred_by_reason, deferred_count, host_health, unread_count
from .host_page import health_html
from .series import ReportData, format_seconds

_FAILURES_SHOWN = 20

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;
margin:2rem auto;max-width:780px;padding:0 1rem}
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:2rem 0 .5rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#6b7280;margin:0 0 1.2rem}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}
.card{border:1px solid #e5e7eb;border-radius:6px;padding:.5rem .8rem;min-width:5.5rem}
.card b{display:block;font-size:1.25rem}.card span{color:#6b7280;font-size:.8rem}
.bad b{color:#dc2626}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.25rem .5rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
td.msg{text-align:left;max-width:24rem;overflow-wrap:anywhere}
svg.chart{display:block;max-width:100%;height:auto;margin:.5rem 0}
.note{color:#6b7280;font-size:.85rem}
"""


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def _table(headers: list[str], rows: list[list[str]], *, message_last: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f"<td>{escape(c)}</td>" for c in row]
        if message_last:  # the last cell is a message: left-aligned and allowed to wrap
            cells[-1] = f'<td class="msg">{escape(row[-1])}</td>'
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _stage_row(s: StageStatistics) -> list[str]:
    counts = [f"{s.succeeded:,}", f"{s.failed:,}", f"{s.retried:,}"]
    place = f"{s.place} (auto: {s.reason})" if s.reason else s.place
    return [s.name, place, str(s.workers), *counts, _ms(s.p50), _ms(s.p95), _ms(s.p99)]


def _cards(result: RunResult, data: ReportData) -> str:
    cards = [("items", f"{result.items:,}", False)]
    if data.outcomes:  # fetch records: how each ended (see summary.counts_table)
        cards += [(name, f"{n:,}", n > 0 and name != "ok") for name, n in data.outcomes.items()]
    else:
        cards += [
            ("results", f"{result.results:,}", False),
            ("failed", f"{result.failed:,}", result.failed > 0),
        ]
    deferred = deferred_count(result)
    if deferred:
        cards.append(("deferred", f"{deferred:,}", True))
    if unread_count(result):
        cards.append(("unread", f"{unread_count(result):,}", True))
    cards += [
        ("filtered", f"{result.filtered:,}", False),
        ("skipped", f"{result.skipped:,}", False),
        ("retries", f"{data.retries:,}", False),
        ("seconds", f"{result.wall_seconds:,.2f}", False),
        ("items/s", f"{result.items_per_second:,.1f}", False),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" bad" if bad else ""}"><b>{escape(value)}</b>'
            f"<span>{escape(name)}</span></div>"
            for name, value, bad in cards
        )
        + "</div>"
    )


def _throughput(data: ReportData) -> str:
    series = [Series("items/s", data.throughput)]
    if any(rate for _, rate in data.failures_over_time):
        series.append(Series("failures/s", data.failures_over_time, RED))
    width = f"{data.bucket_seconds:g}-second"
    return line_chart(
        series,
        title=f"Throughput over time ({width} buckets)",
        x_label="seconds since start",
        y_label="items / s",
    )


def _latency(data: ReportData) -> list[str]:
    if not data.latency:
        return [empty_chart("Latency histogram", "no successful attempts")]
    charts = []
    for stage, bars in data.latency.items():
        labelled = [(format_seconds(low), float(n)) for low, _, n in bars]
        charts.append(
            bar_chart(
                labelled,
                title=f"Latency histogram: {stage}",
                x_label="seconds per successful attempt (bucket lower edge, log scale)",
                y_label="attempts",
            )
        )
    return charts


def render_html(result: RunResult, data: ReportData, *, title: str) -> str:
    """The whole report page as text."""
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    ended = "interrupted" if result.interrupted else "finished"
    body: list[str] = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{ended} in {result.wall_seconds:,.2f} s · '
        f"{len(result.stages)} stage(s) · report written {escape(when)}</p>",
        _cards(result, data),
        "<h2>Throughput</h2>",
        _throughput(data),
        "<h2>Latency</h2>",
        *_latency(data),
        "<h2>Stages</h2>",
        _table(
            ["stage", "on", "workers", "ok", "failed", "retried", "p50 ms", "p95 ms", "p99 ms"],
            [_stage_row(s) for s in result.stages],
        ),
        "<h2>Status codes</h2>",
        hbar_chart(
            [(code, float(n)) for code, n in data.status_codes.items()],
            title="Status codes",
            colors=[status_color(code) for code in data.status_codes],
            empty="no HTTP requests recorded",
        ),
        "<h2>Errors per host</h2>",
        hbar_chart(
            [(h.host, float(h.errors)) for h in data.hosts],
            title="Hosts with most errors",
            colors=[RED] * len(data.hosts),
            empty="no host had an error" if data.records else "no HTTP requests recorded",
        ),
    ]
    if data.hosts:
        body.append(
            _table(
                ["host", "errors", "requests", "error rate"],
                [
                    [h.host, f"{h.errors:,}", f"{h.requests:,}", f"{h.errors / h.requests:.0%}"]
                    for h in data.hosts
                ],
            )
        )
    if data.hosts_dropped:
        body.append(
            f'<p class="note">{data.hosts_dropped:,} requests to hosts beyond the tracked '
            "limit are counted together as “(other hosts)”.</p>"
        )
    hosts, deferred = host_health(result.stages), deferred_by_reason(result)
    if hosts or deferred:
        body.append(health_html(hosts, deferred, data.records_by_host or None))
    if data.crawl is not None:
        from .crawl import crawl_html

        body.append(crawl_html(data.crawl, data.depths, list(data.busiest)))
    body.append("<h2>Failures</h2>")
    if result.failures_by_kind:
        total = sum(result.failures_by_kind.values())
        body.append(
            _table(
                ["kind", "count", "share"],
                [
                    [kind, f"{n:,}", f"{n / total:.0%}"]
                    for kind, n in Counter(result.failures_by_kind).most_common()
                ],
            )
        )
        shown = result.failures[:_FAILURES_SHOWN]
        body.append(f'<p class="note">The first {len(shown)} failures:</p>')
        body.append(
            _table(
                ["key", "stage", "kind", "attempts", "message"],
                [[repr(f.key), f.stage, f.kind, str(f.attempts), f.message[:300]] for f in shown],
                message_last=True,
            )
        )
    else:
        body.append('<p class="note">No failures.</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
