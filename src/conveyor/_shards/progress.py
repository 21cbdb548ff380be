"""What the driver knows of a job while its shards run, and of the run once they are done.

The driver reads files only: each running shard's journal for the keys it has committed
(``_io.read_counts``, read-only), and the ``progress.json`` its newest attempt writes each
second for its records by outcome. It needs nothing from the cluster but the tasks'
results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._engine.stats import RunResult, StageStatistics
from .._io import JournalStatistics, read_counts
from .fence import current_attempt
from .layout import Layout, read_json


@dataclass(frozen=True)
class ShardsProgress:
    """One look at a sharded job while it runs, for a live line and a report's chart."""

    elapsed: float  # seconds since the driver began
    shards: int
    done: int  # shards done, in this run or before it
    items: int  # in the plan: every shard's slice
    finished: int  # items finished: done shards' records, running shards' committed keys
    outcomes: dict[str, int]  # records by outcome: running attempts' and this run's done
    committed: int  # keys the journals committed in this run (finished, failed included)
    failed: int  # of which failed


_ZERO = JournalStatistics(done=0, failed=0, filtered=0, duplicates=0)


class Journals:
    """The shards' journals' committed counts, each read once a look; a journal that
    cannot be read now keeps its last reading, so the figures never step back."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.last = [_ZERO] * layout.shards

    def read(self) -> list[JournalStatistics]:
        for index in range(self.layout.shards):
            counts = read_counts(self.layout.journal(index))
            if counts is not None:
                self.last[index] = counts
        return list(self.last)


def finished_keys(counts: JournalStatistics) -> int:
    return counts.done + counts.failed + counts.filtered


def live_outcomes(layout: Layout, running: Iterable[int]) -> dict[str, int]:
    """The records of the shards still running, by outcome, as their newest attempts last
    told (``progress.json``, each second)."""
    found: dict[str, int] = {}
    for index in running:
        try:
            told = read_json(layout.progress(index))
        except ValueError:  # half-written, or not ours: the live line skips it
            continue
        if not isinstance(told, dict):
            continue
        if told.get("attempt") != current_attempt(layout.shard_dir(index)):
            continue  # an older attempt's word: its successor starts from the journal
        outcomes = told.get("outcomes")
        for name, n in outcomes.items() if isinstance(outcomes, dict) else ():
            if isinstance(name, str) and isinstance(n, int):
                found[name] = found.get(name, 0) + n
    return found


def add_outcomes(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for name, n in more.items():
        into[name] = into.get(name, 0) + n
    return into


def combine(results: Sequence[RunResult], skipped_records: int, wall: float) -> RunResult:
    """The shards' results as one run's: counts added; per stage, counts added and the
    percentiles of the shard that ran the most (there is no shared histogram to merge)."""
    kinds: dict[str, int] = {}
    reasons: dict[str, int] = {}
    by_name: dict[str, list[StageStatistics]] = {}
    for result in results:
        for kind, n in result.failures_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + n
        for reason, n in result.deferred_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
        for stage in result.stages:
            by_name.setdefault(stage.name, []).append(stage)
    stages = []
    for group in by_name.values():
        buckets: dict[float, int] = {}
        for stage in group:
            for bound, n in stage.latency:
                buckets[bound] = buckets.get(bound, 0) + n
        stages.append(
            dataclasses.replace(
                max(group, key=lambda s: s.succeeded),
                workers=sum(s.workers for s in group),
                started=sum(s.started for s in group),
                succeeded=sum(s.succeeded for s in group),
                failed=sum(s.failed for s in group),
                filtered=sum(s.filtered for s in group),
                deferred=sum(s.deferred for s in group),
                retried=sum(s.retried for s in group),
                in_flight=0,
                queue_depth=0,
                busy_seconds=sum(s.busy_seconds for s in group),
                abandoned_threads=sum(s.abandoned_threads for s in group),
                latency=tuple(sorted(buckets.items())),
            )
        )
    return RunResult(
        items=sum(r.items for r in results),
        results=sum(r.results for r in results),
        failed=sum(r.failed for r in results),
        filtered=sum(r.filtered for r in results),
        skipped=sum(r.skipped for r in results) + skipped_records,
        failures=(),
        failures_by_kind=kinds,
        stages=tuple(stages),
        wall_seconds=wall,
        deferred=sum(r.deferred for r in results),
        deferred_by_reason=reasons,
        unread=sum(r.unread for r in results),
    )
