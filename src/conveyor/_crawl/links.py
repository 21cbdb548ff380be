"""The links of one fetched page, ready for the frontier: resolved, keyed, de-duplicated.

``page_links(page_url, body, content_type)`` runs the page scan (``page.scan_page``: the
same single pass that makes ``conveyor fetch``'s record) and turns each ``href`` into the
URL to fetch and its key (``urls.locate``), against the page's ``<base href>`` when it
has one. A link repeated on the page (menus, "top" links) is kept once; links that are not
http(s) are dropped and counted.
"""

from __future__ import annotations

from typing import NamedTuple

from .page import PageScan, scan_page
from .urls import DEFAULT_RULES, CanonicalRules, base_url, locate, resolve


class FoundLink(NamedTuple):
    """A link to follow: the URL to fetch, its frontier key, and how it was found
    (``a``, ``next``, ``alternate``)."""

    url: str
    key: bytes
    kind: str


class PageLinks(NamedTuple):
    """A page's scan and the links it gives the frontier."""

    scan: PageScan
    links: list[FoundLink]
    unfit: int  # hrefs that are no http(s) URL: mailto:, javascript:, a bad host ...
    repeated: int  # hrefs to a URL the page already linked
    # of those, spelt the same (the rest are other spellings of it, told apart by key)
    repeated_raw: int = 0


def page_links(
    page_url: str, body: bytes, content_type: str | None, rules: CanonicalRules = DEFAULT_RULES
) -> PageLinks:
    """Scan an HTML page and resolve its links (see the module)."""
    scan = scan_page(body, content_type, links=True)
    return PageLinks(scan, *resolve_links(page_url, scan, rules))


def resolve_links(
    page_url: str, scan: PageScan, rules: CanonicalRules = DEFAULT_RULES
) -> tuple[list[FoundLink], int, int, int]:
    """``(links, unfit, repeated, repeated_raw)`` of a scan made with ``links=True``."""
    base = base_url(page_url)
    if base is None or not scan.hrefs:
        return [], len(scan.hrefs or ()), 0, 0
    if scan.base:
        declared = resolve(scan.base, base)
        base = base_url(declared) if declared is not None else base
        assert base is not None
    found: list[FoundLink] = []
    seen: set[bytes] = set()
    spelt: set[str] = set()
    unfit = repeated = raw = 0
    for href, kind in scan.hrefs:
        located = locate(href, base, rules)
        if located is None:
            unfit += 1
        elif located[1] in seen:
            repeated += 1
            raw += located[0] in spelt
        else:
            seen.add(located[1])
            spelt.add(located[0])
            found.append(FoundLink(located[0], located[1], kind))
    return found, unfit, repeated, raw
