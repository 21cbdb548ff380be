"""The crawl section of the summary and the report: pages per depth and per host, what
became of the links found, robots.txt and sitemaps.

Pure: the figures are plain data (``CrawlFigures``, filled by ``conveyor crawl`` from
the crawl's report and its frontier's tally), the pages per depth and host come from the
records the run wrote (``RunReport.add_record``), so they add up to the records written.
The link figures reconcile too::

    found = unfit + nofollow + repeated on a page + turned away + sent before + sent
    sent  = known to the frontier + new + over the per-host cap
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape

from rich import box
from rich.table import Table

TRAPS = ("url-too-long", "too-many-segments", "repeated-segment")


@dataclass(frozen=True)
class CrawlFigures:
    """What a crawl run did besides writing pages (the names as ``CrawlReport``'s)."""

    links_found: int = 0
    unfit: int = 0
    nofollow: int = 0
    repeated: int = 0
    repeated_raw: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    resent: int = 0
    resent_raw: int = 0
    sent: int = 0
    known: int = 0
    new: int = 0
    capped: int = 0
    redirects: int = 0
    robots_fetched: int = 0
    disallowed: int = 0
    robots_held: int = 0
    robots_deferred: int = 0
    sitemaps_read: int = 0
    sitemap_listed: int = 0
    sitemap_dropped: Mapping[str, int] = field(default_factory=dict)
    sitemap_pages: int = 0  # pages the sitemaps listed, in the frontier (every run)
    sitemap_reached: int = 0  # of them, fetched
    frontier: Mapping[str, int] = field(default_factory=dict)  # rows by state, at the end

    def link_rows(self) -> list[tuple[str, int]]:
        """``(what, links)``: what became of the links found, in an order that adds up."""
        rows = [
            ("links found", self.links_found),
            ("  not http(s)", self.unfit),
            ("  nofollow", self.nofollow),
            (f"  repeated on their page ({self.repeated_raw:,} spelt alike)", self.repeated),
        ]
        for reason, n in sorted(self.rejected.items(), key=lambda item: -item[1]):
            label = f"trap: {reason}" if reason in TRAPS else reason
            rows.append((f"  turned away: {label}", n))
        rows += [
            (f"  sent before ({self.resent_raw:,} spelt alike)", self.resent),
            ("  sent to the frontier", self.sent),
            ("    known already", self.known),
            ("    new", self.new),
            ("    over the per-host cap", self.capped),
        ]
        return rows

    def other_rows(self) -> list[tuple[str, int]]:
        rows = [("redirect targets recorded", self.redirects)] if self.redirects else []
        rows += [
            ("robots.txt fetched", self.robots_fetched),
            ("pages robots.txt disallowed", self.disallowed),
            ("pages put aside (robots.txt unreachable)", self.robots_held),
            ("pages deferred (robots.txt unreachable)", self.robots_deferred),
        ]
        if self.sitemaps_read or self.sitemap_pages:
            rows += [
                ("sitemaps read", self.sitemaps_read),
                ("URLs they listed", self.sitemap_listed),
                *((f"  dropped: {r}", n) for r, n in sorted(self.sitemap_dropped.items())),
                ("pages sitemaps listed (all runs)", self.sitemap_pages),
                ("  of them fetched", self.sitemap_reached),
            ]
        left = {k: n for k, n in self.frontier.items() if n and k not in ("done", "leased")}
        rows += [(f"frontier rows {state}", n) for state, n in sorted(left.items())]
        return rows


def crawl_tables(
    figures: CrawlFigures, depths: Mapping[int, int], hosts: list[tuple[str, int]]
) -> list[Table]:
    """The summary's crawl tables: pages per depth and host, links, robots and sitemaps."""
    pages = Table(title="Crawl: pages", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    pages.add_column("depth", justify="right")
    pages.add_column("pages", justify="right")
    for depth, n in sorted(depths.items()):
        pages.add_row(str(depth), f"{n:,}")
    by_host = Table(
        title="Crawl: pages per host", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    by_host.add_column("host")
    by_host.add_column("pages", justify="right")
    for host, n in hosts:
        by_host.add_row(host, f"{n:,}")
    links = Table(title="Crawl: links", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    links.add_column("")
    links.add_column("links", justify="right")
    for label, n in figures.link_rows():
        links.add_row(label, f"{n:,}")
    other = Table(title="Crawl: robots.txt and sitemaps", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)  # fmt: skip
    other.add_column("")
    other.add_column("count", justify="right")
    for label, n in figures.other_rows():
        other.add_row(label, f"{n:,}")
    return [pages, by_host, links, other]


def crawl_html(
    figures: CrawlFigures, depths: Mapping[int, int], hosts: list[tuple[str, int]]
) -> str:
    """The report's crawl section."""

    def table(headers: tuple[str, str], rows: list[tuple[str, str]]) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "".join(
            f"<tr><td>{escape(a)}</td><td class='num'>{escape(b)}</td></tr>" for a, b in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    return "\n".join(
        [
            "<h2>Crawl</h2>",
            table(("depth", "pages"), [(str(d), f"{n:,}") for d, n in sorted(depths.items())]),
            table(("host", "pages"), [(h, f"{n:,}") for h, n in hosts]),
            table(
                ("links", ""), [(a.replace("  ", "· "), f"{n:,}") for a, n in figures.link_rows()]
            ),
            table(
                ("robots.txt and sitemaps", ""), [(a, f"{n:,}") for a, n in figures.other_rows()]
            ),
        ]
    )
