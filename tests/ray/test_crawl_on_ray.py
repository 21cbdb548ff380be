"""``conveyor crawl --backend ray`` on the 2-node cluster: shards own hosts, send each
other the links to hosts they do not own (imported once), and a shard worker SIGKILLed
mid-crawl is resumed, with every reachable allowed page in the merged output once."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from conveyor._crawl.urls import canonical
from conveyor._engine.routing import route_index

from .conftest import SiteThread, conveyor

SHARDS = 4


def _addresses() -> tuple[str, ...]:
    """Two content hosts owned by two different shards, then the flaky and outside hosts."""
    first = "127.0.0.31"
    for last in range(32, 60):
        second = f"127.0.0.{last}"
        if route_index(first, SHARDS) != route_index(second, SHARDS):
            return first, second, "127.0.0.61", "127.0.0.62"
    raise AssertionError("no two addresses on two shards")


@pytest.fixture
def crawl_site() -> Iterator[SiteThread]:
    from conveyor.testing.crawl_site import run_crawl_site

    site = SiteThread(
        lambda: run_crawl_site(_addresses(), delay=0.02, content=2, pages=120, robots_503=0)
    )
    yield site
    site.close()


def _busy_shard(outdir: Path, deadline: float) -> tuple[Path, int]:
    while time.monotonic() < deadline:
        for folder in sorted((outdir / "_shards").glob("0*")):
            pid_file = folder / "worker.pid"
            part = outdir / f"part-{folder.name}.jsonl"
            if (
                pid_file.exists()
                and not (folder / "done.json").exists()
                and part.exists()
                and part.stat().st_size
            ):
                return folder, int(pid_file.read_text())
        time.sleep(0.05)
    raise AssertionError("no shard got going in time")


def test_crawl_shards_own_hosts_and_survive_a_killed_worker(
    tmp_path: Path, ray_cluster: str, crawl_site: SiteThread
) -> None:
    running = crawl_site.site
    assert running is not None
    site = running.site
    outdir = tmp_path / "out.jsonl"
    driver = conveyor(
        "crawl", *site.seeds(), "-o", str(outdir), "--backend", "ray", "--address", ray_cluster,
        "--shards", str(SHARDS), "--per-host", "2", "--retries", "1", "-q", cwd=tmp_path,
    )  # fmt: skip
    folder, pid = _busy_shard(outdir, time.monotonic() + 60)
    os.kill(pid, signal.SIGKILL)  # the shard's Ray worker, mid-crawl
    _out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    assert (folder / "attempt-2").exists()  # the killed shard ran again, and resumed
    merged = tmp_path / "merged.jsonl"
    merge = conveyor("merge", str(outdir), "-o", str(merged), cwd=tmp_path)
    _, err = merge.communicate(timeout=60)
    assert merge.returncode == 0, err
    urls = Counter(
        canonical(orjson.loads(line)["url"]) for line in merged.read_bytes().splitlines()
    )
    assert max(urls.values()) == 1, "a page was written twice"
    assert set(urls) == {canonical(url) for url in site.expected()}
    # Links crossed shards through the inboxes; each host was fetched by one shard only.
    inboxes = list((outdir / "_shards" / "inbox").glob("*/*.jsonl"))
    assert inboxes
    for segment in inboxes:  # each read by its shard, in the journal that says so
        journal = outdir / f"part-{segment.parent.name}.jsonl.journal"
        db = sqlite3.connect(f"{journal.as_uri()}?mode=ro", uri=True)
        try:
            found = db.execute(
                "SELECT count(*) FROM crawl_imported WHERE name = ?", (segment.name,)
            ).fetchone()
        finally:
            db.close()
        assert found == (1,)
    assert running.stats.count(running.host(3)) == 0  # out of scope
    assert running.stats.count(running.host(0), "/private/") == 0
