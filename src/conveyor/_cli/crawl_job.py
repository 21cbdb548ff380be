"""The job behind ``conveyor crawl``: crawl, make the row, write.

    frontier ──► the crawl's fetch (robots.txt, the page, its links) + its row (the same
             worker: ``record.page_row``) ──► the user's --process stage ──► row sink

Every page fetched ends as one row (``record.CRAWL_FIELDS``: ``conveyor fetch``'s fields,
then depth, referrer and lastmod), or as one failure row. With a ``.warc``/``.warc.gz``
output there is no row: the page itself goes to the WARC sink (``WarcTally`` counts it for
the summary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import Pipeline, crawl
from .._engine.loops import WarmLoops
from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._engine.stats import RunResult
from .._errors import UsageError
from .._observe.crawl import CrawlFigures
from .errors import fail
from .job import MergeInto, RowSink, check_output, is_warc, load_function, output_sink
from .record import crawl_failure_row, page_row, page_row_with_body
from .sharded import RowOutput


@dataclass
class CrawlJob:
    seeds: list[str]
    output: str
    crawl_options: dict[str, Any] = field(default_factory=dict)
    fetch_options: dict[str, Any] = field(default_factory=dict)
    process: str | None = None
    on: Literal["threads", "processes"] = "threads"
    workers: int | None = None
    loops: int | WarmLoops = 1
    journal: str | None = None
    restart: bool = False
    retry_failed: bool = False
    # Pipeline.run's tail options (``polite.run_options_of``): deadline=, finish_at=.
    run_options: dict[str, Any] = field(default_factory=dict)
    pipeline: Pipeline | None = None  # built by ``build``

    @property
    def label(self) -> str:
        first = self.seeds[0] if self.seeds else ""
        return first if len(self.seeds) == 1 else f"{first} and {len(self.seeds) - 1} more"

    @property
    def warc(self) -> bool:
        return is_warc(self.output)

    def build(self) -> Pipeline:
        """The pipeline: the crawl, its row (or, for WARC, the page itself), --process."""
        try:
            pipeline = crawl(self.seeds, **self.crawl_options, **self.fetch_options)
        except UsageError as exc:
            fail(str(exc))
        if self.warc:
            if self.process:
                fail("--process makes rows, which a WARC file cannot hold; write .jsonl instead")
            self.pipeline = pipeline
            return pipeline
        # Fused into the crawl's workers (or run in its loop processes): ~10 µs a page.
        row = page_row_with_body if self.process else page_row
        pipeline = pipeline.map(row, on="inline", name="record")
        if self.process:
            fn = load_function(self.process)
            name = self.process.rpartition(":")[2]
            pipeline = pipeline.map(
                MergeInto(fn, name), on=self.on, workers=self.workers, name=f"process:{name}"
            )
        self.pipeline = pipeline
        return pipeline

    def make_sink(self, on_rows: Callable[[Sequence[dict[str, Any]]], None]) -> Sink:
        check_output(self.output)
        return output_sink(self.output, on_rows, rows=CrawlRowSink, failure_rows=crawl_failure_row)

    def run(self, sink: Sink, observers: tuple[Any, ...]) -> RunResult:
        pipeline = self.pipeline if self.pipeline is not None else self.build()
        return pipeline.run(
            sink,
            journal=self.journal,
            restart=self.restart,
            retry_failed=self.retry_failed,
            observers=observers,
            loops=self.loops,
            **self.run_options,
        )

    def finish_report(self, report: Any, result: RunResult) -> None:
        """The crawl's section: what its service reported and its frontier did."""
        if self.pipeline is None:
            return
        report.crawl = crawl_figures(self.pipeline, result)


def crawl_figures(pipeline: Pipeline, result: RunResult) -> CrawlFigures:
    """The crawl's figures: its service's report (``result``'s first stage) and its
    frontier's tally."""
    hook = getattr(pipeline.source, "hook", None)
    tally = getattr(hook, "tally", None)
    service = result.stages[0].details if result.stages else None
    numbers: dict[str, Any] = {}
    if service is not None:
        for name in CrawlFigures.__dataclass_fields__:
            if hasattr(service, name):
                numbers[name] = getattr(service, name)
    if tally is not None:
        numbers.update(
            known=tally.known,
            new=tally.new,
            capped=tally.capped,
            redirects=tally.redirects,
            sitemap_pages=tally.sitemap_reach[0],
            sitemap_reached=tally.sitemap_reach[1],
            frontier=dict(tally.states),
        )
    return CrawlFigures(**numbers)


class CrawlRowSink(RowSink):
    """``RowSink`` with the crawl's failure rows (its fields, read from the item)."""

    def write_failures(self, failures: Sequence[Failure]) -> None:
        rows = [crawl_failure_row(f) for f in failures]
        self.on_rows(rows)
        self.inner.write(rows)


class CrawlRowOutput(RowOutput):
    """``conveyor crawl --backend ray``'s per-shard hook: the fetch's (``sharded.py``),
    with the crawl's failure rows."""

    def write_failures(self, failures: Sequence[Failure]) -> None:
        rows = [crawl_failure_row(f) for f in failures]
        self.on_rows(rows)
        self.inner.write(rows)
