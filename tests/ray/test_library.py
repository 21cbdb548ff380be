"""``Pipeline.run(sink, backend="ray", shards=N)``: any pipeline, as shards on the cluster."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conveyor import Deferred, Pipeline
from conveyor._errors import UsageError
from conveyor._shards.parts import iter_rows


def _square(item: dict[str, int]) -> dict[str, int]:
    return {"n": item["n"], "square": item["n"] ** 2}


def test_a_pipeline_runs_as_shards_and_resumes(tmp_path: Path, ray_cluster: str) -> None:
    items = [{"n": n} for n in range(3000)]
    pipeline = (
        Pipeline(items, key=lambda item: item["n"])
        .map(_square)
        .filter(lambda row: row["n"] % 3 != 0)
    )
    outdir = tmp_path / "squares.db"
    result = pipeline.run(str(outdir), backend="ray", shards=4, address=ray_cluster)
    kept = [n for n in range(3000) if n % 3 != 0]
    assert (result.results, result.filtered) == (len(kept), 3000 - len(kept))
    rows = [row for part in sorted(outdir.glob("part-*.db")) for row in iter_rows(part)]
    assert Counter(row["n"] for row in rows) == Counter(kept)
    assert all(row["square"] == row["n"] ** 2 for row in rows)
    # Again: every shard is done, nothing runs, the parts are as they were.
    again = pipeline.run(str(outdir), backend="ray", shards=4, address=ray_cluster)
    assert (again.results, again.skipped) == (0, len(kept))


def test_ray_backend_wants_a_folder_path(ray_cluster: str) -> None:
    with pytest.raises(UsageError, match="folder of parts"):
        Pipeline([1, 2]).map(str).run([], backend="ray", address=ray_cluster)


def _keep_mine(outdir: Path) -> None:
    """What a user might leave in the output folder: a file and a folder of theirs."""
    (outdir / "notes.txt").write_text("mine")
    (outdir / "mine").mkdir()
    (outdir / "mine" / "part-00000.jsonl").write_text('{"n": -1}\n')


def _is_mine(outdir: Path) -> bool:
    return (outdir / "notes.txt").read_text() == "mine" and (
        outdir / "mine" / "part-00000.jsonl"
    ).read_text() == '{"n": -1}\n'


def test_restart_removes_only_what_the_job_wrote(tmp_path: Path, ray_cluster: str) -> None:
    outdir = tmp_path / "out.jsonl"
    pipeline = Pipeline([{"n": n} for n in range(200)]).map(_square)
    pipeline.run(str(outdir), backend="ray", shards=4, address=ray_cluster)
    _keep_mine(outdir)
    again = pipeline.run(str(outdir), backend="ray", shards=2, address=ray_cluster, restart=True)
    assert (again.results, again.skipped) == (200, 0)  # begun again, in two shards now
    assert _is_mine(outdir)
    parts = sorted(p.name for p in outdir.glob("part-*.jsonl"))
    assert parts == ["part-00000.jsonl", "part-00001.jsonl"]  # the four old ones are gone
    rows = [row for name in parts for row in iter_rows(outdir / name)]
    assert Counter(row["n"] for row in rows) == Counter(range(200))


def _defer_odd_while_marked(item: dict[str, Any]) -> dict[str, int]:
    """Defers odd items while the marker file exists (the test removes it between runs:
    Ray's workers do not see the test's environment)."""
    if item["n"] % 2 and Path(item["marker"]).exists():
        raise Deferred(f"{item['n']} later", reason="paused")
    return {"n": item["n"]}


def test_a_shard_with_deferred_items_is_not_done(tmp_path: Path, ray_cluster: str) -> None:
    marker = tmp_path / "defer"
    marker.touch()
    items = [{"n": n, "marker": str(marker)} for n in range(400)]
    pipeline = Pipeline(items, key=lambda item: item["n"]).map(_defer_odd_while_marked)
    outdir = tmp_path / "out.jsonl"
    first = pipeline.run(str(outdir), backend="ray", shards=4, address=ray_cluster)
    assert (first.results, first.deferred) == (200, 200)
    assert first.deferred_by_reason == {"paused": 200}
    assert not first.complete
    assert not (outdir / "_MANIFEST.json").exists()  # the job is not complete
    marker.unlink()
    second = pipeline.run(str(outdir), backend="ray", shards=4, address=ray_cluster)
    assert (second.results, second.deferred, second.items) == (200, 0, 200)
    assert (outdir / "_MANIFEST.json").exists()
    rows = [row for part in sorted(outdir.glob("part-*.jsonl")) for row in iter_rows(part)]
    assert Counter(row["n"] for row in rows) == Counter(range(400))
