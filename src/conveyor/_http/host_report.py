"""What a host did, as plain frozen data: ``HostReport``, and the tally that builds it.

The report's host table and chart, the live display and ``RunResult`` read these. They
are plain values (ints, floats, strings, tuples), so they pickle across loop processes
and Ray tasks, and they merge: two reports of one host add up (a host resumed in a
second run, a shard retried), reports of different hosts sit side by side.

Every part is bounded, so that a job with millions of hosts keeps a few hundred bytes per
host it still remembers: latency is a histogram of log-spaced buckets (a quarter octave,
so p50 and p95 are within 9%), the controller's choices over time are a timeline of at
most ``TIMELINE_POINTS`` steps (halved, every other point dropped, when it fills), and
pauses keep the last ``PAUSES_KEPT`` with a count of all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TIMELINE_POINTS = 64
PAUSES_KEPT = 16
# Buckets per doubling of the latency; bucket i holds [2^(i/4), 2^((i+1)/4)) milliseconds.
_STEPS = 4
_MIN_MS = 0.001


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a latency."""
    return math.floor(_STEPS * math.log2(max(seconds * 1000.0, _MIN_MS)))


def bucket_seconds(bucket: int) -> float:
    """The middle (geometric) of a bucket, in seconds."""
    return float(2.0 ** ((bucket + 0.5) / _STEPS) / 1000.0)


def quantile(histogram: Iterable[tuple[int, int]], q: float) -> float | None:
    """The ``q`` quantile (0 to 1) of a histogram of ``(bucket, count)``, in seconds."""
    pairs = sorted(histogram)
    total = sum(count for _, count in pairs)
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket, count in pairs:
        seen += count
        if seen >= rank:
            return bucket_seconds(bucket)
    return bucket_seconds(pairs[-1][0])  # pragma: no cover - float rounding at q == 1


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause of a host: when (seconds from the run's start), how long, and why.

    Attributes:
        retry_after: the ``Retry-After`` header as the site sent it, or None for a
            refusal without one (then the pause is our own backoff).
        deferred: the pause was beyond the cap, so the host's items were deferred.
    """

    at: float
    seconds: float
    status: int | None
    retry_after: str | None
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """The controller's choice for a host from ``at`` (seconds from the run's start) on:
    its concurrency limit and its rate limit (None: no rate limit)."""

    at: float
    limit: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class HostReport:
    """What one host did in a run. Counts are of requests (each retry and redirect hop).

    Attributes:
        latency: a histogram of the ok answers' latency, ``(bucket, count)`` pairs (see
            ``latency_p50``/``latency_p95``).
        statuses: ``(status, count)`` pairs.
        pauses: the last ``PAUSES_KEPT`` pauses; ``pause_count`` counts them all.
        timeline: the concurrency and rate the controller chose over time.
        retries_denied: retries the host's retry budget refused.
        deferred: items not fetched for this host's sake (a pause beyond the cap, its
            breaker, the tail).
    """

    host: str
    requests: int = 0
    ok: int = 0
    refusals: int = 0
    server_errors: int = 0
    net_fails: int = 0
    statuses: tuple[tuple[int, int], ...] = ()
    latency: tuple[tuple[int, int], ...] = ()
    bytes: int = 0
    pauses: tuple[Pause, ...] = ()
    pause_count: int = 0
    breaker_openings: int = 0
    retries: int = 0
    retries_denied: int = 0
    deferred: int = 0
    timeline: tuple[Step, ...] = ()

    @property
    def wasted(self) -> int:
        """Requests that brought nothing: refusals, server errors and network failures."""
        return self.refusals + self.server_errors + self.net_fails

    @property
    def latency_p50(self) -> float | None:
        return quantile(self.latency, 0.5)

    @property
    def latency_p95(self) -> float | None:
        return quantile(self.latency, 0.95)

    def merge(self, other: HostReport) -> HostReport:
        """Both reports of one host added up (times are from each run's own start)."""
        return HostReport(
            host=self.host,
            requests=self.requests + other.requests,
            ok=self.ok + other.ok,
            refusals=self.refusals + other.refusals,
            server_errors=self.server_errors + other.server_errors,
            net_fails=self.net_fails + other.net_fails,
            statuses=_add(self.statuses, other.statuses),
            latency=_add(self.latency, other.latency),
            bytes=self.bytes + other.bytes,
            pauses=tuple(sorted(self.pauses + other.pauses, key=lambda p: p.at))[-PAUSES_KEPT:],
            pause_count=self.pause_count + other.pause_count,
            breaker_openings=self.breaker_openings + other.breaker_openings,
            retries=self.retries + other.retries,
            retries_denied=self.retries_denied + other.retries_denied,
            deferred=self.deferred + other.deferred,
            timeline=tuple(thin(sorted(self.timeline + other.timeline, key=lambda s: s.at))),
        )


def merge_reports(*reports: Mapping[str, HostReport]) -> dict[str, HostReport]:
    """Reports by host from several places (loop processes, shards, runs) as one."""
    merged: dict[str, HostReport] = {}
    for part in reports:
        for host, report in part.items():
            seen = merged.get(host)
            merged[host] = report if seen is None else seen.merge(report)
    return merged


def thin(steps: list[Step], limit: int = TIMELINE_POINTS) -> list[Step]:
    """At most ``limit`` steps: every other one dropped, the first and last kept."""
    while len(steps) > limit:
        steps = steps[:-1:2] + steps[-1:]
    return steps


def _add(
    a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    counts = dict(a)
    for key, count in b:
        counts[key] = counts.get(key, 0) + count
    return tuple(sorted(counts.items()))


class HostTally:
    """The counts behind one host's ``HostReport``, kept while the host is remembered."""

    __slots__ = (
        "breaker_openings",
        "bytes",
        "counts",
        "deferred",
        "latency",
        "pause_count",
        "pauses",
        "resolution",
        "retries",
        "retries_denied",
        "statuses",
        "steps",
    )

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0]  # ok, refusals, server errors, network failures
        self.statuses: dict[int, int] = {}
        self.latency: dict[int, int] = {}
        self.bytes = self.pause_count = self.breaker_openings = 0
        self.retries = self.retries_denied = self.deferred = 0
        self.pauses: list[Pause] = []
        self.steps: list[Step] = []
        self.resolution = 1.0  # seconds between two steps kept; doubles as the line thins

    def answer(self, index: int, status: int | None, latency: float | None, nbytes: int) -> None:
        """One request's end: ``index`` 0 ok, 1 refusal, 2 server error, 3 network failure;
        ``latency`` only for an ok answer."""
        self.counts[index] += 1
        if status is not None:
            self.statuses[status] = self.statuses.get(status, 0) + 1
        if latency is not None:
            bucket = latency_bucket(latency)
            self.latency[bucket] = self.latency.get(bucket, 0) + 1
        self.bytes += nbytes

    def pause(self, pause: Pause) -> None:
        self.pause_count += 1
        self.pauses.append(pause)
        if len(self.pauses) > PAUSES_KEPT:
            del self.pauses[0]

    def shows(self, limit: int) -> bool:
        """The timeline's last step is ``limit`` with no rate limit: a step of the same
        would change nothing (``step`` would return at once; asked first, it is not called
        for most answers)."""
        steps = self.steps
        return bool(steps) and steps[-1].limit == limit and steps[-1].rate is None

    def step(self, at: float, limit: int, rate: float | None) -> None:
        """Note the controller's choice at ``at``; a change within ``resolution`` of the
        last step replaces it, so a host changing its mind every request costs one step."""
        if rate is not None:
            rate = float(f"{rate:.2g}")  # ~5% steps: the cubic curve moves on every call
        steps = self.steps
        if steps:
            last = steps[-1]
            if last.limit == limit and last.rate == rate:
                return
            if at - last.at < self.resolution and len(steps) > 1:
                steps[-1] = Step(last.at, limit, rate)
                return
        steps.append(Step(at, limit, rate))
        if len(steps) > TIMELINE_POINTS:
            self.steps = thin(steps, TIMELINE_POINTS // 2)
            self.resolution *= 2.0

    def report(self, host: str) -> HostReport:
        ok, refusals, server_errors, net_fails = self.counts
        return HostReport(
            host=host,
            requests=ok + refusals + server_errors + net_fails,
            ok=ok,
            refusals=refusals,
            server_errors=server_errors,
            net_fails=net_fails,
            statuses=tuple(sorted(self.statuses.items())),
            latency=tuple(sorted(self.latency.items())),
            bytes=self.bytes,
            pauses=tuple(self.pauses),
            pause_count=self.pause_count,
            breaker_openings=self.breaker_openings,
            retries=self.retries,
            retries_denied=self.retries_denied,
            deferred=self.deferred,
            timeline=tuple(self.steps),
        )
