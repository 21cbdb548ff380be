"""The one driver of a job run as shards on Ray: ``Pipeline.run(backend="ray")`` and
``conveyor fetch --backend ray`` both run it.

    read the source once ──► one slice per shard (by route key) ──► plan.json
                         ──► one Ray task per unfinished shard (task.run_shard)
                         ──► every shard done ──► _MANIFEST.json ──► one RunResult

The driver keeps no state of its own: everything is in the output folder (``layout``).
Killed and run again, it finds the plan, skips the slicing and the shards that are done,
and the others resume from their journals. It takes what it needs of the pipeline as a
``ShardedJob`` (its source, how items are cut, its fingerprint, and a way to run one shard
on one machine), so it never imports the builder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._engine.stats import RunResult
from .._errors import ShardFailed
from .layout import Layout
from .plan import Plan, finished, prepare, read_manifest, write_manifest
from .progress import Journals, ShardsProgress, add_outcomes, combine, finished_keys, live_outcomes
from .slices import Route
from .task import CountedOutput, LocalRun, ShardHook, ShardOutcome, ShardSpec, run_shard

MAX_RETRIES = 3
# Rounds of a job whose shards give each other work (a crawl) before the driver stops.
MAX_ROUNDS = 100


@dataclass(frozen=True)
class ShardedJob:
    """What the driver needs of a pipeline."""

    source: Iterable[Any]  # read once, by the driver
    route: Route  # (position, item) -> the key that picks its shard
    fingerprint: Mapping[str, Any]  # the pipeline's, as its journals keep it
    run_local: LocalRun  # one shard's run, inside its task
    output: ShardHook = CountedOutput  # what a shard writes and counts
    # Whether a shard that ran still has work (a crawl's frontier rows and inbox segments,
    # ``inbox.CrawlWork``): it runs again in the next round. None: a shard runs once.
    work: Callable[[Layout, int], bool] | None = None


@dataclass(frozen=True)
class ShardedRun:
    """What a sharded run did."""

    result: RunResult  # the shards run now added up; ``skipped``: records of the others
    layout: Layout
    records: list[int]  # per shard, in its part
    ran: int  # shards run now
    was_complete: bool  # the job was committed before this run: nothing ran
    tallies: list[Any] = field(default_factory=list)  # the hook's, of the shards run now


def run_sharded(
    job: ShardedJob,
    outdir: Path,
    *,
    shards: int | None,
    address: str | None,
    restart: bool,
    retry_failed: bool,
    max_retries: int = MAX_RETRIES,
    on_tick: Callable[[ShardsProgress], None] | None = None,
) -> ShardedRun:
    """Run ``job`` as shards on the Ray cluster at ``address`` into ``outdir``.

    ``on_tick`` is called about twice a second while shards run (the CLI's live line and
    the report's chart); without it the driver reads no journal.

    Raises:
        UsageError, JobMismatchError: see ``plan.prepare``; Ray missing or out of reach.
        ShardFailed: a shard failed for good; running again resumes it.
    """
    from .ray_backend import connect, run_tasks  # Ray is imported only now

    started = time.monotonic()
    ray = connect(address)
    plan = prepare(
        outdir,
        fingerprint=job.fingerprint,
        source=job.source,
        route=job.route,
        shards=shards,
        default_shards=max(1, int(ray.cluster_resources().get("CPU", 1))),
        restart=restart,
    )
    layout = plan.layout
    # An empty slice has nothing to run and leaves no part (a crawl's, unless links came).
    records = [
        finished(layout, i, retry_failed=retry_failed) if plan.items[i] else 0
        for i in range(layout.shards)
    ]
    _more_work(job, layout, records)
    skipped = sum(n or 0 for n in records)
    runnable = [i for i in range(layout.shards) if records[i] is None]
    if not runnable and read_manifest(outdir) is not None:
        empty = combine([], skipped, time.monotonic() - started)
        return ShardedRun(empty, layout, [n or 0 for n in records], 0, was_complete=True)
    outcomes: list[ShardOutcome] = []

    def on_done(outcome: ShardOutcome) -> None:
        records[outcome.index] = outcome.records
        outcomes.append(outcome)

    tick = _Ticker(plan, records, outcomes, started, on_tick) if on_tick else None
    ran: set[int] = set()
    # Rounds: a crawl's shards send each other links, so one that finished may have work
    # again; the job is done when a round leaves none anywhere (``ShardedJob.work``).
    rounds = 0
    while runnable:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise ShardFailed(
                f"shards {runnable} still have work after {MAX_ROUNDS} rounds; run the same "
                "command again to go on"
            )
        run_tasks(
            ray,
            run_shard,
            [ShardSpec(i, layout, job.run_local, job.output, retry_failed) for i in runnable],
            max_retries=max_retries,
            on_done=on_done,
            on_tick=tick.tick if tick else lambda: None,
        )
        ran.update(runnable)
        if not _more_work(job, layout, records):
            break
        runnable = [i for i in range(layout.shards) if records[i] is None]
    if tick is not None:
        tick.tick()  # the last stretch, up to the end
    counts = [n or 0 for n in records]
    result = combine([o.result for o in outcomes], skipped, time.monotonic() - started)
    if not result.deferred:  # else the job is not complete: its next run goes on with it
        write_manifest(layout, plan.fingerprint, counts)
    return ShardedRun(
        result, layout, counts, len(ran), was_complete=False, tallies=[o.tally for o in outcomes]
    )


def _more_work(job: ShardedJob, layout: Layout, records: list[int | None]) -> bool:
    """Mark the shards with work left to run (``records[i] = None``); whether any has."""
    if job.work is None:
        return False
    found = False
    for index in range(layout.shards):
        if job.work(layout, index):
            records[index] = None
            found = True
    return found


class _Ticker:
    """Tells ``on_tick`` how the job stands, from the files the shards write."""

    def __init__(
        self,
        plan: Plan,
        records: list[int | None],
        outcomes: list[ShardOutcome],
        started: float,
        on_tick: Callable[[ShardsProgress], None],
    ) -> None:
        self.plan = plan
        self.records = records  # the driver's own list: a shard's count once it is done
        self.outcomes = outcomes
        self.started = started
        self.on_tick = on_tick
        self.journals = Journals(plan.layout)
        # The chart is this run's: what the journals held before it is taken off.
        before = self.journals.read()
        self.before = (sum(map(finished_keys, before)), sum(c.failed for c in before))

    def tick(self) -> None:
        counts = self.journals.read()  # each journal read once a tick
        records = self.records
        running = [i for i, n in enumerate(records) if n is None]
        outcomes = live_outcomes(self.plan.layout, running)
        for outcome in self.outcomes:  # the shards done in this run
            add_outcomes(outcomes, outcome.outcomes)
        self.on_tick(
            ShardsProgress(
                elapsed=time.monotonic() - self.started,
                shards=len(records),
                done=sum(n is not None for n in records),
                items=sum(self.plan.items),
                finished=sum(
                    n if n is not None else finished_keys(counts[i]) for i, n in enumerate(records)
                ),
                outcomes=outcomes,
                committed=sum(map(finished_keys, counts)) - self.before[0],
                failed=sum(c.failed for c in counts) - self.before[1],
            )
        )
