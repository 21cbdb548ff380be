"""A crawl as shards on Ray: the job the one driver (``_shards/driver.py``) runs.

The driver cuts the seeds by scope unit (a host, or with ``--scope domain`` a registrable
domain): a shard owns the units whose ``route_index`` is its number, and with them every
page of theirs, so per-host politeness stays in one place. Each shard is an ordinary crawl
run (one loop) over its seeds into its part and journal, its scope the whole crawl's;
links to units other shards own go to their inboxes (``inbox.Outbox``), and the driver
runs rounds until no shard has a frontier row or an unread inbox segment left
(``_shards/inbox.CrawlWork``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..._engine.ports import Sink
from ..._engine.spec import StageSpec
from ..._engine.stats import RunResult
from ..._errors import UsageError
from ..._shards.driver import ShardedJob
from ..._shards.inbox import CrawlWork
from ..._shards.task import CountedOutput, ShardHook, ShardPlace
from ..output import fingerprint
from .plan import CrawlPlan, CrawlSource, Owner


@dataclass(frozen=True)
class CrawlShard:
    """One shard's run, in its task: the crawl over its slice of the seeds, owning its
    share of the units. Picklable."""

    stages: tuple[StageSpec, ...]
    plan: CrawlPlan

    def __call__(
        self,
        source: Iterable[Any],
        sink: Sink,
        journal: str,
        *,
        retry_failed: bool,
        shard: ShardPlace | None = None,
    ) -> RunResult:
        from ..pipeline import Pipeline

        if shard is None:
            raise UsageError("a crawl shard runs inside a sharded job (backend='ray')")
        owner = Owner(shard.index, shard.shards, shard.control)
        # The scope stays the whole crawl's: a shard with no seeds of its own still
        # follows the links other shards send it.
        plan = dataclasses.replace(self.plan, seeds=tuple(source), owner=owner)
        pipeline = Pipeline(CrawlSource(plan), _stages=self.stages)
        return pipeline.run(sink, journal=journal, retry_failed=retry_failed, loops=1)


def crawl_sharded_job(pipeline: Any, *, output: ShardHook | None = None) -> ShardedJob:
    """The sharded job of a crawl's pipeline (``conveyor.crawl(...)...``)."""
    source = pipeline.source
    assert isinstance(source, CrawlSource)
    plan = source.plan
    scope = plan.scope
    return ShardedJob(
        source=list(plan.seeds),
        route=lambda _, seed: scope.unit(seed),
        fingerprint=fingerprint(pipeline, None),
        run_local=CrawlShard(pipeline.stages, plan),
        output=output or CountedOutput,
        work=CrawlWork(plan.max_pages),
    )
