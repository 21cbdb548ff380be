"""The crawl's frontier in the run's journal: its hook (``_io/journal/hooks.py``).

On the writer's thread, in the journal's own transactions:

- ``attach`` (a run starts): the frontier's tables; what a killed run had leased, put
  aside or deferred goes back to PENDING (failed rows too with ``retry_failed``); the
  seeds and the user's sitemaps are offered (known ones are ignored);
- ``take``: rows of hosts whose pause has ended are taken up again, then a window of
  PENDING rows is leased, shallowest first, at most ``max_pages`` pages in all;
- ``stage`` (finished items): each row finished by what its item's ``Found`` says
  (done, failed, disallowed, deferred with its reason, held until its host's robots.txt
  is asked again), and everything found offered: the page's links, where its redirects
  went (as done), a sitemap's pages and sitemaps, robots.txt entries. That is the
  transaction that records the page and its output's position (``Journal.record``), so
  a kill leaves the page with its links, or neither.

With ``Owner`` (a shard on Ray), links to hosts other shards own are not offered here:
each goes to its owner's inbox (``inbox.Outbox``), written before the commit that records
their pages; the inbox segments of this shard are read in at ``attach``, each in the
transaction that records it as read (``crawl_imported``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..._crawl.urls import canonical_key
from ..._engine.ports import KeyOutcome, Taken
from ..._http.hosts import host_key
from ..._io.journal.frontier import Frontier, Kind, Link, State
from .plan import CrawlItem, CrawlPlan, Found, PageKey
from .robots import TABLE as ROBOTS_TABLE


@dataclass
class FrontierTally:
    """What the frontier did in this run (on the writer's thread; read at the end)."""

    offered: int = 0  # links offered
    new: int = 0  # of those, new to the frontier
    known: int = 0  # already in it (found before, by this or an earlier run, or another loop)
    capped: int = 0  # over --max-pages-per-host
    redirects: int = 0  # URLs recorded as fetched on the way (redirect targets), new
    listed_new: int = 0  # sitemap pages new to the frontier
    sitemaps_new: int = 0
    robots_kept: int = 0  # robots.txt entries stored
    finished: dict[str, int] = field(default_factory=dict)  # rows finished, by state
    reopened: dict[str, int] = field(default_factory=dict)  # rows given back at the start
    states: dict[str, int] = field(default_factory=dict)  # all rows, at the end
    sitemap_reach: tuple[int, int] = (0, 0)  # (pages listed, of them done), at the end
    sent_out: int = 0  # links sent to other shards' inboxes
    imported: int = 0  # links read from this shard's inbox


_VERDICT_STATE = {
    "fetched": State.DONE,
    "sitemap": State.DONE,
    "disallowed": State.DISALLOWED,
    "sitemap-failed": State.FAILED,
}


class CrawlHook:
    """The frontier's side of the journal's transactions (see the module).

    Args:
        plan: the crawl.
        clock: wall-clock seconds (the pauses are kept in the journal, across runs).
    """

    def __init__(self, plan: CrawlPlan, *, clock: Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.tally = FrontierTally()
        self._clock = clock
        self._frontier: Frontier | None = None
        self._fetched = 0  # pages done or failed, for --max-pages
        self._out = 0  # pages leased and not finished
        self._outbox: Any = None

    # -- JournalHook ----------------------------------------------------------------------

    def attach(self, db: sqlite3.Connection, *, retry_failed: bool) -> int:
        plan = self.plan
        db.execute(ROBOTS_TABLE)
        frontier = self._frontier = Frontier(
            db, slots=plan.slots, max_per_host=plan.max_pages_per_host
        )
        self.tally.reopened = frontier.reopen(retry_failed=retry_failed)
        seeds = [Link(key, url, 0, host_key(url)) for key, url in plan.seed_keys()]
        frontier.offer(seeds)
        sitemaps = []
        for url in plan.sitemaps:
            key = canonical_key(url, plan.rules)
            sitemaps.append(Link(key, url, 0, host_key(url), kind=Kind.SITEMAP))
        frontier.offer(sitemaps)
        if plan.owner is not None:
            from .inbox import Outbox

            self._outbox = Outbox(plan.owner, plan.scope)
            self.tally.imported += self._outbox.read_in(db, frontier)
        if plan.max_pages is not None:
            self._fetched = frontier.fetched()
        return self.tally.reopened.get("failed", 0)

    def take(self, db: sqlite3.Connection, limit: int) -> Taken:
        frontier = self._frontier
        assert frontier is not None
        now = self._clock()
        frontier.release(now)
        pages = None
        if self.plan.max_pages is not None:
            pages = max(0, self.plan.max_pages - self._fetched - self._out)
        rows = frontier.take(limit, pages=pages)
        if not rows and self._outbox is not None:  # dry: what other shards sent since
            if self._outbox.read_in(db, frontier, now=time.monotonic()):
                rows = frontier.take(limit, pages=pages)
        items: list[tuple[Hashable, Any]] = []
        for row in rows:
            if row.kind == Kind.PAGE:
                self._out += 1
            item = CrawlItem(
                row.url, row.key, row.depth, row.host, row.referrer_url, row.lastmod, row.kind
            )
            items.append((PageKey(row.url, row.key), item))
        if items:
            return Taken(items)
        return Taken([], retry_in=frontier.release(now))

    def stage(
        self,
        db: sqlite3.Connection,
        done: Sequence[Hashable],
        others: Sequence[KeyOutcome],
        extras: Sequence[tuple[Hashable, Any]],
        *,
        commit: bool,
    ) -> None:
        frontier = self._frontier
        assert frontier is not None
        found: dict[Hashable, Found] = dict(extras) if extras else {}
        states: dict[State, list[bytes]] = {}
        links: list[Link] = []
        seen: list[Link] = []
        listed: list[Link] = []
        sitemaps: list[Link] = []
        robots: list[tuple[str, str]] = []
        pages = fetched = 0
        finished = [
            *((key, "done", None) for key in done),
            *((o.key, o.status, o.kind) for o in others),
        ]
        for key, status, reason in finished:
            assert isinstance(key, PageKey)
            what = found.get(key)
            if what is None or not what.verdict.startswith("sitemap"):
                pages += 1
            if what is None and status == "deferred":  # its fetch deferred it (a paused host)
                frontier.defer([key.key], reason or "deferred")
                state = State.DEFERRED
            elif what is None:  # the page's fetch failed: nothing came back
                state = State.FAILED if status == "failed" else State.DONE
            elif what.verdict == "held":
                frontier.hold([key.key], host_key(str(key)), what.until)
                state = State.HELD
            elif what.verdict == "deferred":
                frontier.defer([key.key], what.note)
                state = State.DEFERRED
            elif status == "failed" and what.verdict == "fetched":
                state = State.FAILED  # a later stage failed: the page is still read
            else:
                state = _VERDICT_STATE[what.verdict]
            if state not in (State.HELD, State.DEFERRED):
                states.setdefault(state, []).append(key.key)
            if state in (State.DONE, State.FAILED) and (what is None or what.verdict == "fetched"):
                fetched += 1
            self.tally.finished[state.name.lower()] = (
                self.tally.finished.get(state.name.lower(), 0) + 1
            )
            if what is None:
                continue
            for link_key, url, host in what.links:
                links.append(Link(link_key, url, what.depth, host, key.key))
            for link_key, url, host in what.seen:
                seen.append(Link(link_key, url, 0, host, key.key))
            for link_key, url, host, lastmod in what.listed:
                listed.append(Link(link_key, url, 0, host, None, lastmod))
            for link_key, url, host, level, kind in what.sitemaps:
                sitemaps.append(Link(link_key, url, level, host, None, None, kind))
            robots += what.robots
        self._out -= pages
        self._fetched += fetched
        for state, keys in states.items():
            frontier.finish(keys, state)
        if robots:
            db.executemany("INSERT OR REPLACE INTO crawl_robots (key, entry) VALUES (?, ?)", robots)
            self.tally.robots_kept += len(robots)
        if seen:
            self.tally.redirects += frontier.seen(seen)
        if self._outbox is not None:
            links = self._outbox.keep_own(links)
            listed = self._outbox.keep_own(listed)
        if links:
            self._count(frontier.offer(links))
        if listed:
            offered = frontier.offer(listed)
            self.tally.listed_new += len(offered.new)
            fresh = {row.key for row in offered.new}
            frontier.listed([link for link in listed if link.key not in fresh])
        if sitemaps:
            self.tally.sitemaps_new += len(frontier.offer(sitemaps).new)
        if commit and self._outbox is not None:
            self.tally.sent_out += self._outbox.flush()

    def close(self) -> None:
        frontier = self._frontier
        if frontier is None:
            return
        try:
            self.tally.states = frontier.statistics().states
            self.tally.sitemap_reach = frontier.sitemap_reach()
        except sqlite3.Error:
            pass  # the journal is failing: its own error says so

    # -- inside ---------------------------------------------------------------------------

    def _count(self, offered: Any) -> None:
        tally = self.tally
        tally.offered += len(offered.new) + offered.duplicates + offered.capped
        tally.new += len(offered.new)
        tally.known += offered.duplicates
        tally.capped += offered.capped
