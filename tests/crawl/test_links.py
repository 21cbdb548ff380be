"""Links for the crawl (``_crawl/page.py`` with ``links=True``, ``_crawl/links.py``),
checked against lexbor (selectolax) on generated and tricky pages, like the page record."""

from __future__ import annotations

import random

import pytest
from selectolax.lexbor import LexborHTMLParser

from conveyor._crawl.links import page_links
from conveyor._crawl.page import scan_page, summarize_html
from conveyor._crawl.urls import url_key
from conveyor.testing.demo_site import page_html


def lexbor_links(body: bytes) -> tuple[list[str], int]:
    """``(hrefs of <a> without rel=nofollow, count of a[href])`` as a browser parses them."""
    tree = LexborHTMLParser(body.decode("utf-8"))
    anchors = tree.css("a[href]")
    followed = [
        a.attributes["href"] or ""
        for a in anchors
        if "nofollow" not in (a.attributes.get("rel") or "").lower().split()
    ]
    return followed, len(anchors)


def ours(body: bytes) -> tuple[list[str], int]:
    scan = scan_page(body, "text/html", links=True)
    assert scan.hrefs is not None
    return [href for href, kind in scan.hrefs if kind == "a"], scan.links


TRICKY = [
    b"<a href=x>1</a><A HREF='Y'>2</A><a\nhref=\"z\">3</a><a name=n>4</a>",
    b"<a class=c href=/one>1</a><a href=/two class=c>2</a><a title='a b' href=/three>",
    b"<a href='/q?a=1&amp;b=2&lt;'>e</a><a href=\"/caf\xc3\xa9\">u</a>",
    b"<!-- <a href=/in-comment> --><a href=/after>",
    b"<script>var s = '<a href=/in-script>';</script><a href=/real>",
    b"<textarea><a href=/t></textarea><template><a href=/tpl></template><a href=/ok>",
    b"<a href=/f rel=nofollow>n</a><a rel='NoFollow noopener' href=/g><a rel=next href=/h>",
    b"<a href=''>empty</a><a href=#frag>f</a><a href=' /spaced '>s</a>",
    b"<a hreflang=en href=/lang>l</a><a data-x=1 href=/data>d</a>",
    b"<p>no links at all</p>",
    b"<a href=/Case>c</a><a href=/case>c</a>",
]


@pytest.mark.parametrize("body", TRICKY)
def test_agrees_with_lexbor_on_tricky_markup(body: bytes) -> None:
    assert ours(body) == lexbor_links(body)


def test_agrees_with_lexbor_on_the_demo_pages() -> None:
    for n in range(200):
        body = page_html(n, 200).encode()
        assert ours(body) == lexbor_links(body), n


def generated_page(rng: random.Random) -> bytes:
    """A page of links in the shapes found in the wild: quoting, attribute order, rel,
    entities, comments and scripts around them."""
    parts = ["<html><head><title>g</title></head><body>"]
    for i in range(rng.randint(0, 60)):
        href = rng.choice([f"/p/{i}", f"../up/{i}?a=1&amp;b={i}", f"http://127.0.0.3/x{i}",
                           "#top", f"p{i}.html", f"/s p/{i}"])  # fmt: skip
        quote = rng.choice(['"', "'", ""]) if " " not in href else rng.choice(['"', "'"])
        attrs = [f"href={quote}{href}{quote}"]
        if rng.random() < 0.3:
            attrs.append(rng.choice(["class=nav", "title='go'", "rel=nofollow", "rel='next'",
                                     "id=x", "data-href=/no"]))  # fmt: skip
        rng.shuffle(attrs)
        tag = rng.choice(["a", "A"])
        parts.append(f"<{tag} {' '.join(attrs)}>link {i}</{tag}> text ")
        if rng.random() < 0.05:
            parts.append(f"<!-- <a href=/c{i}> -->")
        if rng.random() < 0.05:
            parts.append(f"<script>document.write('<a href=/s{i}>')</script>")
    parts.append("</body></html>")
    return "".join(parts).encode()


def test_agrees_with_lexbor_on_generated_pages() -> None:
    rng = random.Random(22)
    for n in range(300):
        body = generated_page(rng)
        assert ours(body) == lexbor_links(body), (n, body)


def test_the_link_count_is_the_page_records_count() -> None:
    rng = random.Random(7)
    for body in [*TRICKY, *(generated_page(rng) for _ in range(100))]:
        assert scan_page(body, "text/html", links=True).links == summarize_html(body, None)[2]


def test_link_rel_next_and_alternate_and_base_href() -> None:
    body = (
        b"<head><base href='/static/'><base href='/ignored/'>"
        b"<link rel=next href=page2.html><link rel='alternate' hreflang=de href=/de/>"
        b"<link rel='alternate stylesheet' href=s.css><link rel=stylesheet href=t.css>"
        b"<link rel=canonical href=/c></head><a href=img/1.html>"
    )
    found = page_links("http://127.0.0.3/docs/a.html", body, "text/html")
    assert found.scan.base == "/static/"
    assert [(link.url, link.kind) for link in found.links] == [
        ("http://127.0.0.3/static/page2.html", "next"),
        ("http://127.0.0.3/de/", "alternate"),
        ("http://127.0.0.3/static/img/1.html", "a"),
    ]


@pytest.mark.parametrize(
    ("content", "nofollow", "noindex"),
    [("nofollow", True, False), ("NOINDEX, nofollow", True, True), ("none", True, True),
     ("noindex", False, True), ("index, follow", False, False)],
)  # fmt: skip
def test_meta_robots(content: str, nofollow: bool, noindex: bool) -> None:
    body = f"<head><META NAME=Robots CONTENT='{content}'></head><a href=/a><a href=/b>".encode()
    scan = scan_page(body, "text/html", links=True)
    assert (scan.nofollow, scan.noindex) == (nofollow, noindex)
    assert len(scan.hrefs or ()) == (0 if nofollow else 2)
    assert scan.nofollow_links == (2 if nofollow else 0)
    assert scan.links == 2  # the record's count does not change


def test_page_links_resolve_dedupe_and_count_the_unfit() -> None:
    body = (
        b"<a href=/a>1</a><a href='/a#x'>2</a><a href=HTTP://127.0.0.3:80/a>3</a>"
        b"<a href=mailto:x@y>m</a><a href='javascript:go()'>j</a><a href=/A>4</a>"
    )
    found = page_links("http://127.0.0.3/", body, "text/html")
    assert [link.url for link in found.links] == ["http://127.0.0.3/a", "http://127.0.0.3/A"]
    assert found.links[0].key == url_key("http://127.0.0.3/a")
    assert (found.unfit, found.repeated) == (2, 2)


def test_non_ascii_links_use_the_page_encoding() -> None:
    body = "<meta charset=windows-1252><a href='/caf\u00e9'>".encode("cp1252")
    found = page_links("http://127.0.0.3/", body, "text/html")
    assert [link.url for link in found.links] == ["http://127.0.0.3/caf%C3%A9"]
