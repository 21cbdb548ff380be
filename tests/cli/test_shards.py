"""The parts of a sharded job that need no Ray: slicing by host, the fence, the manifest,
``conveyor merge`` across formats, and ``--backend ray`` where Ray is not installed."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from conveyor._cli.sharded import RowOutput
from conveyor._engine.outcomes import Failure
from conveyor._errors import ShardFenced
from conveyor._http.hosts import host_key
from conveyor._io import sink_for
from conveyor._pipeline.fetch import fetch_stage
from conveyor._shards.fence import Fence, FencedSink, claim_attempt
from conveyor._shards.layout import Layout, shard_of, write_atomic
from conveyor._shards.parts import count_rows, iter_rows
from conveyor._shards.plan import write_manifest
from conveyor._shards.progress import live_outcomes
from conveyor._shards.slices import SliceSource, route_for, split

from .conftest import ROOT, run_cli, write_urls


def test_split_puts_each_host_in_one_stable_shard(tmp_path: Path) -> None:
    urls = [f"http://h{h}.test:80/p{n}" for n in range(50) for h in range(7)]
    layout = Layout(tmp_path / "out", 3, ".jsonl")
    # A fetch is cut by its own route key, the host: as the loops route it.
    route = route_for((fetch_stage({}),), key=None)
    counts = split(urls, route, layout)
    assert sum(counts) == len(urls)
    for index in range(3):
        items = list(SliceSource(layout.slice(index)))
        assert len(items) == counts[index]
        assert {shard_of(host_key(u), 3) for u in items} <= {index}
        hosts = {host_key(u) for u in items}
        assert all(sum(host_key(u) == h for u in items) == 50 for h in hosts)


def test_a_replaced_attempt_can_no_longer_write_or_commit(tmp_path: Path) -> None:
    folder = tmp_path / "00000"
    old = Fence(folder, claim_attempt(folder))
    sink = FencedSink(sink_for(tmp_path / "part.jsonl"), old)
    sink.open(None)
    sink.write([{"url": "a"}])
    assert sink.flush() is not None
    new = claim_attempt(folder)  # Ray started the shard again elsewhere
    assert new == old.attempt + 1
    with pytest.raises(ShardFenced, match="replaced by attempt 2"):
        sink.write([{"url": "b"}])
    with pytest.raises(ShardFenced):
        sink.flush()
    sink.close()
    assert count_rows(tmp_path / "part.jsonl") == 1


def test_a_newer_attempt_waits_until_the_older_one_lets_go(tmp_path: Path) -> None:
    # The older attempt is between a fence check and what it checked for (a write, a
    # commit): the newer one must not read the journal or cut the part back meanwhile.
    folder = tmp_path / "00000"
    old = Fence(folder, claim_attempt(folder))
    newer_began = threading.Event()
    newer_claimed = threading.Event()

    def newer_attempt() -> None:
        fence = Fence(folder, claim_attempt(folder))
        newer_claimed.set()
        with fence.hold():
            newer_began.set()

    with old.hold():
        old.check()  # passed: what follows is still this attempt's to finish
        thread = threading.Thread(target=newer_attempt)
        thread.start()
        assert newer_claimed.wait(10)
        assert not newer_began.wait(0.2)  # it waits while the older one holds on
        with pytest.raises(ShardFenced):
            old.check()  # the older one's next step meets the fence, and it ends
    thread.join(10)
    assert newer_began.is_set()


def test_the_live_line_sums_what_the_newest_attempts_told(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "out.jsonl", 3, ".jsonl")
    for index in range(3):
        claim_attempt(layout.shard_dir(index))
    claim_attempt(layout.shard_dir(2))  # shard 2 was started again: attempt 2
    told = {"ok": 5, "4xx": 1, "5xx": 2, "failed": 3}
    write_atomic(layout.progress(0), orjson.dumps({"attempt": 1, "outcomes": told}))
    write_atomic(layout.progress(2), orjson.dumps({"attempt": 1, "outcomes": told}))  # stale
    (layout.shard_dir(1) / "progress.json").write_text("{not json")  # half-written: ignored
    assert live_outcomes(layout, [0, 1, 2]) == told
    assert live_outcomes(layout, [1, 2]) == {}


def test_the_commands_hook_makes_failures_rows_and_counts_them(tmp_path: Path) -> None:
    part = tmp_path / "part-00000.jsonl"
    output = RowOutput(part)
    output.open(None)
    rows = [
        {"url": "http://a.test/1", "status": 200, "error_kind": None},
        {"url": "http://a.test/2", "status": 404, "error_kind": None},
        {"url": "http://b.test:81/", "status": 503, "error_kind": None},
    ]
    output.write(rows)
    output.write_failures([Failure("http://c.test/", "fetch", "connect", "refused", 1, "X")])
    output.flush()
    output.close()
    assert output.outcomes() == {"ok": 1, "4xx": 1, "5xx": 1, "failed": 1}
    assert sum(output.tally().values()) == 4
    assert output.tally()[(503, "b.test:81", None)] == 1
    written = list(iter_rows(part))
    assert [r["url"] for r in written][:3] == [r["url"] for r in rows]
    assert written[3]["error_kind"] == "connect"


def _finished_job(tmp_path: Path, extension: str) -> Path:
    outdir = tmp_path / f"job{extension}"
    outdir.mkdir()
    layout = Layout(outdir, 3, extension)
    counts = []
    for index in range(3):
        rows = [{"url": f"http://x/{index}-{n}", "status": 200, "title": "é,\"q\""}
                for n in range(index * 2)]  # fmt: skip
        if rows:  # an empty shard leaves no part
            sink = sink_for(layout.part(index))
            sink.open(None)
            sink.write(rows)
            sink.flush()
            sink.close()
        counts.append(len(rows))
    write_manifest(layout, {"job": "test"}, counts)
    return outdir


@pytest.mark.parametrize("source", [".jsonl", ".csv", ".db", ".parquet"])
@pytest.mark.parametrize("target", [".jsonl", ".csv", ".db", ".parquet"])
def test_merge_joins_parts_of_any_format_into_any(tmp_path: Path, source: str, target: str) -> None:
    outdir = _finished_job(tmp_path, source)
    output = tmp_path / f"merged{target}"
    result = run_cli("merge", str(outdir), "-o", str(output), cwd=tmp_path)
    assert result.code == 0, result.err
    assert "merged 6 records" in result.err
    rows = list(iter_rows(output))
    assert sorted(r["url"] for r in rows) == sorted(
        f"http://x/{i}-{n}" for i in (1, 2) for n in range(i * 2)
    )
    assert {r["title"] for r in rows} == {'é,"q"'}


def test_merge_of_an_unfinished_job_says_so(tmp_path: Path) -> None:
    outdir = _finished_job(tmp_path, ".jsonl")
    (outdir / "_MANIFEST.json").unlink()
    result = run_cli("merge", str(outdir), "-o", str(tmp_path / "m.jsonl"), cwd=tmp_path)
    assert result.code == 2
    assert result.err.count("\n") == 1, result.err
    assert "unfinished" in result.err


def test_backend_ray_without_ray_names_the_extra(tmp_path: Path) -> None:
    # A `ray` package that cannot be imported, first on the path: as if Ray were missing.
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    urls = write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli("fetch", str(urls), "-o", "out", "--backend", "ray", cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        "conveyor: error: backend 'ray' needs Ray, which is not installed; "
        "pip install 'conveyor[ray]'\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "-", "--backend", "ray"], "give -o a folder name"),
        (["-o", "out", "--backend", "ray", "--no-journal"], "one journal per shard"),
        (["-o", "out.jsonl", "--shards", "3"], "go with --backend ray"),
    ],
)
def test_ray_options_that_do_not_fit_say_why(tmp_path: Path, args: list[str], message: str) -> None:
    urls = write_urls(tmp_path / "urls.txt", ["http://127.0.0.1:9/"])
    result = run_cli("fetch", str(urls), *args, cwd=tmp_path)
    assert result.code == 2
    assert message in result.err
    assert result.err.count("\n") == 1, result.err


def test_help_and_import_do_not_load_ray() -> None:
    code = (
        "import sys, conveyor; from conveyor._cli.main import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['fetch', '--help']); "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
