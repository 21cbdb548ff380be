"""A crawl's commit loop over a synthetic site, run in a child process the test kills.

    python -m tests.io.frontier_job DB PAGES

Page n links to 2n+1, 2n+2 (when < PAGES), to n // 2 (already seen) and to itself. Each
step leases a few rows, "fetches" them, and then in ONE transaction marks them done,
appends them to the output table (the stand-in for the sink and its position) and offers
their links: the transaction ``Frontier`` exists for. Prints DONE at the end.
"""
# ruff: noqa: T201 - this script talks to the test through its stdout

from __future__ import annotations

import sqlite3
import sys

from conveyor._crawl.urls import canonical_key
from conveyor._http.hosts import host_key
from conveyor._io.journal.frontier import Frontier, Link


def link(n: int, depth: int, referrer: bytes | None) -> Link:
    url = f"http://127.0.0.{3 + n % 3}/p/{n}"
    return Link(canonical_key(url), url, depth, host_key(url), referrer)


def main() -> int:
    path, pages = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("BEGIN")
    db.execute("CREATE TABLE IF NOT EXISTS output (url TEXT NOT NULL)")
    frontier = Frontier(db, slots=64)
    frontier.reset_leases()
    frontier.offer([link(0, 0, None)])
    db.execute("COMMIT")
    while True:
        db.execute("BEGIN")
        rows = frontier.take(5)
        if not rows:
            db.execute("COMMIT")
            break
        found = []
        for row in rows:
            n = int(row.url.rpartition("/")[2])
            children = [c for c in (2 * n + 1, 2 * n + 2) if c < pages]
            found += [link(c, row.depth + 1, row.key) for c in [*children, n // 2, n]]
        frontier.finish(row.key for row in rows)
        db.executemany("INSERT INTO output VALUES (?)", [(row.url,) for row in rows])
        frontier.offer(found)
        db.execute("COMMIT")
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
