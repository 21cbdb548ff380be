"""One host identity (``_http/hosts.host_key``): every spelling of a server, one key.

The end-to-end tests prove it where it mattered: two spellings of one server routed to two
loop processes had two owners, so the server saw twice ``per_host`` requests at once.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

import conveyor as cv
from conveyor._engine.loops import route_index
from conveyor._http.hosts import host_key
from conveyor.testing import run_site


@pytest.mark.parametrize(
    ("spellings", "key"),
    [
        (
            ["http://127.0.0.3/p1", "http://127.0.0.3:80/p2", "HTTP://127.0.0.3:080/"],
            "127.0.0.3:80",
        ),
        (["https://Example.COM/a", "https://example.com.:443/b?c#d"], "example.com:443"),
        (
            ["http://bücher.example./", "http://XN--BCHER-KVA.example:80/"],
            "xn--bcher-kva.example:80",
        ),
        (["https://[::1]/", "https://[0:0::1]:443/x"], "[::1]:443"),
        (["http://user:pw@Host:81/", "http://host:81"], "host:81"),
        (["http://h:/x", "http://h?q", "http://h#f"], "h:80"),
    ],
)
def test_every_spelling_of_one_server_has_one_key(spellings: list[str], key: str) -> None:
    for spelling in spellings:
        assert host_key(spelling) == key, spelling
        assert host_key(URL(spelling)) == key, spelling  # the client's own parse agrees
        assert host_key(cv.Request(spelling)) == key, spelling


def test_two_ports_or_two_schemes_are_two_servers() -> None:
    assert host_key("http://h/") == "h:80"
    assert host_key("https://h/") == "h:443"
    assert host_key("http://h:8080/") == "h:8080"


def test_a_line_that_is_no_url_is_its_own_key() -> None:
    assert host_key("not a url") == "not a url"
    assert host_key("") == ""


_LABEL = st.text("abcXYZ019-", min_size=1, max_size=8).filter(
    lambda s: s[0] != "-" and s[-1] != "-"
)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP", "Https"]),
    labels=st.lists(
        st.one_of(_LABEL, st.sampled_from(["bücher", "ÉCOLE", "δοκιμή"])), min_size=1, max_size=3
    ),
    dot=st.booleans(),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    userinfo=st.sampled_from(["", "u@", "u:p@"]),
    path=st.sampled_from(["", "/", "/a/b", "?q=1", "#f", "/x?y#z"]),
)
def test_the_quick_split_agrees_with_a_full_parse(
    scheme: str, labels: list[str], dot: bool, port: int | None, userinfo: str, path: str
) -> None:
    host = ".".join(labels) + ("." if dot else "")
    url = f"{scheme}://{userinfo}{host}{'' if port is None else f':{port}'}{path}"
    assert host_key(url) == host_key(URL(url))


def _by_text(netloc: str) -> int:
    return route_index(netloc, 2)


def status_of(response: Any) -> int:
    """Module-level: it runs in the loop processes."""
    return int(response.status)


async def _fetch_mixed(urls: list[str]) -> cv.RunResult:
    return await (
        cv.Pipeline(urls)
        .fetch(concurrency=100, per_host=4)
        .map(status_of, on="inline")
        .run_async(loops=2)
    )


async def test_two_spellings_of_one_server_share_its_per_host_limit_across_loops() -> None:
    async with run_site(("127.0.0.3",)) as site:
        port = site.bases[0].rsplit(":", 1)[1]
        # A second spelling (leading zeros in the port) whose text alone would route to
        # the other of two loops: only one host identity keeps the host on one loop.
        zeros = next(
            z
            for z in range(1, 20)
            if _by_text(f"127.0.0.3:{'0' * z}{port}") != _by_text(f"127.0.0.3:{port}")
        )
        spellings = [f"http://127.0.0.3:{port}", f"HTTP://127.0.0.3:{'0' * zeros}{port}"]
        urls = [f"{spellings[i % 2]}/page/{i}?delay=0.03" for i in range(80)]
        result = await _fetch_mixed(urls)
        assert result.results == 80
        assert site.stats.max_in_flight[site.host()] <= 4
        assert site.stats.max_in_flight[site.host()] >= 2  # the test did load the host


def _port_80_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.3", 80))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EADDRINUSE, errno.EPERM):
                return False
            raise
    return True


async def test_the_default_port_written_or_not_is_one_host() -> None:
    """The reported case: ``http://127.0.0.3/p1`` and ``http://127.0.0.3:80/p2``."""
    if not _port_80_free():
        pytest.skip("port 80 on 127.0.0.3 cannot be bound here (not root, or taken)")
    async with run_site(("127.0.0.3",), port=80) as site:
        spellings = ["http://127.0.0.3", "http://127.0.0.3:80"]
        urls = [f"{spellings[i % 2]}/page/{i}?delay=0.03" for i in range(80)]
        result = await _fetch_mixed(urls)
        assert result.results == 80
        assert 2 <= site.stats.max_in_flight["127.0.0.3"] <= 4
