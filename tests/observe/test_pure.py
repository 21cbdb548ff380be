"""The pure pieces: bounded series, percent-free arithmetic and the SVG builders."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor._observe.charts import (
    Series,
    bar_chart,
    empty_chart,
    format_number,
    hbar_chart,
    line_chart,
    nice_ticks,
    status_color,
)
from conveyor._observe.series import (
    LATENCY_BUCKETS,
    LatencyBuckets,
    Timeline,
    format_seconds,
    latency_edges,
)

from .helpers import StrictHTML


def test_latency_buckets_put_each_sample_between_its_edges() -> None:
    buckets = LatencyBuckets()
    samples = [0.0, 5e-7, 1e-6, 0.0009, 0.001, 0.0123, 0.5, 1.0, 42.0, 1e9]
    for seconds in samples:
        before = list(buckets.counts)
        buckets.add(seconds)
        index = next(
            i for i, (a, b) in enumerate(zip(before, buckets.counts, strict=True)) if a != b
        )
        low, high = latency_edges(index)
        assert low <= seconds < high or (index == LATENCY_BUCKETS - 1 and seconds >= low)
    assert buckets.count == len(samples)


def test_latency_bars_span_first_to_last_filled_bucket() -> None:
    buckets = LatencyBuckets()
    assert buckets.bars() == ()
    buckets.add(0.001)
    buckets.add(0.001)
    buckets.add(0.1)
    bars = buckets.bars()
    assert sum(n for _, _, n in bars) == 3
    assert bars[0][2] == 2
    assert bars[-1][2] == 1
    assert len(bars) == 9  # two decades at four buckets per decade, both ends included
    assert all(a[1] == pytest.approx(b[0]) for a, b in itertools.pairwise(bars))


def test_timeline_spreads_a_span_over_the_buckets_it_covers() -> None:
    timeline = Timeline(width=1.0)
    timeline.add_span(0.5, 1.5, 10)
    timeline.add_span(1.5, 2.0, 5)
    rates = timeline.rates()
    assert [start for start, _ in rates] == [0.0, 1.0]  # ending on an edge opens no bucket
    assert rates[0][1] == pytest.approx(5.0)
    assert rates[1][1] == pytest.approx(10.0)
    assert timeline.total() == pytest.approx(15)


def test_timeline_last_bucket_is_divided_by_the_part_the_run_covered() -> None:
    timeline = Timeline(width=1.0)
    timeline.add_span(0.0, 1.0, 100)
    timeline.add_span(1.0, 1.5, 50)  # the same pace, half a bucket
    assert [rate for _, rate in timeline.rates()] == pytest.approx([100.0, 100.0])


@given(
    spans=st.lists(
        st.tuples(st.floats(0, 0.3), st.integers(0, 1000)),
        min_size=1,
        max_size=300,
    )
)
def test_timeline_stays_bounded_and_loses_no_counts(spans: list[tuple[float, int]]) -> None:
    timeline = Timeline(width=0.25, max_buckets=16)
    at = 0.0
    for step, n in spans:
        timeline.add_span(at, at + step, n)
        at += step
    assert len(timeline.rates()) <= 16
    assert timeline.total() == pytest.approx(sum(n for _, n in spans))
    assert timeline.width * 16 > at


def test_nice_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0, 7.3) == [0, 2, 4, 6, 8]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0, 1234)
    assert ticks[0] == 0
    assert ticks[-1] >= 1234
    assert len(ticks) <= 7
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.inf)


def test_number_and_seconds_formats() -> None:
    assert [format_number(v) for v in (0, 950, 12_345, 3_400_000, 0.25)] == [
        "0",
        "950",
        "12.3k",
        "3.4M",
        "0.25",
    ]
    assert format_seconds(0.00085) == "850 µs"
    assert format_seconds(0.0125) == "12.5 ms"
    assert format_seconds(3.2) == "3.2 s"
    assert status_color("200") != status_color("503") != status_color("no response")


def _well_formed(svg: str) -> StrictHTML:
    parser = StrictHTML()
    assert parser.check(svg) == []
    assert parser.tags[0] == "svg"
    return parser


def test_line_chart_draws_one_polyline_per_series_and_escapes_text() -> None:
    svg = line_chart(
        [Series("ok <items>", [(0, 1), (1, 3), (2, 2)]), Series("failed", [(0, 0), (1, 1)])],
        title="Throughput & <more>",
        x_label="seconds",
        y_label="items / s",
    )
    parser = _well_formed(svg)
    assert parser.tags.count("polyline") == 2
    assert "Throughput &amp; &lt;more&gt;" in svg
    assert "<more>" not in svg
    assert "<items>" not in svg


def test_bar_and_hbar_charts_draw_a_rect_per_bar() -> None:
    bars = [(f"{i} ms", float(i)) for i in range(30)]
    parser = _well_formed(bar_chart(bars, title="t", x_label="x", y_label="y"))
    assert parser.tags.count("rect") == 30
    svg = bar_chart(bars, title="t", x_label="x", y_label="y")
    # Thirty labels do not fit under 30 narrow bars: some are left out, the first is kept.
    assert ">0 ms</text>" in svg
    assert ">1 ms</text>" not in svg
    assert "<title>1 ms: 1</title>" in svg  # every bar still names itself on hover
    hosts = [("a-very-long-host-name-" * 3 + ".example", 5.0), ("b.example", 2.0)]
    svg = hbar_chart(hosts, title="hosts")
    parser = _well_formed(svg)
    assert parser.tags.count("rect") == 2
    assert "…" in svg  # the long name is shortened on screen, whole in its tooltip


def test_charts_without_data_say_so() -> None:
    for svg in (
        line_chart([Series("x", [])], title="t", x_label="x", y_label="y"),
        bar_chart([], title="t", x_label="x", y_label="y"),
        hbar_chart([], title="t", empty="nothing recorded"),
        empty_chart("t", "no data"),
    ):
        _well_formed(svg)
        assert "no data" in svg or "nothing recorded" in svg
