"""What ``conveyor fetch`` reads from a page's HTML: its title, description and link count.

A full HTML parse (lexbor, through selectolax) took ~60-100 µs for a 12 KB page: more than
the whole fetch of that page costs the client. These three facts need no tree, so they are
found with a few scans of the lower-cased bytes, ~20 µs a page, the way a parser's
tokenizer would see them:

- the title is the text of the first ``<title>`` element, entities decoded, ends stripped;
- the description is the ``content`` of the first ``<meta name="description">`` (any case,
  any attribute order or quoting);
- links are ``<a>`` tags with an ``href`` attribute (an attribute whose name ends in
  ``href``, such as ``data-href``, counts too: the scan does not split attributes);
- comments and raw-text elements (``<script>``, ``<style>``, ``<textarea>``,
  ``<template>`` ...) are not markup: a title or a link inside one does not count.

Only the title and description are decoded, with the page's declared encoding (or UTF-8,
or, for an undeclared page that is not UTF-8, what detection guesses).
"""

from __future__ import annotations

import html
import itertools
import re

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


def summarize_html(body: bytes, content_type: str | None) -> tuple[str | None, str | None, int]:
    """``(title, description, links)`` of an HTML page."""
    if body[:2] in _UTF16_BOMS or (content_type and "16" in content_type):
        codec = declared_encoding(body, content_type)  # WHATWG labels, as a browser reads them
        if codec is not None and codec.startswith(_ASCII_UNSAFE):
            # The scans need ASCII-compatible bytes: UTF-16 pages are decoded first.
            text, _ = decode(body, content_type)
            body = text.encode("utf-8", "surrogatepass")
            content_type = "text/html; charset=utf-8"
    low = body.lower()  # one copy, so every scan below is a case-sensitive literal search
    tokens = _LINK_OR_RAW.findall(low)
    links = sum(1 for token in tokens if token[1] == 0x61)  # "<a"
    raw = [match.span() for match in _RAW.finditer(low)] if links != len(tokens) else []
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
    for match in itertools.chain(metas, _META.finditer(low, head_end) if head_end else ()):
        if b"description" in match.group() and not _inside(raw, match.start()):
            attributes = _attributes(body[match.start() + 5 : match.end() - 1])
            if attributes.get(b"name", b"").lower() == b"description":
                content = attributes.get(b"content")
                description = None if content is None else _text(content, body, content_type)
                break
    for start, end in raw:
        links -= len(_LINK.findall(low, start, end))
    return title, description, links


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
