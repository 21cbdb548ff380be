"""Micro-costs of the crawl's pure core: per link, per page, per frontier offer.

    .venv/bin/python benchmarks/crawl_core.py

Prints µs per link for ``urls.locate`` (resolve + canonical form + key) and, when w3lib is
installed, for w3lib's ``canonicalize_url`` alone; µs per page for the crawl's page scan
and for lexbor (selectolax) finding the same ``<a href>`` values; and link offers a
second into a frontier in WAL mode, half of them duplicates. CPU micro-measurements on a
shared machine: orders of magnitude, not targets.
"""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable

from conveyor._crawl.page import scan_page
from conveyor._crawl.urls import base_url, locate
from conveyor._io.journal.frontier import Frontier, Link

PAGE = "https://www.example.com/docs/guide/index.html"
HREFS = ["/about/team.html", "../api/ref.html?b=2&a=1", "https://other.example.org/p/%7eq",
         "page2.html#top", "/caf\u00e9?q=\u00e9"]  # fmt: skip


def per_call(function: Callable[[], object], rounds: int) -> float:
    """Best of 5 runs, µs a call."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            function()
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def links() -> None:
    base = base_url(PAGE)
    assert base is not None
    ours = per_call(lambda: [locate(href, base) for href in HREFS], 4000) / len(HREFS)
    print(f"locate (resolve + canonical + key): {ours:5.2f} µs a link")
    try:
        from w3lib.url import canonicalize_url
    except ImportError:
        return
    absolute = [locate(href, base)[0] for href in HREFS]  # type: ignore[index]
    theirs = per_call(lambda: [canonicalize_url(url) for url in absolute], 4000) / len(HREFS)
    print(f"w3lib canonicalize_url alone:       {theirs:5.2f} µs a link")


def page(n_links: int = 50) -> bytes:
    rng = random.Random(1)
    words = " ".join(rng.choice(["lorem", "ipsum", "dolor", "sit", "amet"]) for _ in range(1500))
    anchors = "".join(
        f'<li><a href="/docs/{rng.randint(0, 10**6)}.html" class="nav">link {i}</a></li>'
        for i in range(n_links)
    )
    head = "<head><title>t</title><meta name=description content=d><script>var x=1</script></head>"
    return f"<html>{head}<body><p>{words}</p><ul>{anchors}</ul></body></html>".encode()


def pages() -> None:
    body = page()
    scan = per_call(lambda: scan_page(body, "text/html", links=True), 400)
    record = per_call(lambda: scan_page(body, "text/html"), 400)
    print(
        f"page scan, {len(body) // 1024} KB, 50 links: crawl {scan:.0f} µs, record {record:.0f} µs"
    )
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:
        return

    def lexbor() -> list[str | None]:
        return [a.attributes.get("href") for a in LexborHTMLParser(body).css("a[href]")]

    def lexbor_all() -> object:
        tree = LexborHTMLParser(body)
        title = tree.css_first("title")
        return (
            title.text(strip=True) if title is not None else None,
            tree.css_first('meta[name="description"]'),
            tree.css_first('meta[name="robots"]'),
            tree.css_first("base[href]"),
            [(a.attributes.get("href"), a.attributes.get("rel")) for a in tree.css("a[href]")],
            [link.attributes for link in tree.css("link[href]")],
        )

    print(f"lexbor parse + a[href]:             {per_call(lexbor, 400):.0f} µs")
    print(f"lexbor, the same facts as the scan: {per_call(lexbor_all, 400):.0f} µs")


def frontier(batches: int = 100) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(os.path.join(folder, "f.journal"), isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        store = Frontier(db)
        offered = 0
        started = time.perf_counter()
        for batch in range(batches):
            found = []
            for i in range(1000):
                n = batch * 500 + i  # half of each batch was offered by the one before
                url = f"http://host{n % 50}.example/p/{n}"
                key = hashlib.blake2b(url.encode(), digest_size=16).digest()
                found.append(Link(key, url, 1, f"host{n % 50}.example:80", key))
            db.execute("BEGIN")
            store.offer(found)
            db.execute("COMMIT")
            offered += len(found)
        elapsed = time.perf_counter() - started
        db.close()
    print(f"frontier: {offered / elapsed:,.0f} link offers/s (50% duplicates, hashing included)")


if __name__ == "__main__":
    links()
    pages()
    frontier()
