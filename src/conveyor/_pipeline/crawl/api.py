"""``conveyor.crawl``: a pipeline whose source is a crawl's frontier, and what a run of it
needs (a journal, always: the frontier lives there).

    crawl(seeds, ...) ──► Pipeline(CrawlSource(plan), stages=(the crawl's fetch,))
                          .map(...) ... your stages, as after .fetch()
    .run(sink, journal=...) ──► prepare_crawl: the plan learns its journal, the journal
                          gets the frontier's hook (``hook.CrawlHook``)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..._crawl.robots import RobotsRules
from ..._crawl.urls import CanonicalRules
from ..._engine.spec import StageSpec, make_stage
from ..._errors import UsageError
from ..fetch import with_waiting_room
from .hook import CrawlHook
from .plan import CrawlPlan, CrawlSource, item_host
from .service import CrawlFactory

if TYPE_CHECKING:
    from ..pipeline import Pipeline


async def _crawl(item: Any) -> Any:  # pragma: no cover - replaced per run by the service
    raise RuntimeError("the crawl stage runs only inside a run")


def crawl(
    seeds: str | Any,
    *,
    scope: str = "host",
    depth: int | None = None,
    max_pages: int | None = None,
    max_pages_per_host: int | None = None,
    allow: str | Any = (),
    deny: str | Any = (),
    robots: bool = True,
    sitemaps: str | Any = (),
    traps: bool = True,
    sort_query: bool = False,
    strip_tracking: bool = False,
    robots_retry: float = 300.0,
    name: str = "crawl",
    **fetch: Any,
) -> Pipeline:
    """A pipeline that crawls from ``seeds``: each page it reaches is a ``conveyor.Page``
    (a ``conveyor.http.Response`` with ``depth``, ``referrer``, ``lastmod``, ``title`` ...)
    for the stages you add, as after ``.fetch()``.

    Every page is fetched once, even across runs: the frontier (every URL found, by its
    canonical key) lives in the run's journal, and a page is marked done, its output made
    durable and its links added in one transaction, so a killed crawl run again resumes
    where it stopped, repeating nothing (``docs/crawl.md``). Without ``journal=`` a run
    keeps the frontier in a temporary journal, removed at its end.

    Args:
        seeds: a URL or URLs to start from (depth 0).
        scope: ``"host"`` (the seeds' hosts, any scheme or port), ``"domain"`` (their
            registrable domains), ``"prefix"`` (their host and directory) or a regex
            searched in each URL.
        depth: the deepest page, in links from a seed (0: the seeds only); None: no limit.
        max_pages: pages fetched at most, over every run of the job.
        max_pages_per_host: pages admitted per host at most.
        allow: regexes of which a link must match one (searched in the URL).
        deny: regexes of which a link may match none.
        robots: obey robots.txt (RFC 9309): fetched once per scheme, host and port,
            kept in the journal for 24 h; ``Crawl-delay`` and ``Request-rate`` space the
            host's requests (above 30 s its pages are deferred).
        sitemaps: sitemap URLs to read (XML, index, text or gzip); their pages are
            depth 0. Sitemaps a robots.txt names are read too.
        traps: turn away trap-shaped URLs (over 2,083 characters, over 20 path segments,
            a segment repeated more than twice).
        sort_query: one page whatever the order of its query's parameters.
        strip_tracking: one page whatever its ``utm_*``, ``gclid``, ``fbclid`` ... are.
        robots_retry: seconds before an unreachable robots.txt (5xx, 429, no answer) is
            asked again, doubled each time; after 3 retries the host's pages are deferred
            (left for the next run). Its pages wait meanwhile: never fetched unasked.
        name: the stage's name in statistics and failures.
        **fetch: the options of ``Pipeline.fetch`` (``concurrency``, ``per_host``,
            ``rate``, ``timeout``, ``user_agent`` ...); robots.txt is read for the user
            agent's product token (``MyBot`` of ``MyBot/1.0``).
    """
    from ..._http.config import FetchConfig
    from ..pipeline import Pipeline

    config = FetchConfig.coerce(None, fetch)  # a misspelt option gets a 'did you mean'
    if not isinstance(robots_retry, int | float) or robots_retry <= 0:
        raise UsageError(f"robots_retry={robots_retry!r}: give a positive number of seconds")
    plan = CrawlPlan.build(
        seeds,
        scope=scope,
        depth=depth,
        max_pages=max_pages,
        max_pages_per_host=max_pages_per_host,
        allow=allow,
        deny=deny,
        traps=traps,
        robots=robots,
        robots_rules=RobotsRules(user_agent=product_token(config.agent), retry_after=robots_retry),
        sitemaps=sitemaps,
        rules=CanonicalRules(sort_query=bool(sort_query), strip_tracking=bool(strip_tracking)),
    )
    stage = make_stage(
        "map",
        _crawl,
        on="loop",
        concurrency=config.concurrency,
        name=name or "crawl",
        factory=CrawlFactory(config, plan),
    )
    # As a fetch: ``concurrency`` requests out, and a waiting room for pages whose host is
    # held back (``_pipeline/fetch.py``), so they do not take the other hosts' slots.
    crawling = with_waiting_room(stage, config.concurrency, item_host)
    return Pipeline(CrawlSource(plan), _stages=(crawling,))


def product_token(agent: str) -> str:
    """The product token robots.txt groups are matched against: ``MyBot`` of
    ``MyBot/1.0 (+https://example.com/bot)``."""
    token = agent.split("/", 1)[0].split()[0] if agent.strip() else ""
    return token or "conveyor"


@dataclass(frozen=True)
class CrawlRun:
    """What one run of a crawl needs: the stages with the plan that knows its journal,
    the journal's path and the frontier's hook."""

    stages: tuple[StageSpec, ...]
    journal: str
    hook: CrawlHook


def crawl_stages(stages: tuple[StageSpec, ...], plan: CrawlPlan) -> tuple[StageSpec, ...]:
    """The stages with the crawl's service told ``plan`` (its journal, its shard)."""
    first = stages[0]
    factory = first.factory
    if not isinstance(factory, CrawlFactory):
        raise UsageError("a crawl's first stage is its own fetch: build it with conveyor.crawl()")
    return (dataclasses.replace(first, factory=factory.with_plan(plan)), *stages[1:])


def start_crawl(
    source: CrawlSource, stages: tuple[StageSpec, ...], journal: str | os.PathLike[str] | None
) -> tuple[CrawlRun, Callable[[], None]]:
    """The run's journal (a temporary one when none is given) and the stages and hook that
    know it; and what to call once the run is over (it removes a temporary journal)."""
    temporary = None
    if journal is None:
        temporary = tempfile.mkdtemp(prefix="conveyor-crawl-")
        journal = os.path.join(temporary, "crawl.journal")
    path = os.path.abspath(os.fspath(journal))
    plan = source.plan.with_journal(path)
    hook = CrawlHook(plan)
    source.hook = hook

    def done() -> None:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    return CrawlRun(crawl_stages(stages, plan), path, hook), done


@contextlib.contextmanager
def prepare_crawl(
    source: CrawlSource, stages: tuple[StageSpec, ...], journal: str | os.PathLike[str] | None
) -> Iterator[CrawlRun]:
    """``start_crawl`` for the length of a ``with`` block."""
    run, done = start_crawl(source, stages, journal)
    try:
        yield run
    finally:
        done()
