"""Pure SVG chart builders for the HTML report: numbers in, markup out.

Hand-written SVG rather than a charting library so the report is one self-contained file
that opens offline with no JavaScript, and so ``import conveyor`` pulls in nothing heavy.
Each builder returns an ``<svg>`` element ready to inline in HTML5 (which needs no
``xmlns``); every piece of text is escaped. An empty data set gives a chart that says so
rather than nothing, so a report always has the same sections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11"'
AXIS = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
RED = "#dc2626"
GREY = "#9ca3af"

_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 16, 28, 42


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a line chart: ``(x, y)`` points in x order."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = BLUE


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]`` (steps of 1, 2, 2.5, 5).

    The last tick is at or above ``high`` so the axis always contains the data.
    """
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError("nice_ticks needs finite bounds")
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)
    first = math.floor(low / step)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def format_number(value: float) -> str:
    """Short axis labels: ``950``, ``1.2k``, ``3.4M``, ``0.25``."""
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.3g}G"
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _open(title: str, width: int, height: int) -> list[str]:
    label = escape(title)
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{label}" {FONT}>',
        f"<title>{label}</title>",
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="600" fill="#111827">{label}</text>',
    ]


def empty_chart(title: str, message: str, *, width: int = 720, height: int = 120) -> str:
    """A chart frame that says why there is nothing to draw."""
    parts = _open(title, width, height)
    parts.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{width - _LEFT - _RIGHT}" '
        f'height="{height - _TOP - 12}" fill="none" stroke="{GRID}"/>'
    )
    parts.append(
        f'<text x="{width / 2:.1f}" y="{(height + _TOP) / 2:.1f}" text-anchor="middle" '
        f'fill="{AXIS}">{escape(message)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _y_axis(parts: list[str], ticks: list[float], width: int, height: int, label: str) -> None:
    top, bottom = _TOP, height - _BOTTOM
    span = ticks[-1] - ticks[0] or 1.0
    for tick in ticks:
        y = bottom - (tick - ticks[0]) / span * (bottom - top)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{width - _RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">'
            f"{format_number(tick)}</text>"
        )
    parts.append(
        f'<text transform="translate(14 {(top + bottom) / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle" fill="{AXIS}">{escape(label)}</text>'
    )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 720,
    height: int = 240,
) -> str:
    """Lines over a shared x axis (e.g. items/s and failures/s over seconds)."""
    points = [p for s in series for p in s.points]
    if not points:
        return empty_chart(title, "no data", width=width)
    xs = [x for x, _ in points]
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs))
    y_ticks = nice_ticks(0.0, max(max(y for _, y in points), 1e-9))
    left, right, top, bottom = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    x_span = x_ticks[-1] - x_ticks[0] or 1.0
    y_span = y_ticks[-1] - y_ticks[0] or 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_ticks[0]) / x_span * (right - left)
        py = bottom - (y - y_ticks[0]) / y_span * (bottom - top)
        return px, py

    parts = _open(title, width, height)
    _y_axis(parts, y_ticks, width, height, y_label)
    for tick in x_ticks:
        px = left + (tick - x_ticks[0]) / x_span * (right - left)
        parts.append(
            f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{AXIS}">'
            f"{format_number(tick)}</text>"
        )
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{AXIS}">{escape(x_label)}</text>'
    )
    for s in series:
        if not s.points:
            continue
        pixels = [at(x, y) for x, y in s.points]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pixels)
        if len(pixels) == 1:  # a single point still deserves a visible mark
            px, py = pixels[0]
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{s.color}"/>')
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2" '
            'stroke-linejoin="round"/>'
        )
    # Legend, right-aligned on the title line.
    x = right
    for s in reversed(series):
        name = escape(s.name)
        parts.append(f'<text x="{x}" y="16" text-anchor="end" fill="{s.color}">■ {name}</text>')
        x -= 12 + 7 * len(s.name)
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    color: str = BLUE,
    width: int = 720,
    height: int = 240,
) -> str:
    """Vertical bars with a label under each (thinned out when they would overlap)."""
    if not bars:
        return empty_chart(title, "no data", width=width)
    y_ticks = nice_ticks(0.0, max(max(v for _, v in bars), 1e-9))
    left, right, top, bottom = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    slot = (right - left) / len(bars)
    every = max(1, math.ceil(len(bars) * 56 / (right - left)))  # ~56 px per label
    parts = _open(title, width, height)
    _y_axis(parts, y_ticks, width, height, y_label)
    for i, (label, value) in enumerate(bars):
        h = value / y_ticks[-1] * (bottom - top)
        x = left + i * slot
        parts.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{bottom - h:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: '
            f"{format_number(value)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{bottom + 16}" text-anchor="middle" '
                f'fill="{AXIS}">{escape(label)}</text>'
            )
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle" '
        f'fill="{AXIS}">{escape(x_label)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def hbar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    colors: Sequence[str] | None = None,
    width: int = 720,
    empty: str = "no data",
) -> str:
    """Horizontal bars, one row per label (status codes, hosts): long labels fit."""
    if not bars:
        return empty_chart(title, empty, width=width)
    row = 22
    label_width = min(260, 12 + 7 * max(len(label) for label, _ in bars))
    height = _TOP + 8 + row * len(bars)
    left, right = label_width, width - _RIGHT - 60
    top_value = max(max(v for _, v in bars), 1e-9)
    parts = _open(title, width, height)
    for i, (label, value) in enumerate(bars):
        y = _TOP + 4 + i * row
        w = value / top_value * (right - left)
        color = colors[i] if colors is not None and i < len(colors) else BLUE
        shown = label if len(label) <= 36 else label[:35] + "…"
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" fill="#111827">'
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
        )
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(w, 1.0):.1f}" height="{row - 6}" '
            f'fill="{color}"/>'
        )
        parts.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" fill="{AXIS}">{format_number(value)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def status_color(status: str) -> str:
    """2xx green, 3xx blue, 4xx amber, 5xx red, anything else grey."""
    return {"2": "#16a34a", "3": BLUE, "4": "#d97706", "5": RED}.get(status[:1], GREY)
