"""Scope, allow/deny, depth and traps (``_crawl/scope.py``)."""

from __future__ import annotations

import pytest

from conveyor._crawl.scope import (
    MAX_URL_LENGTH,
    Admission,
    Scope,
    hostname,
    registrable_domain,
    trap,
)
from conveyor._errors import UsageError


def test_host_scope_is_the_seed_hosts_on_any_scheme_or_port() -> None:
    scope = Scope.build("host", ["http://Docs.Example.com/start", "http://127.0.0.3:8080/"])
    assert scope.contains("https://docs.example.com/other")
    assert scope.contains("http://docs.example.com:8080/x")
    assert scope.contains("http://127.0.0.3:9/")
    assert not scope.contains("http://www.example.com/")
    assert not scope.contains("http://127.0.0.4:8080/")


def test_domain_scope_uses_the_public_suffix_list_offline() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("user.github.io") == "user.github.io"  # a private suffix
    assert registrable_domain("127.0.0.3") == "127.0.0.3"
    assert registrable_domain("[::1]") == "[::1]"
    assert registrable_domain("localhost") == "localhost"
    scope = Scope.build("domain", ["https://www.example.co.uk/"])
    assert scope.contains("http://shop.example.co.uk/a")
    assert not scope.contains("http://other.co.uk/")
    pages = Scope.build("domain", ["https://alice.github.io/"])
    assert not pages.contains("https://bob.github.io/")
    assert scope.unit("http://a.shop.example.co.uk/") == "example.co.uk"


def test_prefix_scope_is_the_seed_directory() -> None:
    scope = Scope.build("prefix", ["https://h.example/docs/index.html"])
    assert scope.prefixes == ("h.example/docs/",)
    assert scope.contains("http://h.example/docs/api/x?q=1")
    assert not scope.contains("https://h.example/blog/")
    assert not scope.contains("https://h.example/Docs/")  # case-sensitive paths


def test_regex_scope_and_bad_regexes() -> None:
    scope = Scope.build(r"example\.com/(docs|api)/", ["https://example.com/"])
    assert scope.contains("https://example.com/api/1")
    assert not scope.contains("https://example.com/blog/1")
    with pytest.raises(UsageError, match="--scope"):
        Scope.build("(unclosed", [])
    with pytest.raises(UsageError, match="--deny"):
        Admission(scope, deny=["*bad"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/" + "a" * MAX_URL_LENGTH, "url-too-long"),
        ("http://h/" + "/".join(f"s{i}" for i in range(21)), "too-many-segments"),
        ("http://h/" + "/".join(f"s{i}" for i in range(20)), None),
        ("http://h/a/b/a/b/a/c", "repeated-segment"),
        ("http://h/a/b/a/c", None),
        ("http://h/cal/2024/cal/2025/cal/2026?x=/y/y/y", "repeated-segment"),
        ("http://h/p?q=/y/y/y/y", None),  # the query is not the path
        ("http://h", None),
    ],
)
def test_traps(url: str, expected: str | None) -> None:
    assert trap(url) == expected


def test_admission_checks_and_counts_each_reason() -> None:
    scope = Scope.build("host", ["http://127.0.0.3/"])
    admission = Admission(scope, max_depth=2, allow=["/docs/", "/blog/"], deny=[r"\.pdf$"])
    assert admission.check("http://127.0.0.3/docs/a", 1) is None
    assert admission.check("http://127.0.0.3/docs/a", 3) == "too-deep"
    assert admission.check("http://127.0.0.4/docs/a", 1) == "out-of-scope"
    assert admission.check("http://127.0.0.3/docs/a.pdf", 1) == "denied"
    assert admission.check("http://127.0.0.3/shop/", 1) == "not-allowed"
    assert admission.check("http://127.0.0.3/docs/x/docs/x/docs/", 1) == "repeated-segment"
    stats = admission.statistics()
    assert stats.checked == 6
    assert stats.rejected == {
        "too-deep": 1, "out-of-scope": 1, "denied": 1, "not-allowed": 1, "repeated-segment": 1,
    }  # fmt: skip
    off = Admission(scope, traps=False)
    assert off.check("http://127.0.0.3/docs/x/docs/x/docs/", 9) is None
    assert admission.describe() != off.describe()


def test_bad_depth_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--depth"):
        Admission(Scope.build("host", []), max_depth=-1)


def test_hostname_is_host_key_without_the_port() -> None:
    assert hostname("HTTP://B\u00fccher.Example.:8080/x") == "xn--bcher-kva.example"
    assert hostname("http://[::1]:80/") == "[::1]"
