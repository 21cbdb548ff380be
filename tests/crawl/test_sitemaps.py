"""Sitemaps read as they stream in (``_crawl/sitemaps.py``)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from conveyor._crawl.sitemaps import SitemapEntry, SitemapReader

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(*entries: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS}>{"".join(entries)}</urlset>'.encode()
    )


def url(loc: str, lastmod: str | None = None) -> str:
    mod = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
    return f"<url><loc>{loc}</loc>{mod}<changefreq>daily</changefreq></url>"


def read(reader: SitemapReader, body: bytes, piece: int) -> list[SitemapEntry]:
    out = []
    for start in range(0, len(body), piece):
        out += reader.feed(body[start : start + piece])
    return out + reader.close()


@pytest.mark.parametrize("piece", [1, 7, 4096])
@pytest.mark.parametrize("compress", [False, True])
def test_pages_and_lastmod_in_any_pieces_plain_or_gzipped(piece: int, compress: bool) -> None:
    body = urlset(
        url("http://127.0.0.3/docs/a?x=1&amp;y=2", "2024-05-01T10:00:00+00:00"),
        url("  http://127.0.0.3/docs/b\u00e9  "),
        url("http://127.0.0.3/docs/c", "2024-05-03"),
    )
    if compress:
        body = gzip.compress(body)
    reader = SitemapReader("http://127.0.0.3/docs/sitemap.xml.gz")
    assert read(reader, body, piece) == [
        SitemapEntry("http://127.0.0.3/docs/a?x=1&y=2", "page", "2024-05-01T10:00:00+00:00", 0),
        SitemapEntry("http://127.0.0.3/docs/b%C3%A9", "page", None, 0),
        SitemapEntry("http://127.0.0.3/docs/c", "page", "2024-05-03", 0),
    ]
    stats = reader.statistics()
    assert (stats.listed, stats.kept, stats.error) == (3, 3, None)


def test_an_index_lists_sitemaps_one_level_deeper_up_to_the_limit() -> None:
    body = (
        f"<sitemapindex {NS}><sitemap><loc>http://127.0.0.3/s1.xml.gz</loc>"
        "<lastmod>2024-01-01</lastmod></sitemap>"
        "<sitemap><loc>http://127.0.0.3/s2.xml</loc></sitemap></sitemapindex>"
    ).encode()
    reader = SitemapReader("http://127.0.0.3/index.xml", level=3)
    assert read(reader, body, 16) == [
        SitemapEntry("http://127.0.0.3/s1.xml.gz", "sitemap", "2024-01-01", 4),
        SitemapEntry("http://127.0.0.3/s2.xml", "sitemap", None, 4),
    ]
    deepest = SitemapReader("http://127.0.0.3/index.xml", level=10)
    assert read(deepest, body, 16) == []
    assert deepest.statistics().dropped == {"too-deep": 2}


def test_scope_and_the_sitemap_location_rule() -> None:
    body = urlset(
        url("http://127.0.0.3/docs/in"),
        url("http://127.0.0.3/blog/outside-the-sitemaps-folder"),
        url("http://127.0.0.4/docs/other-host"),
        url("mailto:someone@example.com"),
        url("http://127.0.0.3/docs/private/x"),
    )
    keep = lambda link: "/private/" not in link  # noqa: E731 - the crawl's scope, in short
    reader = SitemapReader("http://127.0.0.3/docs/sitemap.xml", keep=keep)
    assert [entry.url for entry in read(reader, body, 64)] == ["http://127.0.0.3/docs/in"]
    assert reader.statistics().dropped == {
        "outside-sitemap-location": 2, "bad-url": 1, "out-of-scope": 1,
    }  # fmt: skip
    named = SitemapReader("http://127.0.0.3/docs/sitemap.xml", keep=keep, from_robots=True)
    assert len(read(named, body, 64)) == 3  # robots.txt may name any host's URLs


def test_a_text_sitemap() -> None:
    reader = SitemapReader("http://127.0.0.3/urls.txt")
    body = b"http://127.0.0.3/a\r\n\nhttp://127.0.0.3/b\nhttp://127.0.0.3/c"
    assert [e.url for e in read(reader, body, 5)] == [
        "http://127.0.0.3/a", "http://127.0.0.3/b", "http://127.0.0.3/c",
    ]  # fmt: skip


def test_the_decompressed_size_is_capped() -> None:
    many = urlset(*(url(f"http://127.0.0.3/p/{i}") for i in range(20000)))
    body = gzip.compress(many)
    assert len(body) < len(many) // 10  # a bomb in the small
    reader = SitemapReader("http://127.0.0.3/s.xml.gz", max_bytes=100_000)
    entries = read(reader, body, 1 << 16)
    stats = reader.statistics()
    assert stats.decompressed == 100_000
    assert stats.error is not None
    assert "100,000 bytes" in stats.error
    assert 0 < len(entries) < 20000  # what came before the cap is kept
    assert entries[-1] == SitemapEntry(f"http://127.0.0.3/p/{len(entries) - 1}", "page", None, 0)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaa">]><urlset><url><loc>&a;</loc>'
         b"</url></urlset>", "entities"),
        (urlset(url("http://127.0.0.3/a"))[:-20] + b"<<>>", "not well-formed"),
        (gzip.compress(urlset(url("http://127.0.0.3/a")))[:-12], "gzip"),
        (b"\x1f\x8bnot gzip at all", "gzip"),
    ],
)  # fmt: skip
def test_bad_files_end_with_a_reason(body: bytes, error: str) -> None:
    reader = SitemapReader("http://127.0.0.3/s.xml")
    read(reader, body, 9)
    assert reader.error is not None
    assert error in reader.error


def test_zlib_is_not_mistaken_for_gzip() -> None:
    reader = SitemapReader("http://127.0.0.3/s.xml")
    read(reader, zlib.compress(urlset(url("http://127.0.0.3/a"))), 50)
    assert reader.error is not None  # neither gzip nor XML: refused, not misread
