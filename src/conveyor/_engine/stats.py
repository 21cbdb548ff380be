"""Counters, latency histograms and the final ``RunResult``."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from .outcomes import Failure
from .ports import StageReport

# Log-spaced buckets, 2% apart, from 1 µs to ~30 h: fixed memory, ~1% error on percentiles.
_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)
_MIN = 1e-6
_BUCKETS = int(math.log(1e5 / _MIN) / _LOG_GROWTH) + 2
# Bucket i holds (edge[i-1], edge[i]]; a binary search in C is twice as fast as a log.
_EDGES = [_MIN * _GROWTH**i for i in range(_BUCKETS - 1)]


class LatencyHistogram:
    """Percentiles over any number of samples in constant memory."""

    __slots__ = ("_counts", "count", "total")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self._counts[bisect_left(_EDGES, seconds)] += 1
        self.count += 1
        self.total += seconds

    def samples(self) -> tuple[tuple[float, int], ...]:
        """``(seconds, count)`` for every non-empty bucket: its middle and how many fell in
        it. For charts (the report's latency bars) without an event per item."""
        return tuple(
            (_MIN if index == 0 else _MIN * _GROWTH ** (index - 0.5), n)
            for index, n in enumerate(self._counts)
            if n
        )

    def percentile(self, p: float) -> float | None:
        if not self.count:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.count))
        seen = 0
        for index, n in enumerate(self._counts):
            seen += n
            if seen >= rank:
                # The bucket's geometric middle.
                return _MIN if index == 0 else _MIN * _GROWTH ** (index - 0.5)
        return None  # pragma: no cover - unreachable: counts add up to count


class StageCounters:
    """Mutable per-stage counters, touched only on the event loop's thread."""

    __slots__ = (
        "busy",
        "deferred",
        "failed",
        "filtered",
        "in_flight",
        "latency",
        "name",
        "place",
        "reason",
        "retried",
        "started",
        "succeeded",
        "timeouts_abandoned",
        "workers",
    )

    def __init__(self, name: str, place: str, workers: int) -> None:
        self.name = name
        self.place = place
        self.reason = ""  # why on="auto" chose ``place``
        self.workers = workers
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.filtered = 0
        self.deferred = 0
        self.retried = 0
        self.in_flight = 0
        self.busy = 0.0
        self.timeouts_abandoned = 0
        self.latency = LatencyHistogram()

    def snapshot(
        self,
        queue_depth: int,
        *,
        final: bool = False,
        details: StageReport | None = None,
        restarts: int = 0,
    ) -> StageStatistics:
        """The stage now; ``final`` (the run's result) also carries the latency samples."""
        lat = self.latency
        return StageStatistics(
            name=self.name,
            place=self.place,
            workers=self.workers,
            started=self.started,
            succeeded=self.succeeded,
            failed=self.failed,
            filtered=self.filtered,
            retried=self.retried,
            in_flight=self.in_flight,
            queue_depth=queue_depth,
            busy_seconds=self.busy,
            abandoned_threads=self.timeouts_abandoned,
            p50=lat.percentile(50),
            p95=lat.percentile(95),
            p99=lat.percentile(99),
            reason=self.reason,
            latency=lat.samples() if final else (),
            details=details,
            restarts=restarts,
            deferred=self.deferred,
        )


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """One stage at one moment. Latencies are seconds per successful attempt."""

    name: str
    place: str
    workers: int
    started: int
    succeeded: int
    failed: int
    filtered: int
    retried: int
    in_flight: int
    queue_depth: int
    busy_seconds: float
    abandoned_threads: int
    p50: float | None
    p95: float | None
    p99: float | None
    reason: str = ""  # why on="auto" placed the stage where it is (empty: placed by hand)
    # In the run's result only: (seconds, count) per latency bucket of successful attempts.
    latency: tuple[tuple[float, int], ...] = ()
    # What the stage's service says of itself (``Service.report``; the fetch's is a
    # ``FetchReport``), merged over the loop processes; None for a plain function.
    details: StageReport | None = None
    restarts: int = 0  # worker or loop processes replaced after dying
    deferred: int = 0  # items whose call raised ``Deferred`` (left for the next run)


@dataclass(frozen=True, slots=True)
class Stall:
    """Nothing has finished for a while, and no service says it is holding its hosts
    back politely: where the run is stuck (``RunStatistics.stall``).

    Attributes:
        stage: the stage with the oldest item in flight.
        seconds: how long nothing has finished.
        hosts: the hosts its service has work for (from its report, when it names them).
        oldest: the five oldest items in flight: ``(key as text, seconds in flight)``.
    """

    stage: str
    seconds: float
    hosts: tuple[str, ...]
    oldest: tuple[tuple[str, float], ...]

    def describe(self) -> str:
        """One line: the stage, for how long, the hosts, the oldest items."""
        hosts = f" (hosts: {', '.join(self.hosts[:5])})" if self.hosts else ""
        oldest = ", ".join(f"{key} {age:.0f} s" for key, age in self.oldest)
        return (
            f"stalled: nothing finished for {self.seconds:.0f} s in stage "
            f"{self.stage!r}{hosts}; oldest in flight: {oldest or '-'}"
        )


@dataclass(frozen=True, slots=True)
class RunStatistics:
    """The whole run at one moment (for progress displays)."""

    elapsed: float
    total: int | None
    admitted: int
    skipped: int
    results: int
    failed: int
    filtered: int
    stages: tuple[StageStatistics, ...]
    deferred: int = 0  # input items left for the next run (``Deferred``)
    stall: Stall | None = None  # nothing finishing, and not for politeness: where


@dataclass(frozen=True)
class RunResult:
    """What a run did.

    Attributes:
        items: input items taken into the run (skipped ones not included).
        results: results delivered to the sink or the consumer.
        failed: items that ended as a ``Failure``.
        filtered: items a ``filter`` dropped.
        skipped: input items not run because a journal says they are done or duplicates.
        failures: the failures themselves (the first 10,000; ``failures_dropped`` counts
            the rest, which are still in ``failures_by_kind`` and in the sink).
        failures_by_kind: every failure counted by kind.
        stages: per-stage statistics, with latency percentiles and busy time.
        wall_seconds: the run's duration.
        interrupted: True when Ctrl-C (or a stop) ended the run before the input did.
        failures_dropped: failures not kept in ``failures`` (past the first 10,000).
        deferred: input items left for the next run: a stage raised ``Deferred`` for them
            (or for one of their parts), or the run's ``deadline`` came first. Not in the
            output, not failures: with a journal, running the same job again takes them
            up (and only them).
        deferred_by_reason: ``deferred`` by the deferral's reason ("paused", "breaker",
            "deadline", ...).
        unread: input items the run did not read because its ``deadline`` came, when the
            source knows its length (else 0): the next run reads them.

    ``ok`` means no item failed and the run was not interrupted; ``complete`` means, in
    addition, that nothing is left for a next run (nothing deferred or unread).
    """

    items: int
    results: int
    failed: int
    filtered: int
    skipped: int
    failures: tuple[Failure, ...]
    failures_by_kind: dict[str, int]
    stages: tuple[StageStatistics, ...]
    wall_seconds: float
    interrupted: bool = False
    failures_dropped: int = 0
    deferred: int = 0
    deferred_by_reason: Mapping[str, int] = field(default_factory=dict)
    unread: int = 0

    @property
    def items_per_second(self) -> float:
        return self.items / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No item failed and the run was not interrupted (deferred items may remain)."""
        return self.failed == 0 and not self.interrupted

    @property
    def complete(self) -> bool:
        """``ok``, and nothing left for a next run: no item deferred, none unread."""
        return self.ok and self.deferred == 0 and self.unread == 0

    def summary(self) -> str:
        """A short plain-text report."""
        lines = [
            f"{'interrupted' if self.interrupted else 'finished'} in {self.wall_seconds:.2f} s: "
            f"{self.items} items, {self.results} results, {self.failed} failed, "
            f"{self.filtered} filtered, {self.skipped} skipped "
            f"({self.items_per_second:,.0f} items/s)"
        ]
        if self.failures_by_kind:
            kinds = ", ".join(f"{k} {n}" for k, n in Counter(self.failures_by_kind).most_common())
            lines.append(f"failures by kind: {kinds}")
        if self.deferred or self.unread:
            reasons = ", ".join(
                f"{k} {n}" for k, n in Counter(self.deferred_by_reason).most_common()
            )
            left = [f"{self.deferred} deferred ({reasons})"] if self.deferred else []
            if self.unread:
                left.append(f"{self.unread} not read")
            lines.append(f"{' and '.join(left)}: run the same command again to finish")
        header = f"{'stage':<20} {'on':<9} {'ok':>9} {'failed':>7} {'retried':>7} " + (
            f"{'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'busy s':>8}"
        )
        lines.append(header)
        lines.extend(
            f"{s.name[:20]:<20} {s.place:<9} {s.succeeded:>9} {s.failed:>7} {s.retried:>7} "
            f"{_ms(s.p50):>9} {_ms(s.p95):>9} {_ms(s.p99):>9} {s.busy_seconds:>8.2f}"
            for s in self.stages
        )
        return "\n".join(lines)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}"
