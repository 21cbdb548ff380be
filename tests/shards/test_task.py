"""One shard's task body, run here without Ray: its part, journal, ``done.json`` and
``progress.json``, a second attempt that resumes, and the progress file's pace."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson

from conveyor import Pipeline
from conveyor._pipeline.on_ray import sharded_job
from conveyor._pipeline.pipeline import LocalShard
from conveyor._shards.layout import Layout, read_json
from conveyor._shards.parts import iter_rows
from conveyor._shards.plan import finished, prepare
from conveyor._shards.task import CountedOutput, ShardSpec, Telling, run_shard
from conveyor.testing import FakeClock


def _checked(n: int) -> dict[str, int]:
    if n % 10 == 3:
        raise ValueError(f"{n} ends in 3")
    return {"n": n}


def _planned(tmp_path: Path) -> tuple[Layout, ShardSpec]:
    pipeline = Pipeline(list(range(50)), key=lambda n: n).map(_checked, on="inline")
    job = sharded_job(pipeline, LocalShard(pipeline.key, pipeline.stages))
    plan = prepare(tmp_path / "out.jsonl", fingerprint=job.fingerprint, source=job.source,
                   route=job.route, shards=1, default_shards=1, restart=False)  # fmt: skip
    return plan.layout, ShardSpec(0, plan.layout, job.run_local, CountedOutput, False)


def test_a_shard_runs_its_slice_and_a_second_attempt_resumes(tmp_path: Path) -> None:
    layout, spec = _planned(tmp_path)
    first = run_shard(spec)
    assert (first.attempt, first.records) == (1, 50)  # failures are rows too (inline)
    assert (first.result.results, first.result.failed) == (45, 5)
    assert first.outcomes == {"results": 45, "failed": 5}
    assert read_json(layout.done(0)) == {"attempt": 1, "records": 50}
    told = read_json(layout.progress(0))
    assert told == {"attempt": 1, "outcomes": {"results": 45, "failed": 5}}
    assert layout.journal(0).exists()

    second = run_shard(spec)  # as Ray would run it again: the journal says all is done
    assert (second.attempt, second.records) == (2, 50)
    assert (second.result.results, second.result.skipped) == (0, 50)
    rows = list(iter_rows(layout.part(0)))
    assert sorted(r.get("n", r.get("key")) for r in rows) == list(range(50))


def test_progress_is_told_at_most_once_a_second(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "progress.json"
    telling = Telling(CountedOutput(tmp_path / "part.jsonl"), path, 3, clock=clock)
    telling.open(None)
    telling.write([{"n": 1}])
    assert not path.exists()  # not a second yet
    clock.advance(1.0)
    telling.write([{"n": 2}, {"n": 3}])
    assert orjson.loads(path.read_bytes()) == {
        "attempt": 3,
        "outcomes": {"results": 3, "failed": 0},
    }
    clock.advance(0.5)
    telling.write([{"n": 4}])
    assert orjson.loads(path.read_bytes())["outcomes"]["results"] == 3  # half a second
    telling.tell()  # the last word, at the end of the attempt
    assert orjson.loads(path.read_bytes())["outcomes"]["results"] == 4
    telling.flush()
    telling.close()


def test_retry_failed_runs_a_done_shard_again_only_if_it_has_failures(tmp_path: Path) -> None:
    layout, spec = _planned(tmp_path)
    run_shard(spec)
    assert finished(layout, 0) == 50
    assert finished(layout, 0, retry_failed=True) is None  # 5 failed keys to run again
    retried = run_shard(dataclasses.replace(spec, retry_failed=True))
    assert (retried.result.items, retried.result.failed) == (5, 5)  # they fail again
    clean = tmp_path / "clean"
    clean.mkdir()
    pipeline = Pipeline(list(range(10))).map(str, on="inline")
    job = sharded_job(pipeline, LocalShard(None, pipeline.stages))
    plan = prepare(clean / "out.csv", fingerprint=job.fingerprint, source=job.source,
                   route=job.route, shards=1, default_shards=1, restart=False)  # fmt: skip
    run_shard(ShardSpec(0, plan.layout, job.run_local, CountedOutput, False))
    assert finished(plan.layout, 0, retry_failed=True) == 10  # nothing failed: done
