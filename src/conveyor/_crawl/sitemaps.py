"""Sitemaps, read as they stream in: XML sitemaps, sitemap indexes, plain-text lists, gzip.

``SitemapReader(url, ...)`` is fed the body in pieces as the client reads it
(``feed(chunk)`` returns the entries completed so far) and ``close()`` ends it. It uses
the standard library's expat parser, as Crawlee does: lxml's ``iterparse`` would be a new
binary dependency for no gain here (expat is a push parser, which is exactly the
"fed bytes in pieces" shape, and never builds a tree).

- gzip is recognised by its magic bytes (not the name or the content type, which servers
  get wrong both ways) and decompressed incrementally; at most 50 MiB of decompressed
  data are read a file (sitemaps.org's limit), the rest is ignored and the reader says so;
- ``<sitemapindex>`` entries come back as ``kind="sitemap"`` at ``level + 1``; one deeper
  than ``max_level`` (10) is dropped, so an index that lists itself ends;
- ``<url>`` entries come back as ``kind="page"`` with their ``<lastmod>`` text;
- a body that does not start with ``<`` is a text sitemap: one URL a line;
- each URL is resolved and encoded like a link (``urls.resolve``); unless the sitemap was
  named by robots.txt (``from_robots``), only URLs under the sitemap's own host and
  directory are kept (sitemaps.org); the caller's ``keep`` (the crawl's scope) decides
  the rest. Dropped entries are counted by reason;
- entity declarations are refused (no "billion laughs"); expat fetches no external
  entities. A malformed file ends the reading with the entries found until then.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple
from xml.parsers import expat

from .scope import directory, location
from .urls import base_url, resolve

#: sitemaps.org: at most 50 MB (we read 50 MiB) uncompressed a file.
MAX_BYTES = 50 * 1024 * 1024
# Control bytes no text sitemap holds: a body with them is binary (say zlib, not gzip).
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f]")
#: Sitemap indexes nested deeper than this are not followed (as Crawlee).
MAX_LEVEL = 10


class SitemapEntry(NamedTuple):
    """One URL a sitemap lists: a page, or (from an index) another sitemap."""

    url: str
    kind: Literal["page", "sitemap"]
    lastmod: str | None
    level: int


@dataclass(frozen=True, slots=True)
class SitemapStatistics:
    listed: int
    kept: int
    dropped: dict[str, int]
    decompressed: int
    error: str | None


class _Stop(Exception):
    """Raised inside an expat handler to end the parse."""


class SitemapReader:
    """One sitemap file, parsed as its bytes arrive.

    Args:
        url: where the sitemap was fetched from (its final URL).
        level: 0 for a sitemap named by the user or robots.txt; an index's children are
            one deeper.
        keep: the crawl's scope for the listed pages (None keeps all).
        from_robots: named by robots.txt, so it may list other hosts' URLs.
        max_bytes: decompressed bytes read at most.
        max_level: the deepest level of sitemap followed.
    """

    def __init__(
        self,
        url: str,
        *,
        level: int = 0,
        keep: Callable[[str], bool] | None = None,
        from_robots: bool = False,
        max_bytes: int = MAX_BYTES,
        max_level: int = MAX_LEVEL,
    ) -> None:
        self.url = url
        self.level = level
        self._base = base_url(url)
        self._keep = keep
        self._home = None if from_robots else directory(url)
        self._max_bytes = max_bytes
        self._max_level = max_level
        self._gunzip: zlib._Decompress | None = None
        self._sniffed = False
        self._head = b""
        self._text_mode = False
        self._line = b""
        self._parser: expat.XMLParserType | None = None
        self._out: list[SitemapEntry] = []
        self._stack: list[str] = []
        self._chars: list[str] = []
        self._loc: str | None = None
        self._lastmod: str | None = None
        self._decompressed = 0
        self._listed = self._kept = 0
        self._dropped: Counter[str] = Counter()
        self.error: str | None = None
        self._done = False

    # -- feeding -----------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[SitemapEntry]:
        """Read one more piece of the body; the entries completed by it."""
        if not self._done and chunk:
            if not self._sniffed:
                self._head += chunk
                if len(self._head) < 2:
                    return self._take()
                chunk, self._head = self._head, b""
                self._sniffed = True
                if chunk[:2] == b"\x1f\x8b":
                    self._gunzip = zlib.decompressobj(zlib.MAX_WBITS | 16)
            if self._gunzip is not None:
                self._inflate(chunk)
            else:
                self._data(chunk)
        return self._take()

    def close(self) -> list[SitemapEntry]:
        """The end of the body: the last entries."""
        if not self._done:
            if not self._sniffed and self._head:
                chunk, self._head = self._head, b""
                self._sniffed = True
                self._data(chunk)
            if self._gunzip is not None and not self._done:
                if not self._gunzip.eof:
                    self._fail("the gzip stream ends early")
            self._finish()
        return self._take()

    def statistics(self) -> SitemapStatistics:
        return SitemapStatistics(
            self._listed, self._kept, dict(self._dropped), self._decompressed, self.error
        )

    # -- inside ------------------------------------------------------------------------

    def _take(self) -> list[SitemapEntry]:
        out, self._out = self._out, []
        return out

    def _inflate(self, chunk: bytes) -> None:
        assert self._gunzip is not None
        data = chunk
        while data and not self._done:
            room = self._max_bytes - self._decompressed + 1
            try:
                piece = self._gunzip.decompress(data, min(room, 1 << 20))
            except zlib.error as exc:
                self._fail(f"bad gzip data ({exc})")
                return
            data = self._gunzip.unconsumed_tail
            self._data(piece)
            if self._gunzip.eof:
                break

    def _data(self, data: bytes) -> None:
        if self._done or not data:
            return
        over = self._decompressed + len(data) - self._max_bytes
        if over > 0:
            data = data[: len(data) - over]
        self._decompressed += len(data)
        if self._parser is None and not self._text_mode:
            stripped = data.lstrip()
            if not stripped:
                return
            if stripped[:1] == b"<" or stripped[:3] == b"\xef\xbb\xbf":
                self._parser = self._make_parser()
            elif _BINARY.search(stripped, 0, 4096):
                self._fail("neither XML nor a text sitemap (binary data)")
                return
            else:
                self._text_mode = True
        if self._text_mode:
            self._text(data)
        else:
            assert self._parser is not None
            try:
                self._parser.Parse(data, False)
            except _Stop:
                pass
            except expat.ExpatError as exc:
                self._fail(f"not well-formed XML ({exc})")
        if over > 0 and not self._done:
            self._fail(f"over {self._max_bytes:,} bytes decompressed; the rest is ignored")

    def _finish(self) -> None:
        if self._text_mode and self._line:
            line, self._line = self._line, b""
            self._add(line.decode("utf-8", "replace").strip(), "page", None)
        elif self._parser is not None:
            try:
                self._parser.Parse(b"", True)
            except (_Stop, expat.ExpatError) as exc:
                if isinstance(exc, expat.ExpatError):
                    self._fail(f"not well-formed XML ({exc})")
        self._done = True

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        self._done = True

    def _text(self, data: bytes) -> None:
        lines = (self._line + data).split(b"\n")
        self._line = lines.pop()
        for line in lines:
            url = line.decode("utf-8", "replace").strip()
            if url:
                self._add(url, "page", None)

    def _make_parser(self) -> expat.XMLParserType:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        parser.EntityDeclHandler = self._entity
        parser.buffer_text = True
        return parser

    def _entity(self, *_: object) -> None:
        self._fail("it declares XML entities, which are refused")
        raise _Stop

    def _start(self, name: str, _attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        self._stack.append(local)
        if local in ("loc", "lastmod"):
            self._chars = []
        elif local in ("url", "sitemap"):
            self._loc = self._lastmod = None

    def _characters(self, data: str) -> None:
        if self._stack and self._stack[-1] in ("loc", "lastmod"):
            self._chars.append(data)

    def _end(self, name: str) -> None:
        local = self._stack.pop() if self._stack else name.rpartition(" ")[2]
        if local == "loc":
            self._loc = "".join(self._chars).strip()
        elif local == "lastmod":
            self._lastmod = "".join(self._chars).strip() or None
        elif local in ("url", "sitemap") and self._loc:
            kind: Literal["page", "sitemap"] = "page" if local == "url" else "sitemap"
            self._add(self._loc, kind, self._lastmod)
            self._loc = None

    def _add(self, raw: str, kind: Literal["page", "sitemap"], lastmod: str | None) -> None:
        self._listed += 1
        url = resolve(raw, self._base) if self._base is not None else None
        level = self.level + 1 if kind == "sitemap" else self.level
        reason = None
        if url is None:
            reason = "bad-url"
        elif self._home is not None and not location(url).startswith(self._home):
            reason = "outside-sitemap-location"
        elif kind == "sitemap" and level > self._max_level:
            reason = "too-deep"
        elif kind == "page" and self._keep is not None and not self._keep(url):
            reason = "out-of-scope"
        if reason is not None:
            self._dropped[reason] += 1
            return
        assert url is not None
        self._kept += 1
        self._out.append(SitemapEntry(url, kind, lastmod, level))
