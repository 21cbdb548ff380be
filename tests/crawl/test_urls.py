"""The URL to fetch and the canonical key (``_crawl/urls.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from conveyor._crawl.urls import (
    VERSION,
    CanonicalRules,
    base_url,
    canonical,
    canonical_key,
    locate,
    normalize,
    resolve,
    url_key,
)
from conveyor._errors import UsageError

PAGE = "https://www.example.com/docs/guide/index.html"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("/about/team.html", "https://www.example.com/about/team.html"),
        ("../api/ref.html?b=2&a=1", "https://www.example.com/docs/api/ref.html?b=2&a=1"),
        ("page2.html#top", "https://www.example.com/docs/guide/page2.html"),
        ("//cdn.example.org/x", "https://cdn.example.org/x"),
        ("?q=1", "https://www.example.com/docs/guide/index.html?q=1"),
        ("#only-a-fragment", "https://www.example.com/docs/guide/index.html"),
        ("  \t/a b\n/c \n", "https://www.example.com/a%20b/c"),  # browsers strip and drop
        ("\\\\evil.example\\x?q=\\", "https://evil.example/x?q=%5C"),  # \ is / before ?
        ("/caf\u00e9?q=\u00e9", "https://www.example.com/caf%C3%A9?q=%C3%A9"),
        ("HTTP://B\u00fccher.Example:80/a/./b/../c", "http://xn--bcher-kva.example/a/c"),
        ("/About", "https://www.example.com/About"),  # case kept
    ],
)
def test_resolve_against_the_page(href: str, expected: str) -> None:
    assert resolve(href, PAGE) == expected


@pytest.mark.parametrize(
    "href",
    ["mailto:a@example.com", "javascript:void(0)", "data:text/html,hi", "ftp://example.com/",
     "http://exa mple.com/", "http://h:99999/", "tel:+1"],
)  # fmt: skip
def test_links_that_are_not_fetched(href: str) -> None:
    assert resolve(href, PAGE) is None
    assert locate(href, PAGE) is None


def test_resolve_against_a_base_href_and_a_bad_base() -> None:
    base = base_url(resolve("/static/", PAGE) or "")
    assert base is not None
    assert resolve("img/a.html", base) == "https://www.example.com/static/img/a.html"
    assert resolve("/x", "mailto:me@example.com") is None


SPELLINGS = [
    "http://example.com/a/c",
    "HTTP://EXAMPLE.com:80/a/./b/../c#frag",
    "http://example.com./a/c",
    "http://Example.COM/a/%63",  # an escaped unreserved character is the character
    "http://example.com:80/a/b/../c",
]


def test_two_spellings_of_one_page_have_one_key() -> None:
    keys = {canonical_key(resolve(spelling, PAGE) or "") for spelling in SPELLINGS}
    assert len(keys) == 1
    assert canonical(resolve(SPELLINGS[1], PAGE) or "") == "http://example.com/a/c"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("http://example.com/About", "http://example.com/about"),
        ("http://example.com/a?Q=1", "http://example.com/a?q=1"),
        ("http://example.com/a%2Fb", "http://example.com/a/b"),  # an escaped / is not a /
        ("http://example.com/a?b=2&a=1", "http://example.com/a?a=1&b=2"),  # order kept
        ("http://example.com:8080/", "http://example.com/"),
        ("https://example.com/", "http://example.com/"),
    ],
)
def test_different_pages_keep_different_keys(one: str, other: str) -> None:
    assert canonical_key(one) != canonical_key(other)


def test_percent_escapes_are_normalised() -> None:
    assert canonical("http://h/%7e%2f%e2%82%ac?x=%7E%2f") == "http://h/~%2F%E2%82%AC?x=~/"


def test_query_sorting_and_tracking_removal_are_options() -> None:
    url = "http://h/p?utm_source=x&b=2&gclid=9&a=1&a=0"
    assert canonical(url) == url
    assert canonical(url, CanonicalRules(sort_query=True)) == (
        "http://h/p?a=0&a=1&b=2&gclid=9&utm_source=x"
    )
    assert canonical(url, CanonicalRules(strip_tracking=True)) == "http://h/p?b=2&a=1&a=0"
    assert canonical("http://h/p?utm_a=1", CanonicalRules(strip_tracking=True)) == "http://h/p"
    both = CanonicalRules(sort_query=True, strip_tracking=True)
    assert both.describe()["canonical"] == VERSION
    assert both.describe() != CanonicalRules().describe()


def test_golden_keys() -> None:
    """Pinned: a change here (ours, or yarl quoting differently) changes every stored key,
    so it must come with a new VERSION."""
    assert VERSION == 1
    assert canonical_key("https://www.example.com/a b/caf\u00e9?q=\u00e9&x=%7e").hex() == (
        url_key("https://www.example.com/a%20b/caf%C3%A9?q=%C3%A9&x=~").hex()
    )
    assert url_key("http://example.com/").hex() == "9aba6a18c5a5d94534a3b99c485d4547"


def test_seeds_are_normalised_or_refused() -> None:
    assert normalize("HTTPS://Example.com") == ("https://example.com", "https://example.com/")
    with pytest.raises(UsageError, match="absolute http"):
        normalize("example.com/page")
    with pytest.raises(UsageError, match="http"):
        canonical("ftp://example.com/")


segment = st.lists(
    st.sampled_from([*list("aAbZ09-._~%!$&'()*+,;=:@ é/"), "%7e", "%2F", "%41", ".."]),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    path=st.lists(segment, max_size=5),
    query=st.one_of(st.none(), st.lists(segment, max_size=4)),
    host=st.sampled_from(["example.com", "EXAMPLE.com.", "b\u00fccher.example", "127.0.0.3"]),
    port=st.sampled_from(["", ":80", ":8080"]),
)
def test_canonical_is_idempotent_and_what_the_client_sends(
    path: list[str], query: list[str] | None, host: str, port: str
) -> None:
    href = f"http://{host}{port}/" + "/".join(path)
    if query is not None:
        href += "?" + "&".join(query)
    fetched = resolve(href, PAGE)
    assert fetched is not None
    # The fetch URL is yarl's own form: the client sends exactly this.
    assert str(URL(fetched)) == fetched
    once = canonical(fetched)
    assert canonical(once) == once
    assert resolve(once, PAGE) is not None
    assert canonical(resolve(once, PAGE) or "") == once
    found = locate(href, PAGE)
    assert found == (fetched, url_key(once))
