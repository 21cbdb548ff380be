"""The crawl's fetch stage: the HTTP client as a service that also reads what it fetched.

For each frontier item (``plan.CrawlItem``) the service, on the loop that owns the item's
host (the parent's, or a loop process's with ``loops``):

1. a sitemap: fetches it, reads it (``_crawl.sitemaps``; a large one on a thread) and
   brings back the pages and sitemaps it lists; nothing is written for it;
2. a page: asks robots.txt (``robots.RobotsCache``): disallowed, put aside or deferred
   pages end here, unfetched;
3. fetches the page (the client's limits, retries and redirects), scans it once
   (``_crawl.links.page_links``: the record's title, description and link count, and the
   links), admits each link (``_crawl.scope.Admission``: scope, depth, traps, allow/deny)
   and drops those this service sent before (a bounded memory of keys), so the parent's
   frontier sees each link about once per loop;
4. returns ``Carry(Page, Found)``: the page goes down the pipeline, ``Found`` to the
   journal's commit (``hook.CrawlHook``), which offers the links in the transaction that
   records the page.

``CrawlFactory`` and ``CrawlService`` implement the engine's service ports as the fetch's
``ClientFactory`` does; the report is a ``CrawlReport``, the fetch's report with the
crawl's counts added (merged over loops by field).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..._crawl.links import PageLinks, page_links
from ..._crawl.robots import Verdict
from ..._crawl.sitemaps import SitemapReader
from ..._crawl.urls import canonical_key
from ..._engine.ports import Budget, Carry, Peers, add, by_key, merge_by
from ..._errors import FetchError, UsageError
from ..._http.hosts import host_key
from ..._http.stats import FetchReport
from ..._io.journal.frontier import Kind
from .page import Page
from .plan import CrawlItem, CrawlPlan, Found, SentLink
from .robots import RobotsCache

if TYPE_CHECKING:
    from ..._crawl.robots import RobotsPolicy
    from ..._http.client import HttpClient
    from ..._http.config import FetchConfig
    from ..._http.response import Response

# Keys this service sent, remembered in two generations of this many each: enough for a
# page's neighbourhood (the frontier drops the rest); 65,536 grew a crawl's peak RSS by
# 25% from 10,000 to 100,000 pages (two loops, each with its two generations).
SENT_MEMORY = 1 << 12
# A sitemap bigger than this is read on a thread, not on the loop.
_BIG_SITEMAP = 256 * 1024
_PIECE = 1 << 20


@dataclass(frozen=True, slots=True)
class CrawlReport(FetchReport):
    """The fetch's report and the crawl's counts (each added up over loops).

    Attributes:
        pages: pages fetched.
        links_found: links on those pages (``<a href>`` and ``<link rel=next|alternate>``,
            ``rel=nofollow`` ones included).
        unfit: links that are no http(s) URL.
        nofollow: links not followed for ``rel=nofollow`` or the page's robots meta tag.
        repeated: links to a URL the page linked already (``repeated_raw`` of them spelt
            the same, the rest other spellings of it).
        rejected: links turned away, by reason (``out-of-scope``, ``too-deep``, traps ...).
        resent: admitted links this loop had sent already (``resent_raw`` spelt the same).
        sent: links sent to the frontier.
        robots_fetched, disallowed, robots_held, robots_deferred: robots.txt fetched, and pages it
            disallowed, put aside (unreachable, asked again later) or deferred.
        sitemaps_read: sitemaps read; sitemap_listed: the URLs they listed;
            sitemap_dropped: of those, dropped by reason.
    """

    pages: int = 0
    links_found: int = 0
    unfit: int = 0
    nofollow: int = 0
    repeated: int = 0
    repeated_raw: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict, metadata=merge_by(by_key(add)))
    resent: int = 0
    resent_raw: int = 0
    sent: int = 0
    robots_fetched: int = 0
    disallowed: int = 0
    robots_held: int = 0
    robots_deferred: int = 0
    sitemaps_read: int = 0
    sitemap_listed: int = 0
    sitemap_dropped: Mapping[str, int] = field(default_factory=dict, metadata=merge_by(by_key(add)))


class _Counts:
    """The service's counters (plain attributes: bumped for every link)."""

    def __init__(self) -> None:
        self.pages = self.links_found = self.unfit = self.nofollow = 0
        self.repeated = self.repeated_raw = self.resent = self.resent_raw = self.sent = 0
        self.held = self.deferred = self.sitemaps_read = self.sitemap_listed = 0
        self.sitemap_dropped: dict[str, int] = {}


class CrawlService:
    """The open client and the crawl's reading of pages (see the module)."""

    def __init__(self, client: HttpClient, plan: CrawlPlan) -> None:
        self.client = client
        self.plan = plan
        self._rules = plan.rules
        self._admission = plan.admission()
        self._robots = RobotsCache(client, plan.robots_rules, plan.journal) if plan.robots else None
        self._sent: dict[bytes, str] = {}
        self._sent_before: dict[bytes, str] = {}
        self._counts = _Counts()

    @property
    def call(self) -> Callable[[Any], Awaitable[Carry]]:
        return self._call

    def attempts(self, result: Any) -> int:
        value = result.value if type(result) is Carry else result
        return getattr(value, "attempts", 1) if value is not None else 1

    def close(self) -> None:
        if self._robots is not None:
            self._robots.close()

    def join(self, peers: Peers) -> None:
        """``ports.Peered``, as the fetch's service: tell the other loops of every pause a
        site asks for."""
        self.client.join(peers)

    def hear(self, notice: Any) -> None:
        """``ports.Peered``: a pause another loop was told of, or the run's ``WindDown``
        (a stop, the deadline, the tail) for the client's waiting requests."""
        self.client.hear(notice)

    async def _call(self, item: CrawlItem) -> Carry:
        if item.kind != Kind.PAGE:
            return await self._sitemap(item)
        robots = self._robots
        if robots is not None:
            verdict, policy = await robots.verdict(item.url)
            if verdict is not Verdict.ALLOW:
                return self._unfetched(verdict, policy)
        response = await self.client.fetch(item.url)
        fetched_at = time.time()
        self._counts.pages += 1
        title = description = None
        count = 0
        links: tuple[SentLink, ...] = ()
        body = response.content()
        if body and "html" in response.content_type:
            found = page_links(
                response.final_url, body, response.headers.get("Content-Type"), self._rules
            )
            scan = found.scan
            title, description, count = scan.title, scan.description, scan.links
            if response.status < 300:
                links = self._follow(found, item.depth + 1)
        page = Page.of(
            response,
            depth=item.depth,
            referrer=item.referrer,
            lastmod=item.lastmod or None,
            title=title,
            description=description,
            links=count,
            fetched_at=fetched_at,
        )
        seen = self._redirected(response)
        return Carry(page, self._found("fetched", links=links, depth=item.depth + 1, seen=seen))

    def _follow(self, found: PageLinks, depth: int) -> tuple[SentLink, ...]:
        """The page's links to send: admitted, and not sent by this service before."""
        counts = self._counts
        scan = found.scan
        counts.links_found += len(scan.hrefs or ()) + scan.nofollow_links
        counts.nofollow += scan.nofollow_links
        counts.unfit += found.unfit
        counts.repeated += found.repeated
        counts.repeated_raw += found.repeated_raw
        if scan.nofollow:  # <meta name=robots content=nofollow>: none of them
            counts.nofollow += len(found.links)
            return ()
        check = self._admission.check
        sent, before = self._sent, self._sent_before
        out = []
        for url, key, _ in found.links:
            if check(url, depth) is not None:
                continue
            known = sent.get(key)
            if known is None:
                known = before.get(key)
            if known is not None:
                counts.resent += 1
                counts.resent_raw += known == url
                continue
            sent[key] = url
            out.append((key, url, host_key(url)))
        if len(sent) >= SENT_MEMORY:  # bounded: the older generation goes
            self._sent_before, self._sent = sent, {}
        counts.sent += len(out)
        return tuple(out)

    def _redirected(self, response: Response) -> tuple[SentLink, ...]:
        """Where the page's redirects went (fetched on the way): recorded as done."""
        if not response.redirects:
            return ()
        hops = [*response.redirects[1:], response.final_url]
        out = []
        for url in hops:
            try:
                out.append((canonical_key(url, self._rules), url, host_key(url)))
            except UsageError:  # not an http(s) URL we could key: nothing to record
                continue
        return tuple(out)

    def _unfetched(self, verdict: Verdict, policy: RobotsPolicy) -> Carry:
        if verdict is Verdict.DISALLOW:
            return Carry(None, self._found("disallowed"), drop=True)
        if verdict is Verdict.WAIT:
            self._counts.held += 1
            until = policy.entry.retry_at or time.time()
            return Carry(None, self._found("held", until=until), drop=True)
        self._counts.deferred += 1
        reason = policy.defer_reason or "robots.txt"
        # Deferred (not filtered) for the run's counts; the note says why, in the frontier.
        return Carry(None, self._found("deferred", note=reason), drop=True, deferred="robots")

    async def _sitemap(self, item: CrawlItem) -> Carry:
        try:
            response = await self.client.fetch(item.url)
        except FetchError as exc:
            return Carry(None, self._found("sitemap-failed", note=exc.kind), drop=True)
        if not 200 <= response.status < 300:
            failed = self._found("sitemap-failed", note=f"HTTP {response.status}")
            return Carry(None, failed, drop=True)
        reader = SitemapReader(
            response.final_url,
            level=item.depth,
            keep=lambda url: self._admission.allows(url, 0),
            from_robots=item.kind == Kind.ROBOTS_SITEMAP,
        )
        body = response.content()
        if len(body) > _BIG_SITEMAP:
            entries = await asyncio.to_thread(_read_sitemap, reader, body)
        else:
            entries = _read_sitemap(reader, body)
        listed, sitemaps = [], []
        # An index robots.txt named passes that on: the site's owner named the whole tree.
        child = int(Kind.ROBOTS_SITEMAP if item.kind == Kind.ROBOTS_SITEMAP else Kind.SITEMAP)
        for entry in entries:
            try:
                key = canonical_key(entry.url, self._rules)
            except UsageError:
                continue
            host = host_key(entry.url)
            if entry.kind == "page":
                listed.append((key, entry.url, host, entry.lastmod or ""))
            else:
                sitemaps.append((key, entry.url, host, entry.level, child))
        counts = self._counts
        counts.sitemaps_read += 1
        stats = reader.statistics()
        counts.sitemap_listed += stats.listed
        for reason, n in stats.dropped.items():
            counts.sitemap_dropped[reason] = counts.sitemap_dropped.get(reason, 0) + n
        found = self._found("sitemap", listed=tuple(listed), sitemaps=tuple(sitemaps))
        return Carry(None, found, drop=True)

    def _found(self, verdict: str, **fields: Any) -> Found:
        """A ``Found``, with the robots.txt entries (and the sitemaps they name) fetched
        since the last one: they reach the journal with the next item that finishes."""
        robots = self._robots
        if robots is not None and (robots.fresh or robots.sitemaps):
            fields["robots"] = robots.take_fresh()
            named, robots.sitemaps = robots.sitemaps, []
            extra = []
            for url in named:
                try:
                    key = canonical_key(url, self._rules)
                except UsageError:
                    continue
                extra.append((key, url, host_key(url), 0, int(Kind.ROBOTS_SITEMAP)))
            fields["sitemaps"] = (*fields.get("sitemaps", ()), *extra)
        return Found(verdict, **fields)

    def report(self) -> CrawlReport:
        fetch = self.client.details()
        counts = self._counts
        robots = self._robots
        return CrawlReport(
            **{f.name: getattr(fetch, f.name) for f in dataclasses.fields(fetch)},
            pages=counts.pages,
            links_found=counts.links_found,
            unfit=counts.unfit,
            nofollow=counts.nofollow,
            repeated=counts.repeated,
            repeated_raw=counts.repeated_raw,
            rejected=self._admission.statistics().rejected,
            resent=counts.resent,
            resent_raw=counts.resent_raw,
            sent=counts.sent,
            robots_fetched=0 if robots is None else robots.fetched,
            disallowed=0 if robots is None else robots.disallowed,
            robots_held=counts.held,
            robots_deferred=counts.deferred,
            sitemaps_read=counts.sitemaps_read,
            sitemap_listed=counts.sitemap_listed,
            sitemap_dropped=dict(counts.sitemap_dropped),
        )


def _read_sitemap(reader: SitemapReader, body: bytes) -> list[Any]:
    entries = []
    for start in range(0, len(body), _PIECE):
        entries += reader.feed(body[start : start + _PIECE])
    entries += reader.close()
    return entries


class CrawlFactory:
    """Opens the run's client and its crawl service; picklable, so each loop process
    opens its own (``ServiceFactory``)."""

    def __init__(self, config: FetchConfig, plan: CrawlPlan, budget: Budget | None = None):
        self.config = config
        self.plan = plan
        self.budget = budget

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[CrawlService]:
        from ..._http.client import HttpClient

        async with HttpClient(self.config, budget=self.budget) as client:
            service = CrawlService(client, self.plan)
            try:
                yield service
            finally:
                service.close()

    def bind(self, budget: Budget) -> CrawlFactory:
        return CrawlFactory(self.config, self.plan, budget)

    def share(self, index: int, loops: int, *, spread: bool = False) -> CrawlFactory:
        """As the fetch's: the global rate divided among the loops, the rest whole (a
        crawl's hosts are never spread: ``spreads``)."""
        rate = self.config.rate_per_second
        if rate is None:
            return self
        config = dataclasses.replace(self.config, rate=rate / loops)
        return CrawlFactory(config, self.plan, self.budget)

    def spreads(self, loops: int) -> bool:
        """Never: each host has one loop, which keeps its robots.txt, its pace and what
        it has seen (the frontier routes by the same rule)."""
        return False

    def with_plan(self, plan: CrawlPlan) -> CrawlFactory:
        return CrawlFactory(self.config, plan, self.budget)
