"""``block_private=True``: no connection to a non-global address, on any hop."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote

import pytest

from conveyor._errors import Blocked
from conveyor.http import HttpClient
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]


def port(site: RunningSite, host: int) -> str:
    return site.bases[host].rsplit(":", 1)[1]


async def test_off_by_default(site: RunningSite, client: Client) -> None:
    async with client() as c:
        assert (await c.fetch(site.url("/"))).status == 200


async def test_a_literal_loopback_address_is_refused(site: RunningSite, client: Client) -> None:
    async with client(block_private=True) as c:
        with pytest.raises(Blocked, match="loopback"):
            await c.fetch(site.url("/"))
    assert sum(site.stats.hits.values()) == 0


async def test_a_name_resolving_to_loopback_is_refused(site: RunningSite, client: Client) -> None:
    async with client(block_private=True) as c:
        with pytest.raises(Blocked, match="localhost resolves to"):
            await c.fetch(f"http://localhost:{port(site, 0)}/")
    assert sum(site.stats.hits.values()) == 0


async def test_allowed_network_then_a_redirect_to_a_refused_address(
    site: RunningSite, client: Client
) -> None:
    target = quote(site.url("/echo", host=1), safe="")
    async with client(block_private=True, allow_networks=["127.0.0.1/32"]) as c:
        assert (await c.fetch(site.url("/page/1"))).status == 200
        with pytest.raises(Blocked, match=r"127\.0\.0\.2 is loopback"):
            await c.fetch(site.url(f"/redirect?to={target}"))
    assert site.stats.hits["/redirect"] == 1
    assert site.stats.hits["/echo"] == 0


async def test_a_redirect_to_a_name_is_checked_after_dns(site: RunningSite, client: Client) -> None:
    # Start on the allowed 127.0.0.2, then go to "localhost" (127.0.0.1, not allowed).
    target = quote(f"http://localhost:{port(site, 0)}/echo", safe="")
    async with client(block_private=True, allow_networks="127.0.0.2") as c:
        with pytest.raises(Blocked, match="localhost resolves to"):
            await c.fetch(site.url(f"/redirect?to={target}", host=1))
    assert site.stats.hits["/echo"] == 0
