"""The report's host health section: deferred items by reason, a table of the hosts (the
top ones by wasted requests and by requests, the rest summed) and, for the hosts whose
controller changed its mind, a small chart of the concurrency and rate it chose.

Pure: host reports in (``health.HostHealth``), HTML out; every value from the run escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

from .charts import AXIS, BLUE, FONT, GRID, format_number
from .health import HostHealth, StepLike
from .host_rows import OTHERS, HostRow, ranked_rows, reason_text, size_text

ORANGE = "#d97706"
CHARTS_SHOWN = 6


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


def _statuses(row: HostRow) -> str:
    return ", ".join(f"{status} ({n:,})" for status, n in row.statuses) or "-"


def _pauses(row: HostRow) -> str:
    if not row.pause_count:
        return "-"
    said = f" (Retry-After: {row.retry_after})" if row.retry_after else " (no Retry-After)"
    return f"{row.pause_count:,}{said if row.host != OTHERS else ''}"


def _row_cells(row: HostRow, with_records: bool) -> list[str]:
    name = f"{row.host} ({row.hosts:,})" if row.host == OTHERS and row.hosts else row.host
    cells = [name, f"{row.requests:,}"]
    if with_records:
        cells.append("-" if row.records is None else f"{row.records:,}")
    return [
        *cells,
        f"{row.ok:,}",
        f"{row.refusals:,}",
        f"{row.server_errors:,}",
        f"{row.net_fails:,}",
        f"{row.wasted:,}",
        _statuses(row),
        _ms(row.p50),
        _ms(row.p95),
        size_text(row.bytes),
        _pauses(row),
        f"{row.breaker_openings:,}",
        f"{row.deferred:,}",
    ]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def timeline_chart(host: str, steps: Sequence[StepLike], *, width: int = 360) -> str:
    """The controller's concurrency limit (blue, left axis) and rate limit (amber, right
    axis, requests/s) over the run, as steps: each holds until the next."""
    height, left, right, top, bottom = 130, 34, width - 40, 24, 130 - 22
    label = escape(f"{host}: concurrency and rate chosen")
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}" {FONT}>',
        f"<title>{label}</title>",
        f'<text x="{left}" y="14" font-weight="600" fill="#111827">{escape(host)}</text>',
    ]
    if not steps:
        parts.append(f'<text x="{left}" y="60" fill="{AXIS}">no steps</text></svg>')
        return "\n".join(parts)
    end = max(steps[-1].at, steps[0].at + 1.0)
    start = steps[0].at
    top_limit = max(s.limit for s in steps) or 1
    rates = [s.rate for s in steps if s.rate is not None]
    top_rate = max(rates) if rates else 0.0

    def x(at: float) -> float:
        return left + (at - start) / (end - start) * (right - left)

    def y(value: float, high: float) -> float:
        return bottom - value / (high or 1.0) * (bottom - top)

    parts.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
        f'fill="none" stroke="{GRID}"/>'
    )
    parts.append(
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" fill="{BLUE}">{top_limit}</text>'
    )
    parts.append(f'<text x="{left - 4}" y="{bottom}" text-anchor="end" fill="{BLUE}">0</text>')
    parts.append(
        f'<text x="{left}" y="{height - 6}" fill="{AXIS}">{format_number(start)} s</text>'
        f'<text x="{right}" y="{height - 6}" text-anchor="end" fill="{AXIS}">'
        f"{format_number(end)} s</text>"
    )
    parts.append(_steps_path([(s.at, float(s.limit)) for s in steps], end, x, top_limit, y, BLUE))
    if rates:
        parts.append(
            f'<text x="{right + 4}" y="{top + 8}" fill="{ORANGE}">'
            f"{format_number(top_rate)}/s</text>"
        )
        # A step with no rate limit is drawn at the top: nothing held it back.
        points = [(s.at, s.rate if s.rate is not None else top_rate) for s in steps]
        parts.append(_steps_path(points, end, x, top_rate, y, ORANGE, dashed=True))
    parts.append(
        f'<text x="{right}" y="14" text-anchor="end" fill="{BLUE}">■ concurrency '
        f'<tspan fill="{ORANGE}">■ rate</tspan></text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _steps_path(
    points: list[tuple[float, float]],
    end: float,
    x: Callable[[float], float],
    high: float,
    y: Callable[[float, float], float],
    color: str,
    *,
    dashed: bool = False,
) -> str:
    coords: list[str] = []
    for i, (at, value) in enumerate(points):
        until = points[i + 1][0] if i + 1 < len(points) else end
        py = y(value, high)
        coords.append(f"{x(at):.1f},{py:.1f} {x(until):.1f},{py:.1f}")
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<polyline points="{" ".join(coords)}" fill="none" stroke="{color}" '
        f'stroke-width="2"{dash}/>'
    )


def _most(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def health_html(
    hosts: Mapping[str, HostHealth],
    deferred: Mapping[str, int],
    records: Mapping[str, int] | None = None,
    *,
    top: int = 12,
) -> str:
    """The section, or a line saying there is nothing to show."""
    body = ["<h2>Host health</h2>"]
    if deferred:
        body.append(
            '<p class="note">Items deferred to the next run (not in the output; run the '
            "same command again to finish them):</p>"
        )
        body.append(
            _table(
                ["reason", "items"],
                [
                    [reason_text(r), f"{n:,}"]
                    for r, n in sorted(deferred.items(), key=lambda i: -i[1])
                ],
            )
        )
    if not hosts:
        body.append('<p class="note">No per-host figures for this run.</p>')
        return "\n".join(body)
    rows = ranked_rows(hosts, records, top=top)
    with_records = records is not None
    headers = ["host", "requests", *(["records"] if with_records else [])]
    headers += ["ok", "refused", "5xx", "net fail", "wasted", "statuses", "p50 ms", "p95 ms",
                "bytes", "pauses", "breaker", "deferred"]  # fmt: skip
    body.append(_table(headers, [_row_cells(row, with_records) for row in rows]))
    body.append(
        '<p class="note">Requests count every attempt (retries and redirect hops); wasted '
        "= refused + 5xx + network failures; latency is of ok answers.</p>"
    )
    charted = [
        hosts[row.host] for row in rows if row.host in hosts and len(hosts[row.host].timeline) > 1
    ][:CHARTS_SHOWN]
    if charted:
        body.append("<h3>What the controller chose</h3>")
        body.append('<div class="cards">')
        body += [timeline_chart(h.host, h.timeline) for h in charted]
        body.append("</div>")
    return "\n".join(body)
