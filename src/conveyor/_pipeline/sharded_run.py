"""``Pipeline.run(sink, backend="ray", shards=N, address=...)``: any pipeline as shards.

The library form of ``conveyor fetch --backend ray`` (see ``_cli/sharded.py`` and
``shards.py`` for the folder it writes). The driver reads the source once and cuts it by a
stable hash of each item's route key: the first stage's own (a fetch's host:port), else
the item's key, else its position. Each shard is a Ray task running this same pipeline on
one loop over its slice, into ``OUTDIR/part-0000N.EXT`` with its journal beside it.
Items cross to the tasks pickled (the stages too, with Ray's cloudpickle, so lambdas work).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .._engine.spec import StageSpec
from .._engine.stats import RunResult, StageStatistics
from .._errors import JobMismatchError, UsageError
from .output import describe
from .parts import count_rows
from .shards import (
    FORMATS,
    Fence,
    FencedSink,
    Layout,
    claim_attempt,
    current_attempt,
    fan_out,
    read_json,
    read_manifest,
    shard_of,
    write_atomic,
    write_manifest,
)

if TYPE_CHECKING:
    from .pipeline import Pipeline

_BATCH = 1024


def _slice(layout: Layout, index: int) -> Path:
    return layout.control / f"slice-{index:05d}.pickle"


class SliceSource:
    """A shard's items, read back lazily from the pickled batches the driver wrote."""

    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self) -> str:
        return f"slice:{os.path.basename(self.path)}"

    def __iter__(self) -> Iterator[Any]:
        with open(self.path, "rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)
                except EOFError:
                    return
                yield from batch


@dataclass(frozen=True)
class LibraryShard:
    index: int
    layout: Layout
    key: Callable[[Any], Hashable] | None
    stages: tuple[StageSpec, ...]
    retry_failed: bool


def run_library_shard(spec: LibraryShard) -> tuple[int, int, int, RunResult]:
    """One shard, inside a Ray worker: (index, attempt, records in the part, this run)."""
    from .._io import sink_for
    from .pipeline import Pipeline

    layout, index = spec.layout, spec.index
    folder = layout.shard_dir(index)
    fence = Fence(folder, claim_attempt(folder))
    with fence.hold():  # an older attempt still running finishes its step first
        write_atomic(folder / "worker.pid", str(os.getpid()).encode())
        part = layout.part(index)
        sink = FencedSink(sink_for(part), fence)
        source = SliceSource(str(_slice(layout, index)))
        pipeline = Pipeline(source, key=spec.key, _stages=spec.stages)
        result = pipeline.run(
            sink, journal=str(layout.journal(index)), retry_failed=spec.retry_failed, loops=1
        )
        fence.check()
        records = count_rows(part)
        done = {"attempt": fence.attempt, "records": records}
        write_atomic(layout.done(index), orjson.dumps(done))
    return index, fence.attempt, records, dataclasses.replace(result, failures=())


def _route(pipeline: Pipeline) -> Callable[[int, Any], str]:
    first = pipeline.stages[0] if pipeline.stages else None
    if first is not None and first.route is not None:
        route = first.route
        return lambda _, item: str(route(item))
    if pipeline.key is not None:
        key = pipeline.key
        return lambda _, item: str(key(item))
    return lambda position, _: str(position)


def _plan(pipeline: Pipeline, layout: Layout) -> dict[str, Any]:
    return {
        "source": describe(pipeline.source),
        "key": describe(pipeline.key) if pipeline.key else "position",
        "stages": [
            [s.kind, s.name, describe(s.fn) if s.fn else s.batch_size] for s in pipeline.stages
        ],
        "shards": layout.shards,
        "format": layout.extension,
    }


def _split(pipeline: Pipeline, layout: Layout) -> list[int]:
    route = _route(pipeline)
    return fan_out(
        (
            (shard_of(route(position, item), layout.shards), item)
            for position, item in enumerate(pipeline.source)
        ),
        [_slice(layout, i) for i in range(layout.shards)],
        lambda batch: pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL),
        layout.control,
        batch=_BATCH,
    )


def combine(results: list[RunResult], skipped_records: int, wall: float) -> RunResult:
    """The shards' results as one run's: counts added; per stage, counts added and the
    percentiles of the shard that ran the most (there is no shared histogram to merge)."""
    kinds: dict[str, int] = {}
    by_name: dict[str, list[StageStatistics]] = {}
    for result in results:
        for kind, n in result.failures_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + n
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
    )


def run_on_ray(
    pipeline: Pipeline,
    sink: Any,
    *,
    journal: Any,
    shards: int | None,
    address: str | None,
    restart: bool,
    retry_failed: bool,
    max_retries: int = 3,
) -> RunResult:
    """Run ``pipeline`` as shards on Ray into the folder ``sink``; see ``Pipeline.run``."""
    if not isinstance(sink, str | os.PathLike):
        raise UsageError(
            "backend='ray' writes a folder of parts: give sink a path such as 'out.jsonl' "
            "(its extension picks the parts' format)"
        )
    if journal is not None:
        raise UsageError(
            "backend='ray' keeps one journal per shard beside its part; leave journal= out"
        )
    if not pipeline.stages:
        raise UsageError("backend='ray' needs at least one stage to run on the cluster")
    from .ray_backend import connect, run_tasks

    started = time.monotonic()
    outdir = Path(os.fspath(sink))
    extension = os.path.splitext(os.fspath(sink).rstrip("/"))[1].lower()
    extension = extension if extension in FORMATS else ".jsonl"
    ray = connect(address)
    if restart and outdir.exists():
        shutil.rmtree(outdir)
    plan = read_json(outdir / "_shards" / "plan.json")
    if isinstance(plan, dict):
        layout = Layout(outdir, int(plan["fingerprint"]["shards"]), extension)
        if (shards is not None and shards != layout.shards) or plan["fingerprint"] != _plan(
            pipeline, layout
        ):
            raise JobMismatchError(
                f"{outdir} holds another sharded job (other stages, source or shards); pass "
                "restart=True to begin again, or choose another folder"
            )
    else:
        if outdir.exists() and any(outdir.iterdir()):
            raise UsageError(f"{outdir} is not empty and holds no sharded job; choose another")
        outdir.mkdir(parents=True, exist_ok=True)
        count = shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        layout = Layout(outdir, count, extension)
        counts = _split(pipeline, layout)
        plan = {"fingerprint": _plan(pipeline, layout), "items": counts}
        write_atomic(layout.plan, orjson.dumps(plan, option=orjson.OPT_INDENT_2))
    records: list[int | None] = []
    for i in range(layout.shards):
        done = read_json(layout.done(i))
        if not plan["items"][i]:
            records.append(0)
        elif isinstance(done, dict) and done["attempt"] == current_attempt(layout.shard_dir(i)):
            records.append(int(done["records"]))
        else:
            records.append(None)
    skipped = sum(n or 0 for n in records)
    specs = [
        LibraryShard(i, layout, pipeline.key, pipeline.stages, retry_failed)
        for i in range(layout.shards)
        if records[i] is None
    ]
    results: list[RunResult] = []

    def on_done(value: tuple[int, int, int, RunResult]) -> None:
        index, _, count, result = value
        records[index] = count
        results.append(result)

    if specs or read_manifest(outdir) is None:
        run_tasks(ray, run_library_shard, specs, max_retries=max_retries,
                  on_done=on_done, on_tick=lambda: None)  # fmt: skip
        write_manifest(layout, plan["fingerprint"], [n or 0 for n in records])
    return combine(results, skipped, time.monotonic() - started)
