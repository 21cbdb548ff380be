"""``conveyor fetch INPUT -o OUTDIR --backend ray``: the main job on the one Ray driver.

The library's driver runs it (``_shards/driver.py``, the same as
``Pipeline.run(backend="ray")``), over the main job's pipeline (``job.build_pipeline``:
fetch, the row, the user's --process). The command adds what is its own:

- its record shape, through the per-shard hook (``RowOutput``): every URL ends as one row
  (``RowSink`` turns failures into rows), rows are counted by outcome (ok, 4xx, 5xx,
  failed: the shard's ``progress.json``) and by status, host and error kind (the tally the
  summary's tables are made from, sent back with the shard's result);
- its view: the live line, the report's throughput chart (from the journals' counts as
  the driver reads them), one summary for the whole job.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from .._errors import ConveyorError, ShardFailed
from .._observe import RunReport
from .._observe.summary import summary_console
from .._shards.driver import ShardedJob
from .._shards.progress import ShardsProgress
from .ending import deferred_line, ended_code
from .errors import INTERRUPTED_EXIT, USAGE_EXIT, show_error
from .job import (
    FetchJob,
    RowSink,
    build_pipeline,
    check_input,
    check_not_empty,
    open_source,
    retryable_status,
)
from .record import record_host

OUTCOMES = ("ok", "4xx", "5xx", "failed")

# (status, host, error_kind) → records: a shard's share of the summary's tables.
Tally = dict[tuple[int | None, str | None, str | None], int]


def outcome_of(status: int | None) -> str:
    """A record's outcome, as the summary counts them: no status is a failure."""
    if status is None:
        return "failed"
    return "4xx" if 400 <= status < 500 else "5xx" if status >= 500 else "ok"


class RowOutput(RowSink):
    """The command's per-shard hook (``_shards.task.ShardHook``): the part's file sink
    behind a ``RowSink``, counting each row it writes (on the writer thread)."""

    def __init__(self, part: Path) -> None:
        from .. import _io

        super().__init__(_io.sink_for(part, failures=None), self._count)
        self._outcomes = dict.fromkeys(OUTCOMES, 0)
        self._tally: Counter[tuple[int | None, str | None, str | None]] = Counter()

    def _count(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self._tally[(row["status"], record_host(row), row["error_kind"])] += 1
            self._outcomes[outcome_of(row["status"])] += 1

    def outcomes(self) -> dict[str, int]:
        return dict(self._outcomes)

    def tally(self) -> Tally:
        return dict(self._tally)


def live_line(progress: ShardsProgress) -> str:
    of = f" / {progress.items:,}" if progress.items else ""
    split = " · ".join(f"{name} {progress.outcomes.get(name, 0):,}" for name in OUTCOMES)
    return (
        f"ray: {progress.done}/{progress.shards} shards done · {progress.finished:,}{of} URLs"
        f" · {split} · {progress.elapsed:.0f}s"
    )


@contextlib.contextmanager
def _live(console: Console, quiet: bool) -> Iterator[Any]:
    if quiet:
        yield None
        return
    with console.status("starting shards on Ray…") as status:
        yield status


def run_sharded(
    job: FetchJob,
    *,
    shards: int | None,
    address: str | None,
    report: str | None,
    quiet: bool,
) -> int:
    """Run ``job`` on a Ray cluster; return the process exit code."""
    from .._pipeline.on_ray import sharded_job
    from .._pipeline.pipeline import LocalShard

    check_input(job.input)
    source = open_source(job.input, job.column)
    check_not_empty(source, job.input)
    pipeline = build_pipeline(job, source)
    local = LocalShard(pipeline.key, pipeline.stages, retryable_status)  # 5xx stay retryable
    return drive_with_display(
        sharded_job(pipeline, local, output=RowOutput),
        job.output,
        title=f"conveyor fetch --backend ray: {job.input}",
        shards=shards,
        address=address,
        restart=job.restart,
        retry_failed=job.retry_failed,
        report=report,
        quiet=quiet,
    )


def drive_with_display(
    job: ShardedJob,
    output: str,
    *,
    title: str,
    shards: int | None,
    address: str | None,
    restart: bool,
    retry_failed: bool,
    report: str | None,
    quiet: bool,
) -> int:
    """Run a sharded job (``conveyor fetch``'s or ``crawl``'s) with the live line, the
    summary and the report; return the process exit code."""
    from .._shards.driver import run_sharded as drive

    console = summary_console(stderr=False)
    tally = RunReport()
    try:
        with _live(Console(stderr=True), quiet) as status:

            def on_tick(progress: ShardsProgress) -> None:
                if report:
                    tally.add_progress(progress.elapsed, progress.committed, progress.failed)
                if status is not None:
                    status.update(live_line(progress))

            run = drive(
                job,
                Path(output),
                shards=shards,
                address=address,
                restart=restart,
                retry_failed=retry_failed,
                on_tick=on_tick if status is not None or report else None,
            )
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        return INTERRUPTED_EXIT
    except ShardFailed as exc:
        show_error(str(exc))
        return 1
    except ConveyorError as exc:
        show_error(str(exc))
        return USAGE_EXIT
    if run.was_complete:
        console.print(f"{output} is complete ({sum(run.records):,} records): nothing to do")
        return 0
    for shard_tally in run.tallies:
        for (status_code, host, kind), n in shard_tally.items():
            for _ in range(n):
                tally.add_record(status=status_code, host=host, error_kind=kind)
    if not quiet:
        console.print(tally.summary_table(run.result))
    if report:
        tally.write_html(report, run.result, title=title)
        console.print(f"report: {report}")
    console.print(
        f"wrote {sum(run.records):,} records to {output} in {run.layout.shards} parts "
        f"({run.ran} run now); join them with: conveyor merge {output} -o FILE"
    )
    line = deferred_line(run.result, resumable=True)
    if line:
        console.print(line, style="yellow")
    return ended_code(run.result, interrupted=False)
