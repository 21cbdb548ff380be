"""``conveyor fetch INPUT -o OUTDIR --backend ray``: the driver of a sharded job.

    read INPUT once ──► one slice per shard (by host) ──► plan.json
                    ──► one Ray task per unfinished shard (shard_task.run_shard)
                    ──► every shard done ──► _MANIFEST.json ──► one summary

The driver keeps no state of its own: everything is in OUTDIR (see ``_pipeline/shards``).
Killed and run again, it finds the plan, skips the slicing and the shards that are done,
and the others resume from their journals.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from .._errors import ConveyorError, JobMismatchError
from .._http.hosts import host_key
from .._observe import RunReport
from .._observe.summary import summary_console
from .._pipeline.sharded_run import combine
from .._pipeline.shards import (
    FORMATS,
    Layout,
    current_attempt,
    read_json,
    read_manifest,
    split,
    write_atomic,
    write_manifest,
)
from .errors import INTERRUPTED_EXIT, USAGE_EXIT, fail, show_error
from .job import FetchJob, check_input, open_source
from .shard_task import OUTCOMES, ShardOutcome, ShardSpec, run_shard

MAX_RETRIES = 3


def layout_for(output: str, shards: int) -> Layout:
    """OUTDIR's extension picks the parts' format (``pages.jsonl/part-00000.jsonl``); a
    folder with no known extension gets JSON lines."""
    extension = os.path.splitext(output.rstrip("/"))[1].lower()
    extension = {".sqlite": ".db", ".sqlite3": ".db", ".ndjson": ".jsonl"}.get(extension, extension)
    return Layout(Path(output), shards, extension if extension in FORMATS else ".jsonl")


def _fingerprint(job: FetchJob, layout: Layout) -> dict[str, Any]:
    """What makes two runs the same job: the input file, how it is cut, what is done to it."""
    stat = os.stat(job.input)
    return {
        "input": os.path.abspath(job.input),
        "input_size": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "column": job.column,
        "shards": layout.shards,
        "format": layout.extension,
        "fetch": orjson.loads(orjson.dumps(job.fetch_options, default=str)),
        "process": job.process,
        "on": job.on,
    }


def _clear(outdir: Path) -> None:
    """--restart: remove what a sharded job wrote (and only that)."""
    with contextlib.suppress(FileNotFoundError):
        for entry in outdir.iterdir():
            if (
                entry.name == "_shards"
                or entry.name.startswith("part-")
                or entry.name == ("_MANIFEST.json")
            ):
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()


def _prepare(job: FetchJob, output: str, shards: int | None, default_shards: int) -> Layout:
    """Plan the job in OUTDIR (slices and plan.json), or find the plan of an earlier run."""
    outdir = Path(output)
    if outdir.exists() and not outdir.is_dir():
        fail(f"-o {output}: with --backend ray the output is a folder; give a new folder name")
    if job.restart:
        _clear(outdir)
    plan_path = Layout(outdir, 1, ".jsonl").plan
    plan = read_json(plan_path)
    if isinstance(plan, dict):
        count = int(plan["fingerprint"]["shards"])
        if shards is not None and shards != count:
            fail(
                f"{output} holds a job cut into {count} shards, not {shards}; drop --shards "
                "to resume it, or add --restart to begin again"
            )
        layout = layout_for(output, count)
        if plan["fingerprint"] != _fingerprint(job, layout):
            raise JobMismatchError(
                f"{output} holds another job (another input or other options); add --restart "
                "to begin again, or choose another output folder"
            )
        return layout
    if outdir.exists() and any(not p.name.startswith(".") for p in outdir.iterdir()):
        fail(f"{output} is not empty and holds no sharded job; choose a new or empty folder")
    outdir.mkdir(parents=True, exist_ok=True)
    layout = layout_for(output, shards or default_shards)
    source = open_source(job.input, job.column)
    counts = split(source, host_key, layout)  # the input is read once, here
    if not any(counts):
        shutil.rmtree(layout.control)
        fail(f"{job.input} has no URLs (blank lines and # comments are skipped); add one per line")
    plan = {"fingerprint": _fingerprint(job, layout), "items": counts}
    write_atomic(layout.plan, orjson.dumps(plan, option=orjson.OPT_INDENT_2))
    return layout


def _finished(layout: Layout, index: int) -> int | None:
    """A shard's record count if it is done (by its newest attempt), else None."""
    done = read_json(layout.done(index))
    if isinstance(done, dict) and done.get("attempt") == current_attempt(layout.shard_dir(index)):
        return int(done["records"])
    return None


_COUNTS = "SELECT name, value FROM meta WHERE name IN ('done', 'failed', 'filtered')"


def _journal_counts(path: Path) -> tuple[int, int]:
    """Keys a shard's journal has committed (finished, of which failed), read while the
    shard runs (live progress, the report's throughput chart)."""
    if not path.exists():
        return 0, 0
    with contextlib.suppress(sqlite3.Error):
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=0.1)
        try:
            rows = dict(
                db.execute(
                    "SELECT name, value FROM meta WHERE name IN ('done', 'failed', 'filtered')"
                )
            )
            failed = int(rows.get("failed") or 0)
            return int(rows.get("done") or 0) + failed + int(rows.get("filtered") or 0), failed
        finally:
            db.close()
    return 0, 0


def live_outcomes(layout: Layout, running: Sequence[int]) -> dict[str, int]:
    """The records of the shards still running, by outcome, as their newest attempts last
    told (``progress.json``, each second)."""
    found = dict.fromkeys(OUTCOMES, 0)
    for index in running:
        try:
            told = read_json(layout.progress(index))
        except ValueError:  # not ours to judge: the live line skips it
            continue
        if not isinstance(told, dict):
            continue
        if told.get("attempt") != current_attempt(layout.shard_dir(index)):
            continue  # an older attempt's word: its successor starts from the journal
        for name, n in (told.get("outcomes") or {}).items():
            if name in found and isinstance(n, int):
                found[name] += n
    return found


def _totals(counts: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The shards' journal counts added up: (finished, failed)."""
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


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
    from .._pipeline.ray_backend import ShardFailed, connect, run_tasks

    started = time.monotonic()
    console = summary_console(stderr=False)
    progress_console = Console(stderr=True)
    try:
        check_input(job.input)
        ray = connect(address)
        default_shards = max(1, int(ray.cluster_resources().get("CPU", 1)))
        layout = _prepare(job, job.output, shards, default_shards)
    except ConveyorError as exc:
        show_error(str(exc))
        return USAGE_EXIT
    plan = read_json(layout.plan)
    total_items = sum(plan["items"]) if isinstance(plan, dict) else None
    items = plan["items"] if isinstance(plan, dict) else [1] * layout.shards
    # An empty slice has nothing to run and leaves no part.
    records = [_finished(layout, i) if items[i] else 0 for i in range(layout.shards)]
    skipped_records = sum(n for n in records if n is not None)
    if read_manifest(layout.outdir) is not None and all(n is not None for n in records):
        console.print(f"{job.output} is complete ({skipped_records:,} records): nothing to do")
        return 0
    specs = [ShardSpec(i, layout, job) for i in range(layout.shards) if records[i] is None]
    outcomes: list[ShardOutcome] = []
    tally = RunReport()

    def on_done(outcome: ShardOutcome) -> None:
        records[outcome.index] = outcome.records
        outcomes.append(outcome)
        for (status, host, kind), n in outcome.tally.items():
            for _ in range(n):
                tally.add_record(status=status, host=host, error_kind=kind)

    def journal_counts() -> list[tuple[int, int]]:
        return [_journal_counts(layout.journal(i)) for i in range(layout.shards)]

    # The report's throughput is this run's: what the journals held before it is taken off.
    before = _totals(journal_counts()) if report else (0, 0)

    def chart_progress(counts: Sequence[tuple[int, int]]) -> None:
        finished, failed = _totals(counts)
        tally.add_progress(time.monotonic() - started, finished - before[0], failed - before[1])

    try:
        with _live(progress_console, quiet) as status:

            def on_tick() -> None:
                if status is None and not report:
                    return
                counts = journal_counts()  # each journal read once a tick
                if report:
                    chart_progress(counts)
                if status is None:
                    return
                live = sum(n if n is not None else counts[i][0] for i, n in enumerate(records))
                done = sum(n is not None for n in records)
                of = f" / {total_items:,}" if total_items else ""
                running = [spec.index for spec in specs if records[spec.index] is None]
                outcomes = live_outcomes(layout, running)
                for name, n in tally.outcomes().items():  # the shards done in this run
                    outcomes[name] += n
                split = " · ".join(f"{name} {n:,}" for name, n in outcomes.items())
                status.update(
                    f"ray: {done}/{layout.shards} shards done · {live:,}{of} URLs · "
                    f"{split} · {time.monotonic() - started:.0f}s"
                )

            run_tasks(
                ray,
                run_shard,
                specs,
                max_retries=MAX_RETRIES,
                on_done=on_done,
                on_tick=on_tick,
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
    if report:
        chart_progress(journal_counts())  # the last stretch, up to the end
    counts = [n or 0 for n in records]
    write_manifest(layout, plan["fingerprint"] if isinstance(plan, dict) else None, counts)
    result = combine([o.result for o in outcomes], skipped_records, time.monotonic() - started)
    if not quiet:
        console.print(tally.summary_table(result))
    if report:
        tally.write_html(report, result, title=f"conveyor fetch --backend ray: {job.input}")
        console.print(f"report: {report}")
    console.print(
        f"wrote {sum(counts):,} records to {job.output} in {layout.shards} parts "
        f"({len(specs)} run now); join them with: conveyor merge {job.output} -o FILE"
    )
    return 0
