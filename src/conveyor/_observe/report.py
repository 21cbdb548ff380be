"""``RunReport``: an observer that gathers what the end-of-run summary and report show.

It listens to engine events on the loop's thread and takes one fetch record per URL from
the CLI (on any thread). Memory is bounded: throughput lives in a self-coarsening
timeline, latency in fixed log buckets, and hosts in a capped table.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._engine.events import (
    Event,
    ItemFailed,
    RunFinished,
    RunStarted,
    Tick,
)
from .page import render_html
from .series import HostErrors, LatencyBuckets, ReportData, Timeline
from .summary import summary_group

if TYPE_CHECKING:
    from rich.console import Group

    from .._engine.stats import RunResult

OTHER_HOSTS = "(other hosts)"
NO_RESPONSE = "no response"


class RunReport:
    """Gathers throughput, latency, failures, status codes and per-host errors of one run.

    Pass it to ``Pipeline.run(observers=...)``; the CLI also calls ``add_record`` for each
    fetched URL. Afterwards ``summary_table`` renders a rich summary and ``write_html`` a
    self-contained report page.

    Args:
        bucket_seconds: the starting width of a throughput bucket (the engine ticks every
            0.25 s, so finer buckets show nothing more); buckets double in width when
            ``max_buckets`` would be passed, so long runs keep the same memory and a chart
            of a few hundred points.
        max_buckets: the most throughput buckets kept.
        max_hosts: the most distinct hosts counted one by one; records for further hosts are
            counted together as ``"(other hosts)"`` so a crawl over millions of hosts stays
            small.
        top_hosts: how many of the hosts with most errors the summary and the report list.
    """

    wants_item_events = False  # see EventBus.items: neither ItemStarted nor ItemFinished

    def __init__(
        self,
        *,
        bucket_seconds: float = 0.25,
        max_buckets: int = 480,
        max_hosts: int = 10_000,
        top_hosts: int = 10,
    ) -> None:
        self._stages: tuple[str, ...] = ()
        self._total: int | None = None
        self._done = Timeline(bucket_seconds, max_buckets)
        self._failing = Timeline(bucket_seconds, max_buckets)
        self._latency: dict[str, LatencyBuckets] = {}
        self._failures_by_kind: Counter[str] = Counter()
        self._retries = 0
        # The last tick's elapsed time and counts, to turn cumulative counts into spans.
        self._last_at = 0.0
        self._last_done = 0
        self._last_failed = 0
        self._result: RunResult | None = None
        # add_record may run on worker threads while the loop thread reads a snapshot.
        self._lock = threading.Lock()
        self._status: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._records = 0
        self._hosts_dropped = 0
        self._max_hosts = max_hosts
        self._top_hosts = top_hosts
        self._depths: Counter[int] = Counter()
        # A crawl's figures (``crawl.CrawlFigures``), set by ``conveyor crawl`` at the end.
        self.crawl: Any = None

    # -- gathering ----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Update the gathered state; O(1) per event, called on the event loop's thread."""
        # Dispatch on the exact type, most frequent first: item events can be 10k+/s.
        if type(event) is Tick:
            s = event.statistics
            self._retries = sum(stage.retried for stage in s.stages)
            self._advance(s.elapsed, s.results + s.failed + s.filtered, s.failed)
        elif type(event) is ItemFailed:
            self._failures_by_kind[event.failure.kind] += 1
        elif type(event) is RunStarted:
            self._stages = event.stages
            self._total = event.total
        elif type(event) is RunFinished:
            r = event.result
            self._result = r
            for stage in r.stages:  # latency bars from the engine's histograms
                buckets = LatencyBuckets()
                for seconds, n in stage.latency:
                    buckets.add(seconds, n)
                self._latency[stage.name] = buckets
            # Every retry the stages made, the fetch's own included (the engine counts them).
            self._retries = sum(stage.retried for stage in r.stages)
            self._advance(r.wall_seconds, r.results + r.failed + r.filtered, r.failed)

    def _advance(self, at: float, done: int, failed: int) -> None:
        # Ticks carry running totals; what changed since the last one happened in between.
        self._done.add_span(self._last_at, at, done - self._last_done)
        self._failing.add_span(self._last_at, at, failed - self._last_failed)
        self._last_at, self._last_done, self._last_failed = at, done, failed

    def add_progress(self, at: float, finished: int, failed: int) -> None:
        """Running totals at ``at`` seconds, from outside the engine's ticks: a sharded
        job's driver reads them from its shards' journals as they run. They draw the
        throughput chart, as ticks do."""
        self._advance(at, finished, failed)

    def add_record(
        self,
        *,
        status: int | None,
        host: str | None,
        error_kind: str | None,
        depth: int | None = None,
    ) -> None:
        """Count one fetched URL: its HTTP status, its host, its error kind if it failed,
        and, for a crawl, its depth.

        Thread-safe. A record counts as an error for its host when it has an error kind or
        a status of 400 or more.
        """
        label = NO_RESPONSE if status is None else str(status)
        is_error = error_kind is not None or (status is not None and status >= 400)
        name = host or "(no host)"
        with self._lock:
            self._records += 1
            if depth is not None:
                self._depths[depth] += 1
            self._status[label] += 1
            if name not in self._requests and len(self._requests) >= self._max_hosts:
                name = OTHER_HOSTS
                self._hosts_dropped += 1
            self._requests[name] += 1
            if is_error:
                self._errors[name] += 1

    # -- reading ------------------------------------------------------------------------

    def data(self) -> ReportData:
        """A frozen snapshot of everything gathered so far."""
        with self._lock:
            status = dict(sorted(self._status.items()))
            worst = self._errors.most_common(self._top_hosts)
            hosts = tuple(HostErrors(h, self._requests[h], n) for h, n in worst if n)
            records, dropped = self._records, self._hosts_dropped
            depths = dict(self._depths)
            busiest = tuple(self._requests.most_common(self._top_hosts)) if depths else ()
            by_host = dict(self._requests)
        names = self._stages or tuple(self._latency)
        latency = {name: self._latency[name].bars() for name in names if name in self._latency}
        return ReportData(
            stages=self._stages,
            total=self._total,
            bucket_seconds=self._done.width,
            throughput=self._done.rates(),
            failures_over_time=self._failing.rates(),
            latency=latency,
            retries=self._retries,
            status_codes=status,
            outcomes=self.outcomes(),
            hosts=hosts,
            records=records,
            hosts_dropped=dropped,
            depths=depths,
            busiest=busiest,
            crawl=self.crawl,
            records_by_host=by_host,
        )

    def outcomes(self) -> dict[str, int]:
        """The records by how they ended: ``ok`` (a 1xx-3xx status), ``4xx``,
        ``5xx`` (the server answered with an error, after any retries) and ``failed``
        (no response, or a later stage failed: an error kind instead of a status).
        Thread-safe; empty before any record."""
        with self._lock:
            status = list(self._status.items())
        found = {"ok": 0, "4xx": 0, "5xx": 0, "failed": 0}
        for label, n in status:
            if label == NO_RESPONSE:
                found["failed"] += n
            elif label[:1] == "4":
                found["4xx"] += n
            elif label[:1] == "5":
                found["5xx"] += n
            else:
                found["ok"] += n
        return found if any(found.values()) else {}

    @property
    def failures_by_kind(self) -> dict[str, int]:
        """Failures seen in ``ItemFailed`` events, by kind."""
        return dict(self._failures_by_kind)

    @property
    def finished(self) -> float:
        """Items finished (results, failures and filtered) as the throughput timeline saw them."""
        return self._done.total()

    def summary_table(self, result: RunResult) -> Group:
        """The end-of-run summary as rich renderables (one table per topic, grouped).

        Counts, failures by kind, status codes, items/s, p50/p95/p99 per stage and the
        hosts with most errors.
        """
        return summary_group(result, self.data())

    def write_html(
        self, path: str | os.PathLike[str], result: RunResult, *, title: str = "conveyor report"
    ) -> None:
        """Write one self-contained HTML file: inline CSS and SVG, no script, no network.

        Written to a temporary name beside ``path`` and renamed, so a crash never leaves
        half a report behind.
        """
        target = Path(path)
        text = render_html(result, self.data(), title=title)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
