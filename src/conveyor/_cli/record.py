"""The one row ``conveyor fetch`` writes per URL, from a response or from a failure.

Every row has the fields of ``FIELDS``, in that order (CSV and Parquet columns follow it),
then whatever the user's ``--process`` stage added; ``conveyor crawl``'s rows have
``CRAWL_FIELDS`` (``page_row``, ``crawl_failure_row``). A response's row is built once, right
after its fetch, by ``response_row``; a failure's by ``failure_row``. With
``--save-bodies`` a response's row also has ``path``, the file its body went to. Nothing
else shapes a row. ``record_host`` reads a row's host back, for the report's tallies.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .._engine.outcomes import Failure
from .._http.hosts import host_key
from ..http import Response
from .extract import summarize_html

if TYPE_CHECKING:
    from .._pipeline.crawl.page import Page

FIELDS = ("url", "final_url", "status", "content_type", "bytes", "elapsed_ms", "title",
          "description", "links", "sha256", "attempts", "error_kind", "error")  # fmt: skip
#: ``conveyor crawl``'s rows: ``FIELDS``, then where the crawl found the page.
CRAWL_FIELDS = (*FIELDS, "depth", "referrer", "lastmod")


def response_row(response: Response) -> dict[str, Any]:
    """The row for a fetched page (any status): what the response says, what its HTML says
    (title, description, links) and the body's sha256."""
    body = response.content()  # read back from the file with --save-bodies
    title = description = None
    links = 0
    if body and "html" in response.content_type:
        title, description, links = summarize_html(body, response.headers.get("Content-Type"))
    return _row(response, body, title, description, links)


def page_row(page: Page) -> dict[str, Any]:
    """The row ``conveyor crawl`` writes for a page: ``response_row``'s fields (the page
    was scanned once, by the crawl: its title, description and links come with it), then
    ``depth``, ``referrer`` and the sitemap's ``lastmod`` (``CRAWL_FIELDS``)."""
    row = _row(page, page.content(), page.title, page.description, page.links)
    row["depth"] = page.depth
    row["referrer"] = page.referrer
    row["lastmod"] = page.lastmod
    return row


def page_row_with_body(page: Page) -> dict[str, Any]:
    """``page_row`` plus the body, for the user's ``--process`` stage."""
    row = page_row(page)
    row["body"] = page.content()
    return row


def crawl_failure_row(failure: Failure) -> dict[str, Any]:
    """``failure_row`` with the crawl's fields, read from the item that failed."""
    row = failure_row(failure)
    if failure.stage == "crawl":  # the crawl's own fetch: its message says it all
        row["error"] = failure.message
    item = failure.item
    row["depth"] = getattr(item, "depth", None)
    row["referrer"] = getattr(item, "referrer", None)
    row["lastmod"] = getattr(item, "lastmod", None) or None
    url = getattr(item, "url", None)
    if isinstance(url, str):
        row["url"] = url
    return row


def _row(
    response: Response, body: bytes, title: str | None, description: str | None, links: int
) -> dict[str, Any]:
    content_type = response.content_type
    row = {
        "url": response.url,
        "final_url": response.final_url,
        "status": response.status,
        "content_type": content_type,
        "bytes": len(body) if response.path is None else response.raw_bytes,
        "elapsed_ms": round(response.elapsed * 1000, 3),
        "title": title,
        "description": description,
        "links": links,
        "sha256": hashlib.sha256(body).hexdigest() if body else None,
        "attempts": response.attempts,
        "error_kind": None,
        "error": None,
    }
    if response.path is not None:
        row["path"] = str(response.path)
    return row


def response_row_with_body(response: Response) -> dict[str, Any]:
    """``response_row`` plus the body under ``"body"``, for the user's ``--process`` stage
    (which takes it out again before the row is written)."""
    row = response_row(response)
    row["body"] = response.content()
    return row


def failure_row(failure: Failure) -> dict[str, Any]:
    """The row for a URL that ended with no response (or whose later stage failed)."""
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row["url"] = str(failure.key)
    row["attempts"] = failure.attempts
    row["error_kind"] = failure.kind
    is_fetch = failure.stage == "fetch"
    row["error"] = failure.message if is_fetch else f"{failure.stage}: {failure.message}"
    return row


def record_host(row: dict[str, Any]) -> str | None:
    """The row's host as everything else names it (``host_key``: host:port), for the
    report's host table; None for a line that is no URL."""
    url = row["url"]
    text = url if type(url) is str else str(url)
    return host_key(text) if "://" in text else None
