"""Redirects are followed hop by hop: the chain is recorded and credentials stay home."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from urllib.parse import quote

import pytest

from conveyor.http import HttpClient, Request
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]
SECRETS = {"Authorization": "Bearer s3cret", "Cookie": "sid=1", "Proxy-Authorization": "Basic x"}


def via_redirect(site: RunningSite, target: str, status: int = 302) -> str:
    return site.url(f"/redirect?status={status}&to={quote(target, safe='')}")


async def test_chain_and_final_url(site: RunningSite, client: Client) -> None:
    async with client() as c:
        response = await c.fetch(site.url("/chain/3"))
    assert response.url == site.url("/chain/3")
    assert response.final_url == site.url("/chain/0")
    assert response.redirects == tuple(site.url(f"/chain/{n}") for n in (3, 2, 1))
    assert response.text == "end of chain"


@pytest.mark.parametrize("where", ["request", "config"])
async def test_credentials_are_dropped_when_leaving_the_host(
    site: RunningSite, client: Client, where: str
) -> None:
    url = via_redirect(site, site.url("/echo", host=1))
    async with client(headers=SECRETS if where == "config" else None) as c:
        response = await c.fetch(Request(url, headers=SECRETS if where == "request" else None))
    received = {k.lower() for k in response.json()["headers"]}
    assert response.final_url == site.url("/echo", host=1)
    assert not received & {"authorization", "cookie", "proxy-authorization"}
    # The first hop did get them: the rule is about leaving, not about sending at all.
    first = {k.lower() for k in site.stats.headers["/redirect"]}
    assert {"authorization", "cookie", "proxy-authorization"} <= first


async def test_credentials_stay_on_the_same_host(site: RunningSite, client: Client) -> None:
    async with client() as c:
        response = await c.fetch(Request(via_redirect(site, "/echo"), headers=SECRETS))
    assert response.json()["headers"]["Authorization"] == "Bearer s3cret"


async def test_credentials_once_dropped_do_not_come_back(site: RunningSite, client: Client) -> None:
    back_home = via_redirect(site, site.url("/echo"))  # host 0 again, after host 1
    url = via_redirect(site, back_home.replace(site.bases[0], site.bases[1]))
    async with client() as c:
        response = await c.fetch(Request(url, headers=SECRETS))
    assert len(response.redirects) == 2
    assert "Authorization" not in response.json()["headers"]


@pytest.mark.parametrize(
    ("status", "method"), [(303, "GET"), (302, "GET"), (307, "POST"), (308, "POST")]
)
async def test_method_after_redirect(
    site: RunningSite, client: Client, status: int, method: str
) -> None:
    url = via_redirect(site, "/echo", status=status)
    async with client() as c:
        response = await c.fetch(Request(url, method="POST", json={"a": 1}))
    echoed = response.json()
    assert echoed["method"] == method
    assert (echoed["body"] == '{"a":1}') is (method == "POST")


async def test_relative_and_cross_host_locations(site: RunningSite, client: Client) -> None:
    async with client() as c:
        relative = await c.fetch(via_redirect(site, "page/7"))
        other = await c.fetch(via_redirect(site, site.url("/page/8", host=1)))
    assert relative.final_url == site.url("/page/7")
    assert other.final_url == site.url("/page/8", host=1)


@pytest.mark.parametrize("cookies", [False, True])  # the wire, and aiohttp's session
async def test_url_user_info_is_basic_auth_that_stays_with_its_origin(
    site: RunningSite, client: Client, cookies: bool
) -> None:
    def with_user(url: str) -> str:
        return url.replace("http://", "http://me:p%40ss@")

    async with client(cookies=cookies) as c:
        here = await c.fetch(with_user(via_redirect(site, "/echo")))
        away = await c.fetch(with_user(via_redirect(site, site.url("/echo", host=1))))
        # A Location's own user info is not used.
        sneaky = await c.fetch(via_redirect(site, with_user(site.url("/echo", host=1))))
    expected = "Basic " + base64.b64encode(b"me:p@ss").decode()
    assert here.json()["headers"]["Authorization"] == expected
    assert "Authorization" not in away.json()["headers"]
    assert "Authorization" not in sneaky.json()["headers"]


@pytest.mark.parametrize("trust_env", [True, False])
async def test_netrc_logins_with_trust_env(
    site: RunningSite,
    client: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login me password pw\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with client(trust_env=trust_env) as c:
        mine = await c.fetch(site.url("/echo"))
        own = await c.fetch(Request(site.url("/echo"), headers={"Authorization": "Bearer t"}))
        other = await c.fetch(site.url("/echo", host=1))  # 127.0.0.2: not in the file
    login = "Basic " + base64.b64encode(b"me:pw").decode()
    assert mine.json()["headers"].get("Authorization") == (login if trust_env else None)
    assert own.json()["headers"]["Authorization"] == "Bearer t"
    assert "Authorization" not in other.json()["headers"]
