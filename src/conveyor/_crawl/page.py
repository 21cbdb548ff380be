"""What conveyor reads from a page's HTML, in one scan: its title, description and link
count for ``conveyor fetch``'s record, and, for a crawl, the links to follow.

A full HTML parse (lexbor, through selectolax) took ~60-100 µs for a 12 KB page: more than
the whole fetch of that page costs the client. These three facts need no tree, so they are
found with a few scans of the lower-cased bytes (the cost is measured below), the way a
parser's tokenizer would see them:

- the title is the text of the first ``<title>`` element, entities decoded, ends stripped;
- the description is the ``content`` of the first ``<meta name="description">`` (any case,
  any attribute order or quoting);
- links are ``<a>`` tags with an ``href`` attribute (an attribute whose name ends in
  ``href``, such as ``data-href``, counts too: the scan does not split attributes);
- comments and raw-text elements (``<script>``, ``<style>``, ``<textarea>``,
  ``<template>`` ...) are not markup: a title or a link inside one does not count.

Only the title and description are decoded, with the page's declared encoding (or UTF-8,
or, for an undeclared page that is not UTF-8, what detection guesses).

With ``links=True`` (a crawl) the same scan also reads, outside comments and raw-text
elements:

- the ``href`` of each ``<a>`` (entities decoded), skipping ``rel=nofollow`` (counted);
- the ``href`` of each ``<link>`` whose ``rel`` has ``next`` or ``alternate`` (not an
  alternate stylesheet);
- the first ``<base href>``, which links resolve against;
- ``<meta name=robots>``: ``nofollow`` (no link followed) and ``noindex`` (reported),
  ``none`` meaning both.

Only ``href`` is picked out of an ``<a>`` tag whose first attribute it is and that has no
``rel``; any other tag's attributes are split properly. As in the count, a ``>`` inside a
quoted attribute value ends the tag early (a parser reads on): such a tag's link is lost.
The cost, the one figure the docs quote (``benchmarks/crawl_core.py``, rough, 2 shared
cores): a 10 KB page with 50 links took ~26 µs for the record's scan and ~62 µs with its
links, where lexbor took ~61 µs to parse it and list its ``a[href]``, ~84 µs for the same
facts. A link's bytes are decoded with
the page's encoding; the URL encodes them as UTF-8 (browsers use the page's encoding for
the query of a non-UTF-8 page: a rare difference).
"""

from __future__ import annotations

import html
import itertools
import re
from typing import NamedTuple

from .._http.charset import declared_encoding, decode

_TITLE = re.compile(rb"<title(?:[\s/][^>]*)?>(.*?)(?:</title|\Z)", re.S)
_META = re.compile(rb"<meta[\s/][^>]*>")
_LINK = re.compile(rb"<a\s[^>]*?href")
# Links and the starts of comments and raw-text elements, in one pass over the page.
_LINK_OR_RAW = re.compile(
    rb"<(?:a\s[^>]*?href|!--|script|style|textarea|xmp|iframe|noembed|noframes|template)"
)
_RAW = re.compile(
    rb"<!--.*?(?:-->|\Z)"
    rb"|<(script|style|textarea|xmp|iframe|noembed|noframes|template)[\s/>].*?(?:</\1\s*>|\Z)",
    re.S,
)
_ATTRIBUTE = re.compile(rb"""([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_ASCII_UNSAFE = ("utf-16", "utf_16", "utf-32", "utf_32")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


# The crawl's scan, run over the original bytes between raw-text spans (so an href keeps
# its case), read with findall (tuples, no match objects: the per-link cost is most of a
# crawl scan). Either an <a> tag with href first (its value in group 1, 2 or 3 by quoting,
# the rest of the tag in 4: the common shape, read with no attribute split), or any other
# <a>, <link> or <base> tag (its name in 5, its attributes in 6).
_CRAWL_TAG = re.compile(
    rb"""<(?:a\s+href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))([^>]*)(?:>|\Z)"""
    rb"|(a|link|base)(\s[^>]*)(?:>|\Z))",
    re.IGNORECASE,
)
_RAW_START = re.compile(rb"<(?:!--|script|style|textarea|xmp|iframe|noembed|noframes|template)")


#: A link as written on the page, ``(href, kind)``; kind is ``a``, ``next`` or
#: ``alternate``. A plain tuple: a page makes dozens, and a named tuple costs 5x more.
Href = tuple[str, str]


class PageScan(NamedTuple):
    """What one scan of a page found.

    ``links`` counts ``<a>`` tags with an ``href`` (the page record's count); ``hrefs``
    (None unless asked for) are the links to follow, in page order.
    """

    title: str | None
    description: str | None
    links: int
    hrefs: list[Href] | None = None
    base: str | None = None
    nofollow: bool = False
    noindex: bool = False
    nofollow_links: int = 0


def summarize_html(body: bytes, content_type: str | None) -> tuple[str | None, str | None, int]:
    """``(title, description, links)`` of an HTML page."""
    return scan_page(body, content_type)[:3]


def scan_page(body: bytes, content_type: str | None, *, links: bool = False) -> PageScan:
    """Title, description and link count of an HTML page; with ``links``, also the links
    to follow, its ``<base href>`` and its robots meta tag."""
    if body[:2] in _UTF16_BOMS or (content_type and "16" in content_type):
        codec = declared_encoding(body, content_type)  # WHATWG labels, as a browser reads them
        if codec is not None and codec.startswith(_ASCII_UNSAFE):
            # The scans need ASCII-compatible bytes: UTF-16 pages are decoded first.
            text, _ = decode(body, content_type)
            body = text.encode("utf-8", "surrogatepass")
            content_type = "text/html; charset=utf-8"
    low = body.lower()  # one copy, so every scan below is a case-sensitive literal search
    if links:
        return _crawl_scan(body, low, content_type)
    tokens = _LINK_OR_RAW.findall(low)
    count = sum(1 for token in tokens if token[1] == 0x61)  # "<a"
    raw = [match.span() for match in _RAW.finditer(low)] if count != len(tokens) else []
    title, description, _ = _head(body, low, raw, content_type, robots=False)
    for start, end in raw:
        count -= len(_LINK.findall(low, start, end))
    return PageScan(title, description, count)


def _head(
    body: bytes, low: bytes, raw: list[tuple[int, int]], content_type: str | None, *, robots: bool
) -> tuple[str | None, str | None, bytes | None]:
    """Title, description and (when asked) the robots meta tag's content, lower-cased."""
    title = description = None
    for match in _TITLE.finditer(low):
        if not _inside(raw, match.start()):
            title = _text(body[match.start(1) : match.end(1)], body, content_type)
            break
    # <meta> belongs in the head: look there first (a quarter of the scan), then, for the
    # odd page that puts its description in the body, in the rest.
    head_end = low.find(b"</head")
    head_end = len(low) if head_end < 0 else head_end
    metas = _META.finditer(low, 0, head_end)
    found_description = False
    directives: bytes | None = None
    for match in itertools.chain(metas, _META.finditer(low, head_end) if head_end else ()):
        tag = match.group()
        wanted = b"description" in tag and not found_description
        wanted_robots = robots and directives is None and b"robots" in tag
        if (wanted or wanted_robots) and not _inside(raw, match.start()):
            attributes = _attributes(body[match.start() + 5 : match.end() - 1])
            name = attributes.get(b"name", b"").lower()
            if wanted and name == b"description":
                content = attributes.get(b"content")
                description = None if content is None else _text(content, body, content_type)
                found_description = True
            elif wanted_robots and name == b"robots":
                directives = attributes.get(b"content", b"").lower()
            if found_description and (directives is not None or not robots):
                break
    return title, description, directives


def _crawl_scan(body: bytes, low: bytes, content_type: str | None) -> PageScan:
    raw = [match.span() for match in _RAW.finditer(low)] if _RAW_START.search(low) else []
    title, description, directives = _head(body, low, raw, content_type, robots=True)
    nofollow = noindex = False
    if directives:
        tokens = {token.strip() for token in directives.split(b",")}
        nofollow = b"nofollow" in tokens or b"none" in tokens
        noindex = b"noindex" in tokens or b"none" in tokens
    count = skipped = 0
    hrefs: list[Href] = []
    base: str | None = None
    codec: list[str | None] = []  # the page's encoding, looked up once if a link needs it
    add = hrefs.append
    position = 0
    for start, end in [*raw, (len(body), len(body))]:
        for double, single, bare, rest, name, attributes in _CRAWL_TAG.findall(
            body, position, start
        ):
            if not name:  # <a href=...>, the common shape
                count += 1
                if b"rel" in rest.lower():
                    found, nofollowed = _anchor(b" href=" + (double or single or bare) + rest)
                    if nofollowed:
                        skipped += 1
                        continue
                value = double or single or bare
                if value.isascii() and b"&" not in value:
                    add((value.decode("ascii"), "a"))
                else:
                    add((_link_text(value, body, content_type, codec), "a"))
                continue
            name = name.lower()
            if name == b"a":
                if b"href" not in attributes.lower():
                    continue
                count += 1
                found, nofollowed = _anchor(attributes)
                if found is None:
                    continue  # data-href and the like: counted, as the record counts them
                if nofollowed:
                    skipped += 1
                    continue
                add((_link_text(found, body, content_type, codec), "a"))
            elif name == b"link":
                pairs = _attributes(attributes)
                found = pairs.get(b"href")
                rels = set(pairs.get(b"rel", b"").decode("ascii", "replace").lower().split())
                if found is None or "stylesheet" in rels:
                    continue
                for rel in ("next", "alternate"):
                    if rel in rels:
                        add((_link_text(found, body, content_type, codec), rel))
                        break
            elif base is None:
                found = _attributes(attributes).get(b"href")
                if found is not None:
                    base = _link_text(found, body, content_type, codec)
        position = end
    if nofollow:
        skipped += len(hrefs)
        hrefs = []
    return PageScan(title, description, count, hrefs, base, nofollow, noindex, skipped)


def _anchor(attributes: bytes) -> tuple[bytes | None, bool]:
    """An <a> tag's href (None when it has none) and whether its rel has nofollow."""
    pairs = _attributes(attributes)
    return pairs.get(b"href"), b"nofollow" in pairs.get(b"rel", b"").lower().split()


def _link_text(raw: bytes, body: bytes, content_type: str | None, codec: list[str | None]) -> str:
    """An attribute value as text: ASCII as is, else the page's encoding (or UTF-8)."""
    if raw.isascii():
        text = raw.decode("ascii")
    else:
        if not codec:
            codec.append(declared_encoding(body, content_type))
        text = raw.decode(codec[0] or "utf-8", "replace")
    return html.unescape(text) if "&" in text else text


def _inside(spans: list[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in spans)


def _attributes(tag: bytes) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for match in _ATTRIBUTE.finditer(tag):
        value = match.group(2)
        if value is None:
            value = match.group(3)
        if value is None:
            value = match.group(4) or b""
        found.setdefault(match.group(1).lower(), value)  # the first one wins, as in HTML
    return found


def _text(raw: bytes, body: bytes, content_type: str | None) -> str | None:
    """A snippet as text: ASCII reads the same in every page encoding (the common case, no
    encoding looked up); else the page's declared encoding, UTF-8, or detection's guess."""
    if raw.isascii():
        text = raw.decode("ascii")
    elif (codec := declared_encoding(body, content_type)) is not None:
        text = raw.decode(codec, "replace")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # undeclared and not UTF-8: the whole page's best guess
            text = raw.decode(decode(body, content_type)[1], "replace")
    if "&" in text:
        text = html.unescape(text)
    return text.strip() or None
