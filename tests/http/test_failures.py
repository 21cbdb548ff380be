"""Every failure kind, each decided by what actually happened, and none left unhandled."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from conveyor._errors import (
    BadURL,
    Blocked,
    ConnectError,
    ConnectionReset,
    DNSError,
    FetchError,
    FetchTimeout,
    TLSError,
    TooLarge,
    TooManyRedirects,
)
from conveyor.http import HttpClient
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]


async def expect(client: HttpClient, url: object, kind: type[FetchError]) -> FetchError:
    with pytest.raises(kind) as info:
        await client.fetch(url)  # type: ignore[arg-type]
    assert info.value.kind == kind.kind
    return info.value


@pytest.mark.parametrize("template", ["ftp://{host}/x", "http:///x", "{host}/x", "http://127.1/"])
async def test_bad_url_never_touches_the_network(
    site: RunningSite, client: Client, template: str
) -> None:
    async with client() as c:
        error = await expect(c, template.format(host=site.host(0)), BadURL)
    assert error.attempts == 0
    assert sum(site.stats.hits.values()) == 0


async def test_not_a_url_at_all_is_bad_url(client: Client) -> None:
    async with client() as c:
        await expect(c, 42, BadURL)


async def test_dns(client: Client) -> None:
    async with client(retries=0) as c:
        await expect(c, "http://no-such-host.invalid/", DNSError)


async def test_connect(client: Client, closed_port: int) -> None:
    async with client(retries=2) as c:
        error = await expect(c, f"http://127.0.0.1:{closed_port}/", ConnectError)
    assert error.attempts == 3


async def test_tls_to_a_plain_http_port(site: RunningSite, client: Client) -> None:
    async with client(retries=0) as c:
        await expect(c, site.url("/").replace("http://", "https://"), TLSError)


async def test_read_timeout_on_a_trickle(site: RunningSite, client: Client) -> None:
    async with client(retries=0, read_timeout=0.2) as c:
        error = await expect(c, site.url("/trickle?every=2&chunks=2"), FetchTimeout)
    assert "read" in str(error)


async def test_total_timeout(site: RunningSite, client: Client) -> None:
    async with client(retries=1, timeout=0.2) as c:
        error = await expect(c, site.url("/page/1?delay=3"), FetchTimeout)
    assert error.attempts == 2


async def test_reset_mid_body(site: RunningSite, client: Client) -> None:
    async with client(retries=0) as c:
        await expect(c, site.url("/reset"), ConnectionReset)


async def test_endless_body_is_too_large(site: RunningSite, client: Client) -> None:
    async with client(max_bytes=1_000_000) as c:
        error = await expect(c, site.url("/endless"), TooLarge)
    assert error.attempts == 1  # too-large is not retried


@pytest.mark.parametrize("announce", ["1", "0"])
async def test_max_bytes_with_and_without_content_length(
    site: RunningSite, client: Client, announce: str
) -> None:
    async with client(max_bytes=1000) as c:
        assert len((await c.fetch(site.url(f"/bytes/1000?announce={announce}"))).body) == 1000
        await expect(c, site.url(f"/bytes/1001?announce={announce}"), TooLarge)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_compression_bomb_is_too_large_with_the_defaults(
    site: RunningSite, client: Client, encoding: str
) -> None:
    # 200 MiB of zeros in a few hundred KB: under max_bytes on the wire, far over it decoded.
    async with client() as c:
        error = await expect(c, site.url(f"/bomb/{encoding}"), TooLarge)
    assert "decompressed" in str(error)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_compressed_bodies_are_decoded(
    site: RunningSite, client: Client, encoding: str
) -> None:
    async with client() as c:
        response = await c.fetch(site.url(f"/compressed/{encoding}"))
    assert response.json()["hello"] == "world"
    assert response.raw_bytes < len(response.body)


async def test_redirect_loop(site: RunningSite, client: Client) -> None:
    async with client(max_redirects=5) as c:
        await expect(c, site.url("/loop/0"), TooManyRedirects)
    assert sum(site.stats.hits.values()) == 6


async def test_max_redirects_is_exact(site: RunningSite, client: Client) -> None:
    async with client(max_redirects=2) as c:
        assert (await c.fetch(site.url("/chain/2"))).status == 200
        await expect(c, site.url("/chain/3"), TooManyRedirects)


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "javascript:alert(1)", "gopher://x/"]
)
async def test_redirect_to_another_scheme_is_blocked(
    site: RunningSite, client: Client, target: str
) -> None:
    async with client() as c:
        error = await expect(c, site.url(f"/redirect?to={target}"), Blocked)
    assert error.attempts == 1
