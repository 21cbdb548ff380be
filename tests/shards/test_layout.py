"""A sharded job's folder without Ray: the format rule, what restart removes (only the
job's files), and when two runs are one job (one fingerprint, the local journal's)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import JobMismatchError, Pipeline, UsageError, read_lines
from conveyor._pipeline.on_ray import sharded_job
from conveyor._pipeline.output import fingerprint
from conveyor._pipeline.pipeline import LocalShard
from conveyor._shards.layout import clear, layout_for
from conveyor._shards.plan import prepare
from conveyor._shards.slices import SliceSource


@pytest.mark.parametrize(
    ("outdir", "extension"),
    [
        ("out.jsonl", ".jsonl"),
        ("out.ndjson", ".jsonl"),
        ("out.csv/", ".csv"),
        ("out.parquet", ".parquet"),
        ("out.db", ".db"),
        ("out.sqlite", ".db"),
        ("OUT.SQLITE3", ".db"),
        ("out", ".jsonl"),
        ("out.txt", ".jsonl"),
    ],
)
def test_one_rule_for_the_parts_format(outdir: str, extension: str) -> None:
    layout = layout_for(outdir, 2)
    assert layout.extension == extension
    assert layout.part(1).name == f"part-00001{extension}"


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_clear_removes_the_jobs_files_and_nothing_else(tmp_path: Path) -> None:
    outdir = tmp_path / "out.db"
    ours = [
        "part-00000.db", "part-00000.db-wal", "part-00000.db.journal",
        "part-00000.db.journal-wal", "part-00007.db.journal-shm", "part-00003.db-journal",
        "_MANIFEST.json", "._MANIFEST.json.tmp-12", "_shards/plan.json",
        "_shards/slice-00000.pickle", "_shards/.plan.json.tmp-3", "_shards/00000/attempt-1",
        "_shards/00000/attempt-2", "_shards/00000/lock", "_shards/00000/done.json",
        "_shards/00000/progress.json", "_shards/00000/worker.pid",
        "_shards/00001/.progress.json.tmp-5",
    ]  # fmt: skip
    theirs = [
        "notes.txt", "mine/part-00000.db", "mine/deeper/data.csv", "part-00000.jsonl",
        "part-1.db", "part-00000.db.bak", "_shards/mine.txt", "_shards/00000/mine.txt",
        ".hidden",
    ]  # fmt: skip
    for name in ours:
        _touch(outdir / name)
    for name in theirs:
        _touch(outdir / name, f"kept: {name}")
    (outdir / "part-00001.db").mkdir()  # a part may be a folder (Parquet's): named whole
    _touch(outdir / "part-00001.db" / "chunk-0.parquet")

    clear(layout_for(outdir, 1))

    for name in ours:
        assert not (outdir / name).exists(), name
    assert not (outdir / "part-00001.db").exists()
    assert not (outdir / "_shards" / "00001").exists()  # emptied, so removed
    for name in theirs:
        assert (outdir / name).read_text() == f"kept: {name}", name


def _doubled(n: int) -> int:
    return n * 2


class Once:
    """A source that may be read once: a resumed job must not read it again."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.reads = 0

    def __iter__(self) -> Iterator[Any]:
        self.reads += 1
        assert self.reads == 1, "the source was read twice"
        return iter(self.items)


def test_a_plan_is_made_once_and_checked_on_every_later_run(tmp_path: Path) -> None:
    outdir = tmp_path / "out.jsonl"
    source = Once(list(range(100)))
    pipeline = Pipeline(source).map(_doubled, on="inline")
    job = sharded_job(pipeline, LocalShard(None, pipeline.stages))
    plan = prepare(outdir, fingerprint=job.fingerprint, source=job.source, route=job.route,
                   shards=None, default_shards=3, restart=False)  # fmt: skip
    assert plan.layout.shards == 3
    assert sum(plan.items) == 100
    assert sorted(x for i in range(3) for x in SliceSource(plan.layout.slice(i))) == list(
        range(100)
    )
    # One fingerprint: the local journal's, with the shards and the parts' format added.
    assert plan.fingerprint == {**fingerprint(pipeline, None), "shards": 3, "format": ".jsonl"}

    again = prepare(outdir, fingerprint=job.fingerprint, source=job.source, route=job.route,
                    shards=None, default_shards=5, restart=False)  # fmt: skip
    assert again == plan  # found, not made: the source was not read again

    with pytest.raises(UsageError, match=r"cut into 3 shards, not 4; .*restart=True"):
        prepare(outdir, fingerprint=job.fingerprint, source=[], route=job.route,
                shards=4, default_shards=1, restart=False)  # fmt: skip
    other = Pipeline(source).map(str, on="inline")
    with pytest.raises(JobMismatchError, match=r"another job \(stages changed\).*--restart"):
        prepare(outdir, fingerprint=fingerprint(other, None), source=[], route=job.route,
                shards=None, default_shards=1, restart=False)  # fmt: skip


def test_an_input_file_that_changed_is_another_job(tmp_path: Path) -> None:
    # The CLI's job is cut from a file: its size and mtime are in the source's fingerprint.
    urls = tmp_path / "urls.txt"
    urls.write_text("http://127.0.0.1:9/a\n")
    outdir = tmp_path / "out.jsonl"

    def plan_for(restart: bool = False) -> Any:
        pipeline = Pipeline(read_lines(urls)).fetch()
        job = sharded_job(pipeline, LocalShard(None, pipeline.stages))
        return prepare(outdir, fingerprint=job.fingerprint, source=job.source,
                       route=job.route, shards=1, default_shards=1, restart=restart)  # fmt: skip

    plan_for()
    urls.write_text("http://127.0.0.1:9/a\nhttp://127.0.0.1:9/b\n")
    with pytest.raises(JobMismatchError, match="source changed"):
        plan_for()
    assert sum(plan_for(restart=True).items) == 2


def test_restart_keeps_what_the_user_put_in_the_folder(tmp_path: Path) -> None:
    outdir = tmp_path / "out.csv"
    pipeline = Pipeline(list(range(10))).map(_doubled, on="inline")
    job = sharded_job(pipeline, LocalShard(None, pipeline.stages))

    def plan(restart: bool) -> Any:
        return prepare(outdir, fingerprint=job.fingerprint, source=job.source,
                       route=job.route, shards=2, default_shards=1, restart=restart)  # fmt: skip

    plan(restart=False)
    _touch(outdir / "part-00001.csv", "url\nold\n")  # an earlier run's part
    _touch(outdir / "notes.txt", "mine")
    _touch(outdir / "mine" / "data.csv", "a,b\n")
    plan(restart=True)
    assert not (outdir / "part-00001.csv").exists()
    assert (outdir / "notes.txt").read_text() == "mine"
    assert (outdir / "mine" / "data.csv").read_text() == "a,b\n"
    assert (outdir / "_shards" / "plan.json").exists()


def test_a_folder_that_holds_no_job_is_refused_unless_restarting(tmp_path: Path) -> None:
    outdir = tmp_path / "photos"
    _touch(outdir / "cat.jpg", "meow")
    pipeline = Pipeline([1, 2]).map(_doubled, on="inline")
    job = sharded_job(pipeline, LocalShard(None, pipeline.stages))
    with pytest.raises(UsageError, match="not empty and holds no sharded job"):
        prepare(outdir, fingerprint=job.fingerprint, source=job.source, route=job.route,
                shards=1, default_shards=1, restart=False)  # fmt: skip
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(UsageError, match=r"is a file; .*give a new folder name"):
        prepare(tmp_path / "a-file", fingerprint=job.fingerprint, source=job.source,
                route=job.route, shards=1, default_shards=1, restart=False)  # fmt: skip
    _touch(tmp_path / "hidden" / ".DS_Store")  # hidden files do not count
    prepare(tmp_path / "hidden", fingerprint=job.fingerprint, source=job.source,
            route=job.route, shards=1, default_shards=1, restart=False)  # fmt: skip


def test_a_pipeline_for_ray_needs_a_stage_and_a_plain_iterable() -> None:
    with pytest.raises(UsageError, match="at least one stage"):
        sharded_job(Pipeline([1]), LocalShard(None, ()))

    async def numbers() -> Any:
        yield 1

    pipeline = Pipeline(numbers()).map(_doubled)
    with pytest.raises(UsageError, match="not an async one"):
        sharded_job(pipeline, LocalShard(None, pipeline.stages))
