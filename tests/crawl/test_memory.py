"""What keeps a crawl's memory flat as it grows (issue 22: peak RSS within 10% between a
10,000-page and a 100,000-page crawl; ``benchmarks/crawl.py`` measures it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conveyor._crawl.urls import canonical_key
from conveyor._http.hosts import host_key
from conveyor._io.journal.frontier import Frontier, Link


def test_offers_of_every_size_compile_a_few_statements_and_keep_their_order(
    tmp_path: Path,
) -> None:
    # The connection caches each INSERT text it compiles (~1 KiB a row): one text per batch
    # size filled that cache to ~30 MiB over a long crawl. Batches of 1 to 1,000 links (and
    # their repeats) must use a few texts, and still come back new, in the order offered.
    db = sqlite3.connect(tmp_path / "crawl.journal", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    # Rows in each INSERT run: the trace gives the statement with its values, a URL a row.
    sizes: set[int] = set()

    def trace(sql: str) -> None:
        if sql.startswith("INSERT INTO frontier ("):
            sizes.add(sql.count("'http://"))

    db.set_trace_callback(trace)
    frontier = Frontier(db)
    number = 0
    for size in (1, 2, 3, 7, 100, 255, 256, 257, 300, 500, 513, 600, 1000):
        urls = [f"http://127.0.0.{3 + n % 3}/p/{number + n}" for n in range(size)]
        number += size
        links = [Link(canonical_key(url), url, 1, host_key(url)) for url in urls]
        db.execute("BEGIN")
        offered = frontier.offer([*links, links[0]])  # a repeat inside the batch, too
        db.execute("COMMIT")
        assert [row.url for row in offered.new] == urls
        assert offered.duplicates == 1
        again = frontier.offer(links)
        assert (again.new, again.duplicates) == ([], size)
    assert frontier.statistics().states["pending"] == number
    # 256 rows a statement at most, then the powers of two below it: 9 texts, whatever comes.
    assert sizes <= {256, 128, 64, 32, 16, 8, 4, 2, 1}
    db.close()
