"""``Page``: what a crawl gives its pipeline for each page, a ``Response`` with where the
crawl found it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..._http.response import Response


@dataclass(frozen=True, eq=False)
class Page(Response):
    """A fetched page of a crawl: a ``conveyor.http.Response`` and what the crawl knows.

    Attributes:
        depth: links followed from a seed to reach it (seeds and sitemap pages: 0).
        referrer: the URL of the page it was first found on (None for seeds and sitemap
            pages).
        lastmod: the ``<lastmod>`` a sitemap gave it, if one listed it.
        title: the page's ``<title>`` (HTML only), as ``conveyor fetch`` records it.
        description: its ``<meta name="description">``.
        links: how many ``<a href>`` it has (what ``conveyor fetch`` records).
        fetched_at: when the fetch ended (epoch seconds): the WARC record's date.
    """

    depth: int = 0
    referrer: str | None = None
    lastmod: str | None = None
    title: str | None = None
    description: str | None = None
    links: int = 0
    fetched_at: float = 0.0

    @classmethod
    def of(cls, response: Response, **crawl: Any) -> Page:
        """The page for a response, with the crawl's facts (no copy of the body)."""
        page = object.__new__(cls)
        page.__dict__.update(response.__dict__)
        page.__dict__.update(crawl)
        return page

    def __conveyor_record__(self) -> dict[str, Any]:
        record = super().__conveyor_record__()
        record.update(depth=self.depth, referrer=self.referrer, lastmod=self.lastmod or None)
        return record

    def __conveyor_warc__(self) -> dict[str, Any]:
        exchange = super().__conveyor_warc__()
        if self.fetched_at:
            when = datetime.fromtimestamp(self.fetched_at, UTC)
            exchange["date"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return exchange

    def __repr__(self) -> str:
        return f"<Page {self.status} {self.final_url} depth={self.depth} {len(self.body)} bytes>"
