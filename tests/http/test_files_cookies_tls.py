"""Bodies saved to files, cookie jars, TLS verification."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from conveyor._errors import DNSError, TLSError, TooLarge
from conveyor.http import HttpClient
from conveyor.testing import RunningSite

from .conftest import listing

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]


async def test_save_to_streams_into_the_directory(
    site: RunningSite, client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    async with client(save_to=out) as c:
        plain = await c.fetch(site.url("/bytes/300000"))
        packed = await c.fetch(site.url("/compressed/gzip"))
    assert plain.body == b""
    assert plain.path is not None
    assert plain.path.parent == out.resolve()
    assert plain.path.read_bytes() == b"z" * 300000
    assert packed.json()["hello"] == "world"  # decoded before it was written
    assert plain.__conveyor_record__()["path"] == str(plain.path)


@pytest.mark.parametrize(
    "path", ["/page/..%2F..%2F..%2Fetc%2Fpasswd", "/page/%2e%2e%2f%2e%2e%2fescape", "/page/.bashrc"]
)
async def test_save_to_never_writes_outside(
    site: RunningSite, client: Client, tmp_path: Path, path: str
) -> None:
    out = tmp_path / "out"
    async with client(save_to=out) as c:
        response = await c.fetch(site.url(path))
    assert response.path is not None
    assert response.path.parent == out.resolve()
    assert listing(tmp_path) == ["out"]


async def test_save_to_leaves_nothing_after_a_failure(
    site: RunningSite, client: Client, tmp_path: Path
) -> None:
    async with client(save_to=tmp_path, max_bytes=2_000_000) as c:
        with pytest.raises(TooLarge):
            await c.fetch(site.url("/endless"))
    assert listing(tmp_path) == []


async def test_error_pages_stay_in_memory(
    site: RunningSite, client: Client, tmp_path: Path
) -> None:
    async with client(save_to=tmp_path) as c:
        response = await c.fetch(site.url("/status/404"))
    assert response.path is None
    assert response.text == "status"
    assert listing(tmp_path) == []


@pytest.mark.parametrize("cookies", [False, True])
async def test_cookies_only_when_asked(site: RunningSite, client: Client, cookies: bool) -> None:
    async with client(cookies=cookies) as c:
        await c.fetch(site.url("/cookies/set"))
        seen = (await c.fetch(site.url("/cookies/get"))).json()
    assert seen == ({"session": "s3cret"} if cookies else {})


async def test_self_signed_certificate_is_refused_by_default(
    https_base: str, client: Client
) -> None:
    async with client(retries=0) as c:
        with pytest.raises(TLSError):
            await c.fetch(https_base + "/page/1")


async def test_verify_tls_off_accepts_it(https_base: str, client: Client) -> None:
    async with client(verify_tls=False) as c:
        assert (await c.fetch(https_base + "/page/1")).status == 200


@pytest.mark.parametrize("trust_env", [True, False])
async def test_proxies_come_from_the_environment_only_with_trust_env(
    site: RunningSite, client: Client, monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    # The site on 127.0.0.2 plays a forward proxy: aiohttp sends it the absolute URL.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", site.bases[1])
    async with client(retries=0, trust_env=trust_env) as c:
        if trust_env:
            response = await c.fetch("http://through-the-proxy.invalid/echo")
            assert response.json()["headers"]["Host"] == "through-the-proxy.invalid"
        else:
            with pytest.raises(DNSError):
                await c.fetch("http://through-the-proxy.invalid/echo")
