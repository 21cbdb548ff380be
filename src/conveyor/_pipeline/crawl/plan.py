"""What a crawl is, as plain data: its settings (``CrawlPlan``), the source that stands for
its frontier (``CrawlSource``), and what travels between the frontier and the fetch.

    frontier row ──take──► (PageKey, CrawlItem) ──► the crawl's service (one loop, or the
    loop owning the host) ──► Carry(page, Found) ──► the journal's commit: Found's links
    offered, the row finished, in the transaction that records the page

Everything here pickles: loop processes and Ray shards get the plan and the items.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from ..._crawl.robots import RobotsRules
from ..._crawl.scope import Admission, Scope
from ..._crawl.urls import CanonicalRules, normalize, url_key
from ..._engine.ports import Feed
from ..._errors import UsageError

#: Virtual slots hosts hash into (the frontier keeps its own once made).
SLOTS = 4096


class CrawlItem(NamedTuple):
    """One frontier row on its way to the fetch."""

    url: str
    key: bytes  # the frontier's key (``url_key`` of the canonical form)
    depth: int  # links from a seed; a sitemap's nesting level
    host: str  # ``host_key``: what routes it to its loop, and the per-host limits
    referrer: str | None  # the URL of the page it was found on
    lastmod: str | None  # '' or a sitemap's <lastmod>, when a sitemap listed it
    kind: int  # frontier.Kind: a page, or a sitemap to read


def item_host(item: CrawlItem) -> str:
    """The route key of a crawl item: its host (each host has one loop)."""
    return item.host


class PageKey(str):
    """An item's key in the run: its URL (as failures and reports show it), with the
    frontier key the journal's commit finishes (``key``)."""

    key: bytes

    def __new__(cls, url: str, key: bytes) -> PageKey:
        made = super().__new__(cls, url)
        made.key = key
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (PageKey, (str(self), self.key))


# A link for the frontier, as the service sends it: (key, url, host).
SentLink = tuple[bytes, str, str]


class Found(NamedTuple):
    """What a crawl item brings back for the frontier (``ports.Carry.extra``).

    Attributes:
        verdict: ``fetched`` (a page), ``disallowed`` (robots.txt), ``held`` (robots.txt
            unreachable: asked again at ``until``), ``deferred`` (``note`` says why),
            ``sitemap`` (read), ``sitemap-failed``.
        links: the page's links the crawl follows, not sent before by this loop, all at
            ``depth``.
        seen: URLs fetched on the way (where redirects went), recorded as done.
        listed: pages a sitemap listed, ``(key, url, host, lastmod)``.
        sitemaps: sitemaps to read, ``(key, url, host, level, kind)``.
        robots: robots.txt entries fetched, ``(robots_key, entry as JSON text)``.
    """

    verdict: str
    links: tuple[SentLink, ...] = ()
    depth: int = 0  # the depth of ``links``: the page's, plus one
    seen: tuple[SentLink, ...] = ()
    listed: tuple[tuple[bytes, str, str, str], ...] = ()
    sitemaps: tuple[tuple[bytes, str, str, int, int], ...] = ()
    robots: tuple[tuple[str, str], ...] = ()
    until: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Owner:
    """A crawl shard's share of the hosts (``--backend ray``): the scope units whose
    ``route_index`` over ``shards`` is ``index``; links to others go to their inboxes."""

    index: int
    shards: int
    outbox: str  # the folder of the shards' inboxes (``_shards/crawl.py``)


@dataclass(frozen=True)
class CrawlPlan:
    """A crawl's settings, checked when it is built (``conveyor.crawl`` describes each).

    Picklable: each loop process (and each Ray shard) builds its own admission from it.
    """

    seeds: tuple[str, ...]
    scope: Scope
    scope_spec: str = "host"
    max_depth: int | None = None
    max_pages: int | None = None
    max_pages_per_host: int | None = None
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    traps: bool = True
    robots: bool = True
    robots_rules: RobotsRules = field(default_factory=RobotsRules)
    sitemaps: tuple[str, ...] = ()
    rules: CanonicalRules = field(default_factory=CanonicalRules)
    slots: int = SLOTS
    journal: str | None = None  # set when the run knows it: where robots.txt entries are
    owner: Owner | None = None

    @classmethod
    def build(
        cls,
        seeds: Any,
        *,
        scope: str = "host",
        depth: int | None = None,
        max_pages: int | None = None,
        max_pages_per_host: int | None = None,
        allow: Any = (),
        deny: Any = (),
        traps: bool = True,
        robots: bool = True,
        robots_rules: RobotsRules | None = None,
        sitemaps: Any = (),
        rules: CanonicalRules | None = None,
    ) -> CrawlPlan:
        seed_list = _urls(seeds, "seeds")
        if not seed_list:
            raise UsageError(
                "crawl: give at least one seed URL, e.g. crawl('https://example.com/')"
            )
        sitemap_list = _urls(sitemaps, "sitemaps")
        for name, value in (("max_pages", max_pages), ("max_pages_per_host", max_pages_per_host)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                flag = "--" + name.replace("_", "-")
                raise UsageError(
                    f"{name}={value!r} ({flag}): give a whole number >= 1, or leave it out"
                )
        if not isinstance(scope, str) or not scope:
            raise UsageError(f"scope={scope!r}: give host, domain, prefix or a regex")
        allow_t, deny_t = _patterns(allow, "allow"), _patterns(deny, "deny")
        plan = cls(
            seeds=tuple(seed_list),
            scope=Scope.build(scope, seed_list),
            scope_spec=scope,
            max_depth=depth,
            max_pages=max_pages,
            max_pages_per_host=max_pages_per_host,
            allow=allow_t,
            deny=deny_t,
            traps=bool(traps),
            robots=bool(robots),
            robots_rules=robots_rules or RobotsRules(),
            sitemaps=tuple(sitemap_list),
            rules=rules or CanonicalRules(),
        )
        plan.admission()  # checks depth and the regexes now, at the line that built it
        return plan

    def admission(self) -> Admission:
        """A fresh ``Admission`` (with its own counters) for one service."""
        return Admission(
            self.scope,
            max_depth=self.max_depth,
            allow=self.allow,
            deny=self.deny,
            traps=self.traps,
        )

    def with_journal(self, journal: str) -> CrawlPlan:
        return replace(self, journal=journal)

    def seed_keys(self) -> list[tuple[bytes, str]]:
        """``(key, url)`` of each seed."""
        out = []
        for seed in self.seeds:
            url, form = normalize(seed, self.rules)
            out.append((url_key(form), url))
        return out

    def describe(self) -> dict[str, Any]:
        """What decides which pages the crawl fetches, for the job's fingerprint. Not the
        page caps (``max_pages`` may grow between runs) nor how fast it runs."""
        seeds = hashlib.blake2b("\n".join(self.seeds).encode(), digest_size=16).hexdigest()
        return {
            "crawl": 1,
            "seeds": list(self.seeds[:10])
            + ([f"... {len(self.seeds)} in all"] if len(self.seeds) > 10 else []),
            "seeds_digest": seeds,
            "sitemaps": list(self.sitemaps),
            **self.rules.describe(),
            **self.admission().describe(),
            "max_pages_per_host": self.max_pages_per_host,
            "robots": self.robots,
            "user_agent": self.robots_rules.user_agent if self.robots else None,
            "slots": self.slots,
            "owner": None if self.owner is None else [self.owner.index, self.owner.shards],
        }


class CrawlSource(Feed):
    """The source of a crawl's pipeline: its frontier, which the run reads from its
    journal (``ports.Feed``), seeded from the plan."""

    def __init__(self, plan: CrawlPlan) -> None:
        self.plan = plan
        self.hook: Any = None  # the last run's frontier hook (``hook.CrawlHook``)

    def describe(self) -> Any:
        return self.plan.describe()

    def __repr__(self) -> str:
        return f"<crawl of {len(self.plan.seeds)} seed(s)>"


def _urls(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise UsageError(f"{name}={value!r}: give a URL or a list of URLs") from None
    out = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError(
                f"{name}: {item!r} is not a URL string; give e.g. 'https://example.com/'"
            )
        normalize(item)  # raises a UsageError naming the URL
        out.append(item)
    return out


def _patterns(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise UsageError(f"{name}={item!r}: give regular expressions as strings")
    return items
