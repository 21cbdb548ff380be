"""One shard of ``conveyor fetch --backend ray``: the body of its Ray task.

The task runs the same job as ``conveyor fetch`` (``job.build_pipeline``: fetch, the row,
the user's --process), on one event loop, over its slice of the input, into its own part
with its own journal beside it. Run again (Ray retries it when its worker dies, or the
command is run again after the driver died), it resumes from that journal: the part is cut
back to the journal's durable point and the finished URLs are skipped. Each attempt claims
a number first; a replaced attempt can no longer write or commit (``shards.Fence``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .._engine.stats import RunResult
from .._pipeline.parts import count_rows
from .._pipeline.shards import Fence, FencedSink, Layout, claim_attempt, write_atomic
from .job import FetchJob, RowSink, build_pipeline, retryable_status
from .record import record_host

# (status, host, error_kind) → records: the shard's share of the summary's tables.
Tally = dict[tuple[int | None, str | None, str | None], int]


@dataclass(frozen=True)
class ShardSpec:
    index: int
    layout: Layout
    job: FetchJob  # the user's job; input, output and journal are replaced per shard


@dataclass(frozen=True)
class ShardOutcome:
    index: int
    attempt: int
    records: int  # in the part, over every attempt
    result: RunResult  # this attempt's run
    tally: Tally


PROGRESS_EVERY = 1.0  # seconds between two progress.json of a running attempt
OUTCOMES = ("ok", "4xx", "5xx", "failed")


def outcome_of(status: int | None) -> str:
    """A record's outcome, as the summary counts them: no status is a failure."""
    if status is None:
        return "failed"
    return "4xx" if 400 <= status < 500 else "5xx" if status >= 500 else "ok"


def run_shard(spec: ShardSpec) -> ShardOutcome:
    """Run one shard to its end; return what it did. Runs inside a Ray worker."""
    folder = spec.layout.shard_dir(spec.index)
    fence = Fence(folder, claim_attempt(folder))
    with fence.hold():  # an older attempt still running finishes its step first
        return _attempt(spec, fence)


def _attempt(spec: ShardSpec, fence: Fence) -> ShardOutcome:
    from .. import _io

    layout, index = spec.layout, spec.index
    # Which process runs this attempt: for operators (and the tests' SIGKILL).
    write_atomic(layout.shard_dir(index) / "worker.pid", str(os.getpid()).encode())
    tally: Counter[tuple[int | None, str | None, str | None]] = Counter()
    outcomes = dict.fromkeys(OUTCOMES, 0)
    last_told = time.monotonic()

    def tell() -> None:
        """This attempt's records by outcome, for the driver's live line."""
        body = orjson.dumps({"attempt": fence.attempt, "outcomes": outcomes})
        write_atomic(layout.progress(index), body, durable=False)  # on the writer thread

    def count(rows: Sequence[dict[str, Any]]) -> None:
        nonlocal last_told
        for row in rows:
            tally[(row["status"], record_host(row), row["error_kind"])] += 1
            outcomes[outcome_of(row["status"])] += 1
        if time.monotonic() - last_told >= PROGRESS_EVERY:
            last_told = time.monotonic()
            tell()

    part, journal = layout.part(index), layout.journal(index)
    sink = RowSink(FencedSink(_io.sink_for(part, failures=None), fence), count)
    job = dataclasses.replace(
        spec.job, input=str(layout.slice(index)), output=str(part), journal=str(journal), loops=1
    )
    pipeline = build_pipeline(job, _io.read_jsonl(job.input, field="item"))
    result = pipeline.run(
        sink,
        journal=job.journal,
        restart=False,
        retry_failed=job.retry_failed,
        loops=1,
        retry_on_resume=retryable_status,  # as on one machine: 5xx stay retryable
    )
    fence.check()  # replaced while running: the newer attempt reports this shard
    tell()
    records = count_rows(part)
    done = {"attempt": fence.attempt, "records": records}
    write_atomic(layout.done(index), orjson.dumps(done))
    # Failures stay in the part and in failures_by_kind; their exception objects need not
    # cross to the driver (some cannot be pickled).
    result = dataclasses.replace(result, failures=())
    return ShardOutcome(index, fence.attempt, records, result, dict(tally))
