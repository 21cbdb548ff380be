"""The safety verdicts, pure: schemes, hosts, credential stripping, addresses, file names."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from conveyor._errors import BadURL, Blocked
from conveyor._http.safety import (
    address_refusal,
    check_url,
    parse_networks,
    safe_filename,
    should_strip_credentials,
    strip_credentials,
    target_path,
)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "example.org/no-scheme",
        "//example.org/x",
        "http:///no-host",
        "http://exa mple.org/",
        "http://[::1/",
        "http://example.org:99999/",
        "http://2130706433/",  # 127.0.0.1 spelled as one number
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "",
    ],
)
def test_bad_urls_are_refused_without_the_network(url: str) -> None:
    with pytest.raises(BadURL) as info:
        check_url(url)
    assert info.value.kind == "bad-url"


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/",
        "https://EXAMPLE.org:8443/a?b=c",
        "http://[::1]:8080/",
        "http://müller.de/",
    ],
)
def test_good_urls_pass(url: str) -> None:
    assert check_url(url).scheme in ("http", "https")


def test_a_bad_redirect_target_is_blocked_not_bad_input() -> None:
    with pytest.raises(Blocked) as info:
        check_url("file:///etc/passwd", redirect_from=URL("http://example.org/"))
    assert info.value.kind == "blocked"


@pytest.mark.parametrize(
    ("old", "new", "strip"),
    [
        ("http://a.example/x", "http://a.example/y", False),
        ("http://a.example/x", "http://b.example/x", True),
        ("http://a.example/x", "http://A.EXAMPLE/x", False),
        ("https://a.example/x", "http://a.example/x", True),  # a downgrade exposes them
        ("http://a.example/x", "https://a.example/x", False),  # the upgrade requests allows
        ("http://a.example:8080/x", "https://a.example/x", True),
        ("http://a.example/x", "http://a.example:8080/x", True),
        ("http://a.example/x", "http://a.example.evil.test/x", True),
        ("http://127.0.0.1:80/", "http://127.0.0.2:80/", True),
    ],
)
def test_credentials_stay_with_their_origin(old: str, new: str, strip: bool) -> None:
    assert should_strip_credentials(URL(old), URL(new)) is strip


def test_strip_credentials_removes_the_three_headers_any_case() -> None:
    headers = (("authorization", "a"), ("COOKIE", "c"), ("Proxy-Authorization", "p"), ("X", "1"))
    assert strip_credentials(headers) == (("X", "1"),)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "non-global"),
        ("0.0.0.0", "private"),
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "cloud metadata"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_private_addresses_are_named(address: str, reason: str | None) -> None:
    assert address_refusal(address) == reason


def test_allowed_networks_are_exempt() -> None:
    allowed = parse_networks(["10.1.0.0/16"])
    assert address_refusal("10.1.2.3", allowed) is None
    assert address_refusal("10.2.0.1", allowed) == "private"


@given(st.text(max_size=200))
def test_file_names_never_leave_the_directory(text: str) -> None:
    base = Path("/srv/out")
    try:
        url = URL.build(scheme="http", host="example.org", path="/" + text, encoded=False)
    except ValueError:
        return
    name = safe_filename(url)
    assert name
    assert name not in (".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert "\0" not in name
    assert ".." not in name
    assert target_path(base, url).parent == base


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/../../etc/passwd",
        "http://example.org/a%2F..%2F..%2Fetc%2Fpasswd",
        "http://example.org/%2e%2e/%2e%2e/x",
        "http://example.org/C:%5Cwindows%5Csystem32",
        "http://example.org/.bashrc",
    ],
)
def test_hostile_paths_give_plain_names(url: str) -> None:
    name = safe_filename(URL(url))
    assert name.startswith("example.org")
    assert target_path(Path("/srv/out"), URL(url)).parent == Path("/srv/out")


def test_file_names_differ_per_url() -> None:
    assert safe_filename(URL("http://e.org/a?x=1")) != safe_filename(URL("http://e.org/a?x=2"))
