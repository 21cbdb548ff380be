"""What ``conveyor fetch`` records about each page: the response summary plus what the HTML
says (title, description, number of links) and a sha256 of the body.

HTML is parsed with selectolax (the lexbor engine: a C parser, ~20x faster than
BeautifulSoup). Small pages are parsed right on the event loop, where a thread hand-off
would cost more than the parse; big ones go to a thread so the loop never stalls.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from .._engine.gil import in_thread
from ..http import Response

INLINE_LIMIT = 256 * 1024  # parse bodies up to this size on the loop


def page_record(response: Response) -> dict[str, Any]:
    """The output record for one response (the body itself is kept under ``"body"``)."""
    record = response.__conveyor_record__()
    body = response.content()  # read back from the file with --save-bodies
    record["sha256"] = hashlib.sha256(body).hexdigest() if body else None
    record.update(title=None, description=None, links=0)
    if body and "html" in (response.content_type or ""):
        record.update(parse_html(response.text))
    record["error_kind"] = None
    record["error"] = None
    record["body"] = body
    return record


def parse_html(text: str) -> dict[str, Any]:
    tree = LexborHTMLParser(text)
    title_node = tree.css_first("title")
    description_node = tree.css_first('meta[name="description"]')
    title = title_node.text(strip=True) if title_node is not None else None
    description = (
        description_node.attributes.get("content") if description_node is not None else None
    )
    return {
        "title": title or None,
        "description": description or None,
        "links": len(tree.css("a[href]")),
    }


async def analyze(response: Response) -> dict[str, Any]:
    if response.path is None and len(response.body) <= INLINE_LIMIT:
        return page_record(response)
    loop = asyncio.get_running_loop()
    return await in_thread(loop.run_in_executor(None, page_record, response))


def without_body(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("body", None)
    return record
