"""A generated site to crawl: every shape a crawler must get right, and its answer key.

``CrawlSite`` is the site as pure data: which pages exist on which host, what each links
to, and what a correct crawl from its seeds fetches (``expected``). It is served by an
aiohttp app (``run_crawl_site``, in-process; ``python -m conveyor.testing.crawl_site`` as
a process) for the tests and the demo, or written out as static files
(``write_static``) for nginx, for the benchmark.

Hosts (each its own loopback address, ``hosts[i]``): the first ``content`` hosts hold
``pages`` pages each; with ``features`` two more follow, ``flaky`` and ``outside``. A page
``/p/N`` of a content host links to:

- ``/p/2N+1`` and ``/p/2N+2`` (every page is reachable), ``/p/N//2#up`` (a cycle, with a
  fragment), ``fanout`` more pages of its host chosen by a hash, and page ``N`` of the next
  content host;
- with ``features``: one of its neighbours under another spelling (``/p/./M``,
  ``/x/../p/M``, ``HTTP://HOST/p/M#s``, ``/p/%4D``-style escapes of unreserved characters),
  so one page is linked under many spellings and must be fetched once; ``/Case/K`` and
  ``/case/K``, two pages that must stay two; ``/private/K``, which robots.txt disallows;
  ``/nf/N`` with ``rel=nofollow``; ``mailto:`` and ``javascript:`` links; a page of the
  ``outside`` host (out of scope: never fetched); a page of the ``flaky`` host, whose
  robots.txt answers 503 (with ``Retry-After: 1``, as a site down for a moment says) the
  first ``robots_503`` times, then allows everything; and
  ``/trap/``, whose every page links ``a/`` (an endless ``/trap/a/a/a/...``: the
  repeated-segment defence stops it at ``/trap/a/a/``).
- robots.txt of the first host names a gzipped sitemap index, whose two sitemaps list
  some pages and ``orphans`` pages no page links to (``/orphan/K``).

The server counts each request by host and path, in order (``CrawlStats``), so a test
asserts on what the server saw: nothing disallowed or out of scope was asked for, and the
flaky host's pages came only after its robots.txt said 200.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

__all__ = ["CrawlSite", "CrawlStats", "RunningCrawlSite", "run_crawl_site", "write_static"]

_FILLER = "conveyor crawl site body text, repeated to give the page some weight. " * 4


@dataclass(frozen=True)
class CrawlSite:
    """The site's shape; ``bases`` are the hosts' base URLs (``http://127.0.0.21:PORT``),
    the content hosts first, then, with ``features``, the flaky and the outside host."""

    bases: tuple[str, ...]
    content: int = 1
    pages: int = 300
    fanout: int = 3
    features: bool = True
    orphans: int = 10
    flaky_pages: int = 20
    robots_503: int = 2
    page_bytes: int = 2000

    @property
    def flaky(self) -> str:
        return self.bases[self.content]

    @property
    def outside(self) -> str:
        return self.bases[self.content + 1]

    def seeds(self) -> list[str]:
        """Where a crawl of the whole site starts: each content host's home, and the
        flaky host's first page."""
        seeds = [f"{base}/" for base in self.bases[: self.content]]
        return [*seeds, f"{self.flaky}/f/0"] if self.features else seeds

    # -- what a correct crawl fetches --------------------------------------------------

    def expected(self) -> set[str]:
        """The URLs a complete crawl from ``seeds()`` (scope host, robots obeyed, traps
        on, no depth limit) fetches, each once: one record each, in canonical spelling."""
        urls: set[str] = set()
        for base in self.bases[: self.content]:
            urls.add(f"{base}/")
            urls.update(f"{base}/p/{n}" for n in range(self.pages))
        if self.features:
            main = self.bases[0]
            cases = min(5, self.pages)
            urls.update(f"{main}/{c}/{k}" for c in ("Case", "case") for k in range(cases))
            urls.update(f"{main}/trap/{tail}" for tail in ("", "a/", "a/a/"))
            urls.update(f"{main}/orphan/{k}" for k in range(self.orphans))
            urls.update(f"{self.flaky}/f/{k}" for k in range(self.flaky_pages))
        return urls

    # -- the pages ---------------------------------------------------------------------

    def page(self, host: int, path: str) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` of ``path`` (query left out) on host ``host``."""
        base = self.bases[host]
        if path == "/robots.txt":
            return self._robots(host)
        if self.features and host == self.content:  # the flaky host
            if path.startswith("/f/") and path[3:].isdigit():
                k = int(path[3:])
                if k < self.flaky_pages:
                    nxt = f"/f/{(k + 1) % self.flaky_pages}"
                    return self._html(f"flaky {k}", [nxt, f"{self.bases[0]}/"])
            return 404, "text/plain", b"not found"
        if self.features and host == self.content + 1:  # outside: anything answers
            return self._html(f"outside {path}", [])
        if path == "/":
            return self._html(f"home of {base}", ["/p/0"])
        if path.startswith("/p/"):
            tail = path[3:]
            if tail.isdigit() and int(tail) < self.pages and (tail == "0" or tail[0] != "0"):
                return self._html(f"page {tail} of host {host}", self._links(host, int(tail)))
            return 404, "text/plain", b"not found"
        if self.features and host == 0:
            return self._feature_page(path)
        return 404, "text/plain", b"not found"

    def _feature_page(self, path: str) -> tuple[int, str, bytes]:
        head, _, rest = path[1:].partition("/")
        if head in ("Case", "case") and rest.isdigit():
            return self._html(f"{head} {rest}", [])
        if head == "trap":
            return self._html(f"trap {rest}", ["a/"])  # relative: /trap/a/a/a/...
        if head in ("orphan", "private", "nf") and rest.isdigit():
            return self._html(f"{head} {rest}", [])
        if path == "/sitemap_index.xml.gz":
            return 200, "application/gzip", gzip.compress(self._index(), mtime=0)
        if path == "/sitemaps/pages.xml":
            return 200, "application/xml", self._urlset(self._listed(0))
        if path == "/sitemaps/more.xml.gz":
            return 200, "application/gzip", gzip.compress(self._urlset(self._listed(1)), mtime=0)
        return 404, "text/plain", b"not found"

    def _links(self, host: int, n: int) -> list[str]:
        links = [f"/p/{c}" for c in (2 * n + 1, 2 * n + 2) if c < self.pages]
        links.append(f"/p/{n // 2}#up")
        links += [f"/p/{_hash(host, n, i) % self.pages}" for i in range(self.fanout)]
        if self.content > 1:
            links.append(f"{self.bases[(host + 1) % self.content]}/p/{n}")
        if not self.features or host != 0:
            return links
        main = self.bases[0]
        m = (n + 1) % self.pages
        spellings = (
            f"/p/./{m}",
            f"/x/../p/{m}",
            f"HTTP://{main.partition('://')[2].upper()}/p/{m}#s",
            f"/%70/{m}",  # %70 is "p": an escaped unreserved character
        )
        links.append(spellings[n % len(spellings)])
        cases = min(5, self.pages)
        links += [f"/Case/{n % cases}", f"/case/{n % cases}", f"/private/{n % 7}"]
        links += ["mailto:someone@example.com", "javascript:void(0)"]
        links.append(f"{self.outside}/o/{n}")
        links.append(f"{self.flaky}/f/{n % self.flaky_pages}")
        if n == 0:
            links.append("/trap/")
        return links

    def _html(self, title: str, links: list[str]) -> tuple[int, str, bytes]:
        anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
        nofollow = ""
        if self.features and title.startswith("page ") and title.endswith(" of host 0"):
            n = title.split()[1]
            nofollow = f'<a rel="nofollow" href="/nf/{n}">not followed</a>'
        filler = _FILLER * max(0, self.page_bytes // len(_FILLER) - 1)
        body = (
            f"<!doctype html><html><head><title>{title}</title>"
            f'<meta name="description" content="{title}, a generated page"></head>'
            f"<body><h1>{title}</h1><ul>{anchors}</ul>{nofollow}<p>{filler}</p></body></html>"
        )
        return 200, "text/html; charset=utf-8", body.encode()

    def _robots(self, host: int) -> tuple[int, str, bytes]:
        if self.features and host == 0:
            sitemap = f"{self.bases[0]}/sitemap_index.xml.gz"
            text = f"User-agent: *\nDisallow: /private/\n\nSitemap: {sitemap}\n"
            return 200, "text/plain", text.encode()
        return 200, "text/plain", b"User-agent: *\nAllow: /\n"

    def _index(self) -> bytes:
        main = self.bases[0]
        items = "".join(
            f"<sitemap><loc>{main}{path}</loc></sitemap>"
            for path in ("/sitemaps/pages.xml", "/sitemaps/more.xml.gz")
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}'
            "</sitemapindex>"
        ).encode()

    def _listed(self, part: int) -> list[str]:
        main = self.bases[0]
        half = self.orphans // 2
        orphans = range(half) if part == 0 else range(half, self.orphans)
        pages = [f"{main}/p/{n}" for n in range(min(10, self.pages))] if part == 0 else []
        return pages + [f"{main}/orphan/{k}" for k in orphans]

    def _urlset(self, urls: list[str]) -> bytes:
        items = "".join(
            f"<url><loc>{url}</loc><lastmod>2024-01-0{1 + i % 9}</lastmod></url>"
            for i, url in enumerate(urls)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</urlset>'
        ).encode()

    def paths(self, host: int) -> Iterator[str]:
        """Every path of a content host that answers 200 (for ``write_static``)."""
        yield "/"
        yield "/robots.txt"
        for n in range(self.pages):
            yield f"/p/{n}"


def _hash(host: int, n: int, i: int) -> int:
    digest = hashlib.blake2b(f"{host}:{n}:{i}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


@dataclass
class CrawlStats:
    """What the server saw: requests by ``host:port`` and path, and their order."""

    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    order: list[tuple[str, str, int]] = field(default_factory=list)  # (host, path, status)
    robots: Counter[str] = field(default_factory=Counter)  # robots.txt asked, per host

    def count(self, host: str, prefix: str = "") -> int:
        """Requests to ``host`` whose path starts with ``prefix``."""
        return sum(n for (h, path), n in self.hits.items() if h == host and path.startswith(prefix))

    def summary(self) -> dict[str, object]:
        return {
            "hits": [[h, p, n] for (h, p), n in self.hits.items()],
            "order": self.order,
            "robots": dict(self.robots),
        }


_SITE: web.AppKey[CrawlSite] = web.AppKey("crawl_site", CrawlSite)
_STATS: web.AppKey[CrawlStats] = web.AppKey("crawl_stats", CrawlStats)
_DELAY: web.AppKey[float] = web.AppKey("crawl_delay", float)


async def _serve_page(request: web.Request) -> web.StreamResponse:
    site, stats = request.app[_SITE], request.app[_STATS]
    host = request.host
    if request.path == "/_crawl_stats":
        return web.json_response(stats.summary())
    try:
        index = [base.partition("://")[2] for base in site.bases].index(host)
    except ValueError:
        return web.Response(status=421, text="unknown host")
    path = request.path  # decoded, as a server reads it: /%70/1 is /p/1
    status, content_type, body = site.page(index, path)
    if index == site.content and site.features and path == "/robots.txt":
        stats.robots[host] += 1
        if stats.robots[host] <= site.robots_503:
            status, content_type, body = 503, "text/plain", b"robots.txt is down for now"
    stats.hits[(host, path)] += 1
    stats.order.append((host, path, status))
    delay = request.app[_DELAY]
    if delay and content_type.startswith("text/html"):
        await asyncio.sleep(delay)
    headers = {"Content-Type": content_type}
    if status == 503:
        headers["Retry-After"] = "1"
    return web.Response(status=status, body=body, headers=headers)


def make_crawl_app(site: CrawlSite, stats: CrawlStats, delay: float = 0.0) -> web.Application:
    app = web.Application()
    app[_SITE] = site
    app[_STATS] = stats
    app[_DELAY] = delay
    app.router.add_route("GET", "/{tail:.*}", _serve_page)
    return app


@dataclass(frozen=True)
class RunningCrawlSite:
    site: CrawlSite
    stats: CrawlStats

    def host(self, index: int) -> str:
        """``127.0.0.21:PORT``, as the stats name hosts."""
        return self.site.bases[index].partition("://")[2]


@contextlib.asynccontextmanager
async def run_crawl_site(
    addresses: Sequence[str] = ("127.0.0.21", "127.0.0.22", "127.0.0.23"),
    *,
    delay: float = 0.0,
    **shape: object,
) -> AsyncIterator[RunningCrawlSite]:
    """Serve the site, each host on its address and a free port, until the block ends.
    ``shape``: ``CrawlSite``'s fields (``content=`` counts the content hosts among the
    addresses; with features, two more must follow)."""
    sockets = []
    for address in addresses:
        sock = socket.socket()
        sock.bind((address, 0))
        sockets.append(sock)
    bases = tuple(
        f"http://{a}:{s.getsockname()[1]}" for a, s in zip(addresses, sockets, strict=True)
    )
    site = CrawlSite(bases, **shape)  # type: ignore[arg-type]
    stats = CrawlStats()
    runner = web.AppRunner(
        make_crawl_app(site, stats, delay), access_log=None, shutdown_timeout=0.5
    )
    await runner.setup()
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        yield RunningCrawlSite(site, stats)
    finally:
        await runner.cleanup()
        for sock in sockets:
            sock.close()


def write_static(site: CrawlSite, root: Path) -> list[Path]:
    """Write each content host's pages as files under ``root/HOST_INDEX/`` (``/p/N`` as
    ``p/N``, ``/`` as ``index.html``) for a static server; the folders, in host order."""
    folders = []
    for host in range(site.content):
        folder = root / str(host)
        (folder / "p").mkdir(parents=True, exist_ok=True)
        for path in site.paths(host):
            _, _, body = site.page(host, path)
            name = "index.html" if path == "/" else path.lstrip("/")
            (folder / name).write_bytes(body)
        folders.append(folder)
    return folders


async def _serve_forever(addresses: Sequence[str], delay: float, shape: dict[str, object]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_crawl_site(addresses, delay=delay, **shape) as running:
        # The one line a parent process reads: the hosts' base URLs.
        sys.stdout.write(f"listening on {json.dumps(list(running.site.bases))}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="conveyor's generated crawl site")
    parser.add_argument("--addresses", default="127.0.0.21,127.0.0.22,127.0.0.23")
    parser.add_argument("--content", type=int, default=1)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--fanout", type=int, default=3)
    parser.add_argument("--robots-503", type=int, default=2)
    parser.add_argument("--no-features", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    shape: dict[str, object] = {
        "content": args.content,
        "pages": args.pages,
        "fanout": args.fanout,
        "robots_503": args.robots_503,
        "features": not args.no_features,
    }
    asyncio.run(_serve_forever(args.addresses.split(","), args.delay, shape))


if __name__ == "__main__":
    main()
