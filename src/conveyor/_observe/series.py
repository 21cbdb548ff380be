"""Bounded series the report gathers, and the frozen snapshot it hands to its renderers.

Everything here is pure arithmetic with no clock, loop or terminal, so it is tested
directly. Memory stays fixed however long a run is: the timeline merges neighbouring
buckets when it fills, and latency buckets are a fixed log scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Latency buckets: 4 per decade (x1.78 apart) from 1 µs to 10,000 s, plus one bucket below
# and one above. Coarser than the engine's 2% buckets on purpose: these are for a chart a
# person reads, and ~42 bars is what fits; exact percentiles come from the engine.
_PER_DECADE = 4
_LOW = 1e-6
_DECADES = 10
LATENCY_BUCKETS = _PER_DECADE * _DECADES + 2


def latency_edges(index: int) -> tuple[float, float]:
    """The ``[low, high)`` seconds of one latency bucket (``inf`` for the last)."""
    if index <= 0:
        return 0.0, _LOW
    if index >= LATENCY_BUCKETS - 1:
        return _LOW * 10.0**_DECADES, math.inf
    return _LOW * 10.0 ** ((index - 1) / _PER_DECADE), _LOW * 10.0 ** (index / _PER_DECADE)


class LatencyBuckets:
    """A fixed log-scale histogram of seconds; ``add`` is O(1) and allocation-free."""

    __slots__ = ("count", "counts")

    def __init__(self) -> None:
        self.counts = [0] * LATENCY_BUCKETS
        self.count = 0

    def add(self, seconds: float, n: int = 1) -> None:
        if seconds < _LOW:
            index = 0
        else:
            index = min(int(math.log10(seconds / _LOW) * _PER_DECADE) + 1, LATENCY_BUCKETS - 1)
        self.counts[index] += n
        self.count += n

    def bars(self) -> tuple[tuple[float, float, int], ...]:
        """``(low, high, count)`` for every bucket from the first to the last non-empty one.

        Empty buckets inside the span are kept so the chart's x axis stays evenly spaced.
        """
        filled = [i for i, n in enumerate(self.counts) if n]
        if not filled:
            return ()
        return tuple((*latency_edges(i), self.counts[i]) for i in range(filled[0], filled[-1] + 1))


class Timeline:
    """Counts spread over time buckets, for a throughput-over-time chart.

    Counts arrive as "``n`` things happened between ``start`` and ``end``" (one engine
    tick's worth) and are spread evenly over that span, so a tick that straddles a bucket
    edge does not make one bucket look fast and the next slow. When ``max_buckets`` is
    reached, neighbours merge pairwise and the bucket width doubles: a 10-hour run keeps
    the same memory as a 10-minute one, with coarser buckets.
    """

    __slots__ = ("_counts", "_max", "end", "width")

    def __init__(self, width: float = 1.0, max_buckets: int = 600) -> None:
        if width <= 0 or max_buckets < 2:
            raise ValueError("Timeline needs width > 0 and max_buckets >= 2")
        self.width = width
        self._max = max_buckets
        self._counts: list[float] = []
        self.end = 0.0

    def add_span(self, start: float, end: float, n: float) -> None:
        """Record ``n`` events spread evenly over ``[start, end]`` seconds since the start."""
        start = max(0.0, start)
        end = max(start, end)
        self.end = max(self.end, end)
        while end >= self.width * self._max:
            self._merge()
        if not n:
            self._grow(int(end // self.width))
            return
        if end - start <= 0.0:
            self._add(int(start // self.width), n)
            return
        span = end - start
        first, last = int(start // self.width), int(end // self.width)
        for index in range(first, last + 1):
            lo = max(start, index * self.width)
            hi = min(end, (index + 1) * self.width)
            if hi > lo:
                self._add(index, n * (hi - lo) / span)

    def _grow(self, index: int) -> None:
        if index >= len(self._counts):
            self._counts.extend([0.0] * (index + 1 - len(self._counts)))

    def _add(self, index: int, n: float) -> None:
        self._grow(index)
        self._counts[index] += n

    def _merge(self) -> None:
        counts = self._counts
        self._counts = [sum(counts[i : i + 2]) for i in range(0, len(counts), 2)]
        self.width *= 2

    def rates(self) -> tuple[tuple[float, float], ...]:
        """``(bucket start seconds, events per second)`` for each bucket.

        The last bucket is divided by the part of it the run covered, not its full width,
        so a run that ends 0.2 s into a bucket does not show a false slump at the end.
        """
        out = []
        for index, n in enumerate(self._counts):
            start = index * self.width
            covered = min(self.width, self.end - start)
            # A sliver of a bucket (a few ms) would turn a handful of items into a spike.
            covered = max(covered, self.width / 4)
            out.append((start, n / covered))
        return tuple(out)

    def total(self) -> float:
        return sum(self._counts)


@dataclass(frozen=True, slots=True)
class HostErrors:
    """One host's request and error counts (an error: an error kind, or status >= 400)."""

    host: str
    requests: int
    errors: int


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the summary table and the HTML page show, besides the ``RunResult``.

    A frozen snapshot, so renderers are pure functions of it and need no locks.

    Attributes:
        stages: stage names in pipeline order.
        total: input items, when the source could count them.
        bucket_seconds: the width of one throughput bucket.
        throughput: ``(seconds, items/s)`` of items finished (results, failures, filtered).
        failures_over_time: ``(seconds, failures/s)`` on the same buckets.
        latency: per stage, ``(low, high, count)`` latency bars of successful attempts.
        retries: attempts that were retried, all stages together.
        status_codes: HTTP status (as text, or ``"no response"``) to count.
        hosts: hosts with most errors, most first.
        records: how many fetch records ``add_record`` received.
        hosts_dropped: records whose host was lumped into ``"(other hosts)"`` because the
            number of distinct hosts tracked reached its bound.
        outcomes: the fetch records by how they ended (``RunReport.outcomes``): ``ok``,
            ``4xx``, ``5xx``, ``failed``; empty when no record was tallied.
        depths: a crawl's records by depth (none for other jobs).
        busiest: the hosts with most records, most first (a crawl's pages per host).
        crawl: a crawl's figures (``crawl.CrawlFigures``), or None.
        records_by_host: the fetch records by host (as ``add_record`` counted them, up to
            its bound of hosts), so host health can say how many records a host's
            requests made.
    """

    stages: tuple[str, ...] = ()
    total: int | None = None
    bucket_seconds: float = 1.0
    throughput: tuple[tuple[float, float], ...] = ()
    failures_over_time: tuple[tuple[float, float], ...] = ()
    latency: Mapping[str, tuple[tuple[float, float, int], ...]] = field(default_factory=dict)
    retries: int = 0
    status_codes: Mapping[str, int] = field(default_factory=dict)
    hosts: tuple[HostErrors, ...] = ()
    records: int = 0
    hosts_dropped: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    depths: Mapping[int, int] = field(default_factory=dict)
    busiest: tuple[tuple[str, int], ...] = ()
    crawl: Any = None  # ``crawl.CrawlFigures``, for a crawl
    records_by_host: Mapping[str, int] = field(default_factory=dict)


def format_seconds(seconds: float) -> str:
    """Latency as a person reads it: ``850 µs``, ``12.5 ms``, ``3.20 s``."""
    if math.isinf(seconds):
        return "∞"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"
