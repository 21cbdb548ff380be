"""``Pipeline.run(sink, backend="ray", shards=N, address=...)``: any pipeline as shards.

The checks of the call, and the ``ShardedJob`` the one driver (``_shards/driver.py``)
runs: the pipeline's source, how its items are cut (its first stage's route key, else its
key, else the position), its fingerprint (the one a local journal keeps), and how one shard
runs (``pipeline.LocalShard``, given by the builder, which this module does not import).
``conveyor fetch --backend ray`` makes its job here too, with its own per-shard hook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._engine.stats import RunResult
from .._errors import UsageError
from .._shards.driver import ShardedJob, run_sharded
from .._shards.slices import route_for
from .._shards.task import CountedOutput, LocalRun, ShardHook
from .output import Built, fingerprint


def sharded_job(
    pipeline: Built, run_local: LocalRun, *, output: ShardHook | None = None
) -> ShardedJob:
    """The job the driver runs for ``pipeline``; ``output``: the per-shard hook (default:
    the part's file sink, counting results and failures)."""
    if not pipeline.stages:
        raise UsageError("backend='ray' needs at least one stage to run on the cluster")
    if not hasattr(pipeline.source, "__iter__"):
        raise UsageError(
            "backend='ray' reads the source once in this process to cut it into shards: "
            "give an iterable (a list, a generator, conveyor.read_lines(path)), not an "
            "async one"
        )
    return ShardedJob(
        source=pipeline.source,
        route=route_for(pipeline.stages, pipeline.key),
        fingerprint=fingerprint(pipeline, None),
        run_local=run_local,
        output=output or CountedOutput,
    )


def run_on_ray(
    job: ShardedJob,
    sink: Any,
    *,
    journal: Any,
    shards: int | None,
    address: str | None,
    restart: bool,
    retry_failed: bool,
) -> RunResult:
    """Run ``job`` as shards on Ray into the folder ``sink``; see ``Pipeline.run``."""
    if not isinstance(sink, str | os.PathLike):
        raise UsageError(
            "backend='ray' writes a folder of parts: give sink a path such as 'out.jsonl' "
            "(its extension picks the parts' format)"
        )
    if journal is not None:
        raise UsageError(
            "backend='ray' keeps one journal per shard beside its part; leave journal= out"
        )
    run = run_sharded(
        job,
        Path(os.fspath(sink)),
        shards=shards,
        address=address,
        restart=restart,
        retry_failed=retry_failed,
    )
    return run.result
