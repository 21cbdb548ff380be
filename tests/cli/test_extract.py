"""The page extractor (``_cli/extract.py``): title, description and links as an HTML parser
reads them, checked against lexbor (selectolax) on whole pages and on the tricky cases."""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser

from conveyor._cli.extract import summarize_html
from conveyor.testing.demo_site import page_html


def lexbor(body: bytes) -> tuple[str | None, str | None, int]:
    tree = LexborHTMLParser(body.decode("utf-8"))
    title = tree.css_first("title")
    meta = tree.css_first('meta[name="description"]')
    return (
        (title.text(strip=True) or None) if title is not None else None,
        (meta.attributes.get("content") or None) if meta is not None else None,
        len(tree.css("a[href]")),
    )


TRICKY = [
    b"<html><head><title>A &amp; B &lt;C&gt;</title></head><body><a href=x>1</a></body></html>",
    b"<TITLE>\n  Spaced  \n</TITLE><A HREF='x'>1</A><a name=y>2</a><a\nhref=z>3</a>",
    b"<title>t</title><!-- <a href=1> <title>no</title> --><a href=2>",
    b"<script>var s = '<a href=1>'; var t = '<title>no</title>';</script><title>yes</title>",
    b"<style>a[href] { color: red } </style><a href=1><a href=2>",
    b"<textarea><a href=1></textarea><template><a href=2></template><a href=3>",
    b"<meta name='description' content='single'><meta name=description content=second>",
    b'<meta content="after" name="description"><p>x</p>',
    b"<p>no title, no links</p>",
    b"<title></title><meta name=description content=''>",
]


@pytest.mark.parametrize("body", TRICKY)
def test_agrees_with_lexbor_on_tricky_markup(body: bytes) -> None:
    assert summarize_html(body, "text/html") == lexbor(body)


def test_agrees_with_lexbor_on_the_demo_pages() -> None:
    for n in range(300):
        body = page_html(n, 300).encode()
        assert summarize_html(body, "text/html; charset=utf-8") == lexbor(body), n


def test_description_name_in_any_case_and_order() -> None:
    body = b"<META CONTENT='x &lt; y' NAME=Description>"
    assert summarize_html(body, "text/html")[1] == "x < y"


def test_encodings_of_title_and_description() -> None:
    latin = "<title>Café</title><meta name=description content='Ä'>".encode("latin-1")
    assert summarize_html(latin, "text/html; charset=latin-1")[:2] == ("Café", "Ä")
    cyrillic = "<meta charset='windows-1251'><title>Привет</title>".encode("cp1251")
    assert summarize_html(cyrillic, "text/html")[0] == "Привет"
    utf16 = "\ufeff<title>Hi ✓</title><a href=x>".encode("utf-16")
    assert summarize_html(utf16, "text/html") == ("Hi ✓", None, 1)
    undeclared = "<title>Grüße aus Köln</title>".encode("cp1252")
    assert summarize_html(undeclared, "text/html")[0] == "Grüße aus Köln"
    assert summarize_html(b"<meta charset=rot13><title>A</title>", "text/html")[0] == "A"
