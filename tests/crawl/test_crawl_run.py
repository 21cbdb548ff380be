"""``conveyor.crawl`` in the library, against the generated crawl site, in-process: the
whole site once, nothing disallowed or out of scope, the limits, the stages after it, and
a resumed crawl that repeats nothing. What the server saw is the evidence."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import conveyor as cv
from conveyor._crawl.urls import canonical
from conveyor._io import read_counts
from conveyor.testing.crawl_site import RunningCrawlSite, run_crawl_site

# The flaky host's robots.txt answers 503 this many times: more than the client's tries of
# one fetch (retries=1: two), so the crawl sees it unreachable and asks again later.
FLAKY = 3
FAST = {"retries": 1, "backoff": 0.01, "robots_retry": 0.05}


def keys(pages: list[Any]) -> list[str]:
    return [canonical(page.url) for page in pages]


def expected(running: RunningCrawlSite) -> set[str]:
    return {canonical(url) for url in running.site.expected()}


@pytest.mark.parametrize("loops", [1, 2])
async def test_the_whole_site_once_and_nothing_it_must_not_fetch(
    tmp_path: Path, loops: int
) -> None:
    async with run_crawl_site(robots_503=FLAKY) as running:
        site, stats = running.site, running.stats
        out: list[Any] = []
        result = await cv.crawl(site.seeds(), **FAST).run_async(
            out, journal=str(tmp_path / "c.journal"), loops=loops
        )
    got = keys(out)
    assert len(got) == len(set(got))  # each page once
    assert set(got) == expected(running)
    main, flaky, outside = running.host(0), running.host(1), running.host(2)
    assert stats.count(main, "/private/") == 0  # robots.txt disallows it
    assert stats.count(main, "/nf/") == 0  # rel=nofollow
    assert stats.count(outside) == 0  # out of scope
    assert stats.hits[(main, "/trap/a/a/")] == 1
    assert stats.hits[(main, "/trap/a/a/a/")] == 0  # the trap's defence
    assert stats.hits[(main, "/Case/1")] == stats.hits[(main, "/case/1")] == 1
    # One page linked under four spellings was asked for once.
    assert stats.hits[(main, "/p/7")] == 1
    # The flaky host: robots.txt asked again after its 503s, its pages only after a 200.
    order = stats.order
    first_ok = next(i for i, (h, p, s) in enumerate(order) if h == flaky and s == 200)
    assert order[first_ok][1] == "/robots.txt"
    assert stats.robots[flaky] == FLAKY + 1
    assert all(
        i > first_ok for i, (h, p, _) in enumerate(order) if h == flaky and p != "/robots.txt"
    )
    assert result.results == len(got)
    # The orphans only the gzipped sitemap index's sitemaps list were reached, at depth 0.
    orphans = [page for page in out if "/orphan/" in page.url]
    assert len(orphans) == site.orphans
    assert {page.depth for page in orphans} == {0}
    assert all(page.lastmod and page.lastmod.startswith("2024-01-0") for page in orphans)
    # The crawl's report, merged over the loops: the links' fates add up.
    report = result.stages[0].details
    assert report.pages == len(got)
    turned_away = sum(report.rejected.values())
    assert report.links_found == (
        report.unfit + report.nofollow + report.repeated + turned_away + report.resent
        + report.sent
    )  # fmt: skip


async def test_pages_say_where_they_were_found() -> None:
    async with run_crawl_site(features=False, pages=7, fanout=0) as running:
        base = running.site.bases[0]
        out: list[Any] = []
        await cv.crawl(f"{base}/", depth=2).run_async(out)
    by_url = {page.url: page for page in out}
    assert set(by_url) == {f"{base}/", f"{base}/p/0", f"{base}/p/1", f"{base}/p/2"}
    assert by_url[f"{base}/"].depth == 0
    assert by_url[f"{base}/"].referrer is None
    assert by_url[f"{base}/p/1"].depth == 2
    assert by_url[f"{base}/p/1"].referrer == f"{base}/p/0"
    assert by_url[f"{base}/p/1"].title == "page 1 of host 0"
    assert isinstance(by_url[f"{base}/p/1"], cv.Response)


async def test_stages_follow_the_crawl_as_they_follow_a_fetch(tmp_path: Path) -> None:
    async with run_crawl_site(features=False, pages=40) as running:
        base = running.site.bases[0]
        titles: list[Any] = []
        pipeline = (
            cv.crawl(f"{base}/")
            .filter(lambda page: "/p/" in page.url)
            .map(lambda page: {"title": page.title, "depth": page.depth})
        )
        result = await pipeline.run_async(titles, journal=str(tmp_path / "c.journal"))
    assert len(titles) == 40
    assert result.filtered == 1  # the home page: filtered out, yet its links followed
    assert {row["title"] for row in titles} == {f"page {n} of host 0" for n in range(40)}


@pytest.mark.parametrize(
    ("options", "count"),
    [
        ({"max_pages": 5}, 5),
        ({"depth": 0}, 1),
        ({"allow": r"/p/\d$"}, 1 + 10),  # the seed, always fetched, and /p/0 to /p/9
        ({"deny": r"/p/1\d"}, 1 + 30 - 10 - 9),  # 10-19, and 21-29 only they link to
        ({"max_pages_per_host": 4}, 4),
    ],
)
async def test_limits(options: dict[str, Any], count: int) -> None:
    async with run_crawl_site(features=False, pages=30, fanout=0) as running:
        base = running.site.bases[0]
        out: list[Any] = []
        await cv.crawl(f"{base}/", **options).run_async(out)
    assert len(out) == count, keys(out)


async def test_ignoring_robots_fetches_the_disallowed_subtree() -> None:
    async with run_crawl_site(pages=20, robots_503=0) as running:
        out: list[Any] = []
        await cv.crawl(running.site.seeds(), robots=False, **FAST).run_async(out)
    assert running.stats.count(running.host(0), "/private/") == 7
    assert running.stats.count(running.host(0), "/robots.txt") == 0


async def test_a_stopped_crawl_resumes_and_repeats_nothing(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    async with run_crawl_site(robots_503=FLAKY) as running:
        seeds = running.site.seeds()
        first: list[Any] = []
        await cv.crawl(seeds, max_pages=60, **FAST).run_async(first, journal=journal)
        assert len(first) == 60
        rest: list[Any] = []
        await cv.crawl(seeds, **FAST).run_async(rest, journal=journal)
        again: list[Any] = []
        done = await cv.crawl(seeds, **FAST).run_async(again, journal=journal)
    assert sorted(keys(first) + keys(rest)) == sorted(expected(running))
    assert again == []
    assert done.items == 0
    # robots.txt was kept in the journal: the resumed runs did not ask for it again.
    assert running.stats.robots[running.host(1)] == FLAKY + 1
    assert running.stats.hits[(running.host(0), "/robots.txt")] == 1
    db = sqlite3.connect(journal)
    try:
        (kept,) = db.execute("SELECT count(*) FROM crawl_robots").fetchone()
    finally:
        db.close()
    assert kept == 2


async def test_another_crawl_in_the_same_journal_is_refused(tmp_path: Path) -> None:
    journal = str(tmp_path / "c.journal")
    async with run_crawl_site(features=False, pages=3) as running:
        base = running.site.bases[0]
        await cv.crawl(f"{base}/").run_async([], journal=journal)
        with pytest.raises(cv.JobMismatchError, match="depth"):
            await cv.crawl(f"{base}/", depth=1).run_async([], journal=journal)


def test_bad_settings_fail_when_the_crawl_is_built() -> None:
    with pytest.raises(cv.UsageError, match="not an absolute http"):
        cv.crawl("example.com")
    with pytest.raises(cv.UsageError, match="--scope"):
        cv.crawl("http://127.0.0.21/", scope="[")
    with pytest.raises(cv.UsageError, match="max-pages"):
        cv.crawl("http://127.0.0.21/", max_pages=0)
    with pytest.raises(cv.UsageError, match="did you mean"):
        cv.crawl("http://127.0.0.21/", per_hots=2)
    with pytest.raises(cv.UsageError, match="--depth"):
        cv.crawl("http://127.0.0.21/", depth=-1)


@contextlib.asynccontextmanager
async def tiny_site(
    robots: str, pages: dict[str, str]
) -> AsyncIterator[tuple[str, list[tuple[float, str]]]]:
    """A one-host site: robots.txt and pages (``path: links``, or ``-> path`` for a 301);
    the arrivals, with their server-side times."""
    seen: list[tuple[float, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append((time.monotonic(), request.path))
        if request.path == "/robots.txt":
            return web.Response(text=robots)
        body = pages.get(request.path)
        if body is None:
            return web.Response(status=404)
        if body.startswith("-> "):
            raise web.HTTPMovedPermanently(body[3:])
        links = "".join(f'<a href="{href}">x</a>' for href in body.split())
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.24", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.24:{port}", seen
    finally:
        await runner.cleanup()


async def test_crawl_delay_spaces_the_hosts_requests() -> None:
    pages = {"/": "/a /b /c", "/a": "", "/b": "", "/c": ""}
    async with tiny_site("User-agent: *\nCrawl-delay: 0.2\n", pages) as (base, seen):
        out: list[Any] = []
        await cv.crawl(f"{base}/", per_host=8).run_async(out)
    assert len(out) == 4
    times = [at for at, path in seen if path != "/robots.txt"]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.19  # as robots.txt asks, though 8 could go at once


async def test_a_crawl_delay_over_the_cap_defers_the_host(tmp_path: Path) -> None:
    pages = {"/": "/a"}
    journal = str(tmp_path / "c.journal")
    async with tiny_site("User-agent: *\nCrawl-delay: 90\n", pages) as (base, seen):
        out: list[Any] = []
        await cv.crawl(f"{base}/").run_async(out, journal=journal)
    assert out == []
    assert [path for _, path in seen] == ["/robots.txt"]
    db = sqlite3.connect(journal)
    try:
        rows = db.execute("SELECT state, note FROM frontier").fetchall()
    finally:
        db.close()
    assert rows == [(4, "robots.txt asks for 90 s between requests, over the 30 s cap")]


async def test_a_redirect_target_is_not_fetched_again() -> None:
    pages = {"/": "/old", "/old": "-> /new", "/new": "/deeper", "/deeper": "/new /"}
    async with tiny_site("User-agent: *\n", pages) as (base, seen):
        out: list[Any] = []
        await cv.crawl(f"{base}/").run_async(out)
    assert [path for _, path in seen].count("/new") == 1
    assert sorted((page.url, page.final_url) for page in out) == [
        (f"{base}/", f"{base}/"),
        (f"{base}/deeper", f"{base}/deeper"),  # found on /new, read as /old's page
        (f"{base}/old", f"{base}/new"),
    ]


async def test_a_crawl_can_be_iterated() -> None:
    async with run_crawl_site(features=False, pages=12, fanout=0) as running:
        base = running.site.bases[0]
        urls = [page.url async for page in cv.crawl(f"{base}/", depth=2).stream()]
    assert sorted(urls) == [f"{base}/", f"{base}/p/0", f"{base}/p/1", f"{base}/p/2"]


async def test_a_host_whose_robots_txt_stays_down_is_deferred_then_crawled_next_run(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path / "c.journal")
    down = {"robots": True}
    seen: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        if request.path == "/robots.txt":
            if down["robots"]:
                # "Retry-After: 0": the host is not paused by the client's controller (a
                # bare 503 pauses it a minute), so the crawl's robots.txt retries decide.
                return web.Response(status=503, headers={"Retry-After": "0"})
            return web.Response(text="User-agent: *\nAllow: /\n")
        return web.Response(text='<a href="/b">b</a>', content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.25", 0).start()
    base = f"http://127.0.0.25:{runner.addresses[0][1]}"
    try:
        first: list[Any] = []
        crawl = cv.crawl(f"{base}/", retries=0, robots_retry=0.02)
        result = await crawl.run_async(first, journal=journal)
        assert first == []
        # A deferred page (not filtered): counted so, and kept so in the journal.
        assert result.deferred == 1
        assert result.deferred_by_reason == {"robots": 1}
        assert not result.complete
        counts = read_counts(journal)
        assert counts is not None
        assert counts.deferred == 1
        assert seen == ["/robots.txt"] * 4  # asked, then 3 retries; no page asked for
        db = sqlite3.connect(journal)
        try:
            (state, note) = db.execute("SELECT state, note FROM frontier").fetchone()
        finally:
            db.close()
        assert state == 4  # deferred, with the reason
        assert "robots.txt unreachable (HTTP 503) after 4 tries" in note
        down["robots"] = False
        second: list[Any] = []
        again = await cv.crawl(f"{base}/", retries=0, robots_retry=0.02).run_async(
            second, journal=journal
        )
        assert again.deferred == 0
        counts = read_counts(journal)
        assert counts is not None
        assert counts.deferred == 0
    finally:
        await runner.cleanup()
    assert sorted(page.url for page in second) == [f"{base}/", f"{base}/b"]
    assert seen[4] == "/robots.txt"  # the next run asked again before any page


async def test_a_crawl_cut_by_its_deadline_is_finished_by_the_next_run(tmp_path: Path) -> None:
    # Each page answers slowly: the deadline comes mid-crawl. What was in flight is
    # deferred in the frontier ("deadline"), and the next run crawls the rest, each once.
    journal = str(tmp_path / "c.journal")
    async with run_crawl_site(features=False, pages=60, fanout=3, delay=0.05) as running:
        base = running.site.bases[0]
        first: list[Any] = []
        cut = await cv.crawl(f"{base}/", concurrency=4).run_async(
            first, journal=journal, deadline=0.4, grace=0.2
        )
        assert cut.deferred > 0
        assert cut.failed == 0
        assert cut.deferred_by_reason == {"deadline": cut.deferred}
        second: list[Any] = []
        rest = await cv.crawl(f"{base}/", concurrency=4).run_async(second, journal=journal)
        assert rest.deferred == 0
        got = keys(first) + keys(second)
        assert len(got) == len(set(got))  # each page once across the two runs
        assert set(got) == expected(running)


@contextlib.asynccontextmanager
async def _two_hosts(held_for: int) -> AsyncIterator[tuple[str, str, Counter[int]]]:
    """Host P answers 503 with ``Retry-After: held_for`` (its site pauses it); host H
    serves a home page linking to 30 pages of its own. P's statuses are counted."""
    seen: Counter[int] = Counter()

    async def paused(request: web.Request) -> web.Response:
        seen[503] += 1
        return web.Response(status=503, headers={"Retry-After": str(held_for)})

    async def healthy(request: web.Request) -> web.Response:
        links = "".join(f'<a href="/p/{n}">{n}</a>' for n in range(30))
        body = links if request.path == "/" else "a page"
        return web.Response(text=f"<html><body>{body}</body></html>", content_type="text/html")

    runners = []
    bases = []
    for address, handler in (("127.0.0.33", paused), ("127.0.0.34", healthy)):
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, address, 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        bases.append(f"http://{address}:{port}")
    try:
        yield bases[0], bases[1], seen
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_pages_of_a_held_host_leave_the_request_slots_to_the_others() -> None:
    """P's site pauses it for 30 s at its first answer; its other 11 seeds wait for it.
    At ``concurrency=4`` they took every worker, and H's pages waited out P's pause
    behind them; in the crawl's waiting room (as a fetch's) H's 31 pages all end first."""
    async with _two_hosts(held_for=30) as (paused, healthy, seen):
        seeds = [f"{paused}/s/{n}" for n in range(12)] + [f"{healthy}/"]
        done_healthy = 0
        crawl = cv.crawl(seeds, robots=False, concurrency=4, retries=0)
        async for page in crawl:
            if str(page.url).startswith(healthy):
                done_healthy += 1
                if done_healthy == 31:
                    break  # the run is aborted: P's pages are left undone
        assert done_healthy == 31
        assert seen[503] <= 4  # P saw its first request and no more than were out with it
