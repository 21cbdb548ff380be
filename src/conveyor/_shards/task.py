"""One shard: the body of its Ray task.

The task runs the job's own pipeline, on one event loop, over its slice, into its own part
with its own journal beside it (``LocalRun``: given by the caller, so this package never
imports the builder). Run again (Ray retries it when its worker dies, or the job is run
again after the driver died), it resumes from that journal: the part is cut back to the
journal's durable point and the finished items are skipped. Each attempt claims a number
first; a replaced attempt can no longer write or commit (``fence``).

What a shard writes and tells beyond its results is the caller's, through a per-shard hook
(``ShardHook``): it makes the part's sink and counts the records by outcome. The library's
hook (``CountedOutput``) writes results and failures as the file sink does and counts
results and failures; ``conveyor fetch`` makes every URL a row and counts rows by status
(``_cli/sharded.py``). Every second the running attempt writes those counts to
``progress.json`` for the driver's live line; the hook's ``tally`` goes back to the driver
with the shard's ``RunResult``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from .._engine.outcomes import Failure
from .._engine.ports import Sink
from .._engine.stats import RunResult
from .._io.sinks.forward import Forward
from .fence import Fence, FencedSink, claim_attempt
from .layout import Layout, write_atomic
from .parts import count_rows
from .slices import SliceSource

PROGRESS_EVERY = 1.0  # seconds between two progress.json of a running attempt


class ShardOutput(Sink, Protocol):
    """A shard attempt's output as its hook shapes it: a sink that also counts."""

    def outcomes(self) -> dict[str, int]:
        """The records this attempt wrote so far, by outcome (for the live line)."""
        ...

    def tally(self) -> Any:
        """What the driver gets back with the shard's result (picklable)."""
        ...


# Makes an attempt's output for its part's path; picklable (a module-level class).
ShardHook = Callable[[Path], ShardOutput]


@dataclass(frozen=True)
class ShardPlace:
    """Which shard a run is, of how many, and the job's control folder (a crawl shard's
    inbox is there: ``inbox.py``)."""

    index: int
    shards: int
    control: str


class LocalRun(Protocol):
    """Runs the job's stages over one slice on this machine, on one loop; picklable."""

    def __call__(
        self,
        source: Iterable[Any],
        sink: Sink,
        journal: str,
        *,
        retry_failed: bool,
        shard: ShardPlace | None = None,
    ) -> RunResult: ...


class CountedOutput(Forward):
    """The library's hook: the part's file sink (by its extension), counting results and
    failures."""

    def __init__(self, part: Path) -> None:
        from .._io import sink_for

        super().__init__(sink_for(part))
        self.counts = {"results": 0, "failed": 0}

    def write(self, results: Sequence[Any]) -> None:
        super().write(results)
        self.counts["results"] += len(results)

    def write_failures(self, failures: Sequence[Failure]) -> None:
        super().write_failures(failures)
        self.counts["failed"] += len(failures)

    def outcomes(self) -> dict[str, int]:
        return dict(self.counts)

    def tally(self) -> Any:
        return None


class Telling(Forward):
    """Wraps an attempt's output: after a write, at most every ``every`` seconds, its
    counts go to ``progress.json`` (on the writer thread, without fsync: a report)."""

    def __init__(
        self,
        output: ShardOutput,
        path: Path,
        attempt: int,
        *,
        every: float = PROGRESS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(output)
        self.output = output
        self.path = path
        self.attempt = attempt
        self.every = every
        self.clock = clock
        self._told = clock()

    def write(self, results: Sequence[Any]) -> None:
        super().write(results)
        if self.clock() - self._told >= self.every:
            self.tell()

    def write_failures(self, failures: Sequence[Failure]) -> None:
        super().write_failures(failures)
        if self.clock() - self._told >= self.every:
            self.tell()

    def tell(self) -> None:
        self._told = self.clock()
        body = {"attempt": self.attempt, "outcomes": self.output.outcomes()}
        write_atomic(self.path, orjson.dumps(body), durable=False)


@dataclass(frozen=True)
class ShardSpec:
    index: int
    layout: Layout
    run_local: LocalRun
    output: ShardHook
    retry_failed: bool


@dataclass(frozen=True)
class ShardOutcome:
    index: int
    attempt: int
    records: int  # in the part, over every attempt
    result: RunResult  # this attempt's run
    outcomes: dict[str, int]  # this attempt's records by outcome
    tally: Any  # the hook's


def run_shard(spec: ShardSpec) -> ShardOutcome:
    """Run one shard to its end; return what it did. Runs inside a Ray worker."""
    layout, index = spec.layout, spec.index
    fence = Fence(layout.shard_dir(index), claim_attempt(layout.shard_dir(index)))
    with fence.hold():  # an older attempt still running finishes its step first
        # Which process runs this attempt: for operators (and the tests' SIGKILL).
        write_atomic(layout.worker_pid(index), str(os.getpid()).encode())
        part = layout.part(index)
        output = spec.output(part)
        telling = Telling(output, layout.progress(index), fence.attempt)
        result = spec.run_local(
            SliceSource(layout.slice(index)),
            FencedSink(telling, fence),  # the fence first: a replaced attempt counts nothing
            str(layout.journal(index)),
            retry_failed=spec.retry_failed,
            shard=ShardPlace(index, layout.shards, str(layout.control)),
        )
        fence.check()  # replaced while running: the newer attempt reports this shard
        telling.tell()
        records = count_rows(part)
        if not result.deferred:
            # A shard with items deferred is not done: the job's next run takes it up
            # (its journal admits only those items again).
            done = {"attempt": fence.attempt, "records": records}
            write_atomic(layout.done(index), orjson.dumps(done))
    # Failures stay in the part and in failures_by_kind; their exception objects need not
    # cross to the driver (some cannot be pickled).
    result = dataclasses.replace(result, failures=())
    return ShardOutcome(index, fence.attempt, records, result, output.outcomes(), output.tally())
