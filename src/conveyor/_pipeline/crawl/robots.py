"""robots.txt in a running crawl: fetched once per scheme, host and port with the crawl's
own client, kept in the journal, parsed off the event loop, obeyed.

``RobotsCache.verdict(url)`` answers with the crawl core's verdicts (``_crawl.robots``):
ALLOW, DISALLOW, WAIT (robots.txt unreachable and being asked again: the page is put
aside until ``retry_at``) or DEFER. The first page of a host to ask starts the one fetch
of its robots.txt; the others wait for it. An entry comes, in this order, from memory,
from the journal (``crawl_robots``, read on a thread through a read-only connection of
this process's own: the journal is written by the run's writer, perhaps in another
process) while it is fresh (24 h), or from a new fetch. New entries wait in ``fresh``
until the next page's ``Found`` takes them to the journal's commit.

A host's ``Crawl-delay`` or ``Request-rate`` becomes its minimum spacing in the client's
pacing (``HttpClient.set_host_interval``); above the cap its pages are deferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from ..._crawl.robots import (
    RobotsEntry,
    RobotsPolicy,
    RobotsRules,
    Verdict,
    parse_robots,
    robots_entry,
    robots_key,
    robots_url,
)
from ..._errors import FetchError
from ..._http.hosts import host_key

if TYPE_CHECKING:
    from ..._http.client import HttpClient

#: The journal's table of robots.txt entries (made by the crawl's hook).
TABLE = "CREATE TABLE IF NOT EXISTS crawl_robots (key TEXT PRIMARY KEY, entry TEXT NOT NULL)"
# Policies kept in memory; one evicted is read back from the journal when needed.
_KEPT = 2048


class RobotsCache:
    """One service's view of robots.txt, host by host (see the module).

    Args:
        client: the crawl's open client (politeness applies to robots.txt too).
        rules: the crawl's robots.txt settings.
        journal: the run's journal, for entries kept by earlier runs (None: none).
        clock: wall-clock seconds (entries keep their times across runs).
    """

    def __init__(
        self,
        client: HttpClient,
        rules: RobotsRules,
        journal: str | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._rules = rules
        self._journal = journal
        self._clock = clock
        self._policies: OrderedDict[str, RobotsPolicy] = OrderedDict()
        self._busy: dict[str, asyncio.Future[RobotsPolicy]] = {}
        self._reader: sqlite3.Connection | None = None
        self._read_lock = asyncio.Lock()
        self.fresh: list[tuple[str, str]] = []  # entries fetched, for the journal
        self.sitemaps: list[str] = []  # sitemaps fresh entries name, to read
        self.fetched = 0  # robots.txt fetched by this service
        self.disallowed = 0

    async def verdict(self, url: str) -> tuple[Verdict, RobotsPolicy]:
        key = robots_key(url)
        policy = self._policies.get(key)
        if policy is None or not policy.entry.usable(self._clock(), self._rules):
            policy = await self._policy(key, url, policy)
        else:
            self._policies.move_to_end(key)
        path = _path(url)
        if policy.heavy:  # thousands of wildcard rules: milliseconds a check
            verdict = await asyncio.to_thread(policy.check, path)
        else:
            verdict = policy.check(path)
        if verdict is Verdict.DISALLOW:
            self.disallowed += 1
        return verdict, policy

    async def _policy(self, key: str, url: str, stale: RobotsPolicy | None) -> RobotsPolicy:
        busy = self._busy.get(key)
        if busy is not None:
            return await asyncio.shield(busy)
        future: asyncio.Future[RobotsPolicy] = asyncio.get_running_loop().create_future()
        self._busy[key] = future
        try:
            policy = await self._refresh(key, url, stale)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters get it, or nobody needs it
            raise
        finally:
            del self._busy[key]
        future.set_result(policy)
        return policy

    async def _refresh(self, key: str, url: str, stale: RobotsPolicy | None) -> RobotsPolicy:
        previous = stale.entry if stale is not None else await self._stored(key)
        if stale is None and previous is not None and previous.given_up(self._rules):
            # Given up on by an earlier run, whose pages were deferred to this one: this
            # run asks again, with retries of its own.
            previous = replace(previous, failures=0, retry_at=time.time() - 1)
        now = self._clock()
        fetched = previous is None or not previous.usable(now, self._rules)
        entry = await self._fetch(key, url, previous) if fetched else previous
        assert entry is not None
        parsed = await asyncio.to_thread(parse_robots, entry)  # ~1 s for a huge file
        policy = RobotsPolicy(entry, parsed, rules=self._rules)
        if fetched and entry.state == "parsed" and not entry.stale:
            self.sitemaps.extend(policy.sitemaps)  # read once, with the entry that names them
        delay = policy.delay
        if delay is not None and delay <= self._rules.max_delay:
            self._client.set_host_interval(host_key(url), delay)
        self._policies[key] = policy
        if len(self._policies) > _KEPT:
            self._policies.popitem(last=False)
        return policy

    async def _fetch(self, key: str, url: str, previous: RobotsEntry | None) -> RobotsEntry:
        self.fetched += 1
        target = robots_url(url)
        try:
            response = await self._client.fetch(target)
        except FetchError as exc:
            entry = robots_entry(
                now=self._clock(), error=exc.kind, previous=previous, rules=self._rules
            )
        else:
            entry = robots_entry(
                now=self._clock(),
                status=response.status,
                body=response.content(),
                redirects=len(response.redirects),
                previous=previous,
                rules=self._rules,
            )
        self.fresh.append((key, orjson.dumps(entry.to_json()).decode()))
        return entry

    async def _stored(self, key: str) -> RobotsEntry | None:
        """The entry an earlier run (or another loop) kept in the journal, if any."""
        if self._journal is None:
            return None
        async with self._read_lock:
            text = await asyncio.to_thread(self._read, key)
        if text is None:
            return None
        try:
            return RobotsEntry.from_json(orjson.loads(text))
        except (ValueError, KeyError, TypeError):
            return None  # not ours: fetched again

    def _read(self, key: str) -> str | None:
        try:
            if self._reader is None:
                uri = f"file:{self._journal}?mode=ro"
                self._reader = sqlite3.connect(uri, uri=True, check_same_thread=False)
            found = self._reader.execute(
                "SELECT entry FROM crawl_robots WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error:  # no journal yet, or no table: nothing kept
            return None
        return None if found is None else str(found[0])

    def take_fresh(self) -> tuple[tuple[str, str], ...]:
        """The entries fetched since the last call, for the journal's commit."""
        if not self.fresh:
            return ()
        fresh, self.fresh = tuple(self.fresh), []
        return fresh

    def close(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(sqlite3.Error):
                self._reader.close()
            self._reader = None


def _path(url: str) -> str:
    """The path and query of a URL, as robots.txt rules match them."""
    rest = url.partition("://")[2]
    slash = rest.find("/")
    if slash < 0:
        query = rest.find("?")
        return "/" + rest[query:] if query >= 0 else "/"
    return rest[slash:].partition("#")[0]
