"""The crawl frontier's tables (``_io/journal/frontier.py``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor._crawl.urls import canonical_key
from conveyor._engine.loops import route_index
from conveyor._errors import UsageError
from conveyor._http.hosts import host_key
from conveyor._io.journal.frontier import Frontier, Link, State

from .helpers import ROOT


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "crawl.journal", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    yield connection
    connection.close()


def link(url: str, depth: int = 1, referrer: bytes | None = None) -> Link:
    return Link(canonical_key(url), url, depth, host_key(url), referrer)


def test_offer_keeps_each_url_once_and_returns_only_new_rows(db: sqlite3.Connection) -> None:
    frontier = Frontier(db)
    first = frontier.offer([link("http://127.0.0.3/a"), link("http://127.0.0.3/b")])
    assert [row.url for row in first.new] == ["http://127.0.0.3/a", "http://127.0.0.3/b"]
    again = frontier.offer(
        [link("HTTP://127.0.0.3:80/a#x"), link("http://127.0.0.3/c"), link("http://127.0.0.3/c")]
    )
    assert [row.url for row in again.new] == ["http://127.0.0.3/c"]
    assert (again.duplicates, again.capped) == (2, 0)
    row = again.new[0]
    assert row.host == "127.0.0.3:80"
    assert row.slot == route_index("127.0.0.3:80", 4096) == frontier.slot_of(row.host)
    assert frontier.statistics().states["pending"] == 3


def test_take_leases_shallowest_first_and_by_slot(db: sqlite3.Connection) -> None:
    frontier = Frontier(db, slots=8)
    frontier.offer([link(f"http://127.0.0.{3 + i % 2}/d{i}", depth=3 - i % 3) for i in range(9)])
    taken = frontier.take(4)
    assert [row.depth for row in taken] == [1, 1, 1, 2]
    assert frontier.statistics().states["leased"] == 4
    rest = frontier.take(100)
    assert len(rest) == 5
    assert not {r.key for r in rest} & {r.key for r in taken}
    assert frontier.take(10) == []
    frontier.finish([row.key for row in taken])
    frontier.finish([row.key for row in rest], State.PENDING)  # given back
    slot = frontier.slot_of(host_key("http://127.0.0.3/"))
    mine = frontier.take(100, slots={slot})
    assert mine
    assert {row.host for row in mine} == {"127.0.0.3:80"}
    assert frontier.take(10, slots=set()) == []


def test_leases_of_a_killed_run_go_back_and_slots_are_kept(db: sqlite3.Connection) -> None:
    frontier = Frontier(db, slots=16)
    frontier.offer([link(f"http://127.0.0.3/{i}") for i in range(5)])
    frontier.take(3)
    again = Frontier(db, slots=4096)  # an existing frontier keeps the slots it was made with
    assert again.slots == 16
    assert again.reset_leases() == 3
    assert again.pending() == 5
    assert len(again.take(10)) == 5


def test_per_host_cap_keeps_the_rest_as_capped(db: sqlite3.Connection) -> None:
    frontier = Frontier(db, max_per_host=3)
    offered = frontier.offer(
        [link(f"http://127.0.0.3/{i}") for i in range(5)] + [link("http://127.0.0.4/x")]
    )
    assert len(offered.new) == 4
    assert offered.capped == 2
    later = Frontier(db, max_per_host=3)  # the count survives a restart
    assert later.offer([link("http://127.0.0.3/late")]).capped == 1
    assert later.offer([link("http://127.0.0.3/0")]).duplicates == 1  # capped rows stay seen
    assert later.statistics().states["capped"] == 3
    with pytest.raises(UsageError, match="max-pages-per-host"):
        Frontier(db, max_per_host=0)


def test_a_rolled_back_transaction_leaves_nothing(db: sqlite3.Connection) -> None:
    frontier = Frontier(db)
    db.execute("BEGIN")
    frontier.offer([link("http://127.0.0.3/seed", depth=0)])
    db.execute("COMMIT")
    db.execute("BEGIN")
    (row,) = frontier.take(1)
    frontier.finish([row.key])
    frontier.offer([link("http://127.0.0.3/found", referrer=row.key)])
    db.execute("ROLLBACK")
    fresh = Frontier(db)
    assert fresh.statistics().states["done"] == 0
    assert fresh.pending() == 1
    assert fresh.url_of(canonical_key("http://127.0.0.3/found")) is None


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_every_page_once(tmp_path: Path) -> None:
    """Kill the commit loop (take, mark done, write output, offer links: one transaction)
    whenever it has made progress, several times; the resumed run ends with every page
    in the output exactly once."""
    pages, path = 1500, tmp_path / "crawl.journal"
    command = [sys.executable, "-m", "tests.io.frontier_job", str(path), str(pages)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    seen: list[int] = []
    for _ in range(6):
        before = _written(path)
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(2000):  # until this run wrote a few more pages (bounded)
            if proc.poll() is not None or _written(path) > before + 40:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        seen.append(_written(path))
    assert len(set(seen)) >= 3, seen  # the kills landed at different points
    out, _ = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    ).communicate(timeout=120)
    assert "DONE" in out
    reader = sqlite3.connect(path)
    urls = [url for (url,) in reader.execute("SELECT url FROM output")]
    (done,) = reader.execute("SELECT count(*) FROM frontier WHERE state = 2").fetchone()
    reader.close()
    assert len(urls) == pages == len(set(urls)) == done


def _written(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(reader.execute("SELECT count(*) FROM output").fetchone()[0])
        finally:
            reader.close()
    except sqlite3.OperationalError:  # not made yet
        return 0
