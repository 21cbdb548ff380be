"""Fetching through forward proxies: a real one (proxy.py, started here on 127.0.0.1, with
and without credentials), and raw-socket ones that answer themselves, count what they see,
or refuse CONNECT."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from yarl import URL

from conveyor._errors import Blocked, DNSError, ProxyError, TLSError, UsageError
from conveyor._http.errors import ProxyRefused
from conveyor._http.proxy import ProxyRoutes, parse_proxy
from conveyor._http.safety import AddressRefused, parse_networks
from conveyor.testing import RunningSite

from .raw import RawServer, dns, make_client, ok, open_pool, raw_server

CREDENTIALS = "conveyor:s3cret"


def start_proxy_py(folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    """proxy.py on 127.0.0.1, a port of its choosing: one acceptor, one worker."""
    port_file = folder / "port"
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
         "--port-file", str(port_file), "--num-acceptors", "1", "--num-workers", "1",
         "--data-dir", str(folder), "--log-level", "ERROR", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):  # bounded: 30 s for a start on a busy machine
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text.isdigit():
            return process, int(text)
        if process.poll() is not None:
            raise RuntimeError(f"proxy.py exited with {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("proxy.py did not start")


@pytest.fixture(scope="module")
def proxies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two proxy.py servers, started together: open, and one that wants CREDENTIALS.
    Yields their URLs (the second without the credentials)."""
    open_dir, auth_dir = tmp_path_factory.mktemp("proxy"), tmp_path_factory.mktemp("proxy-auth")
    started = [start_proxy_py(open_dir), start_proxy_py(auth_dir, "--basic-auth", CREDENTIALS)]
    try:
        yield tuple(f"http://127.0.0.1:{port}" for _, port in started)  # type: ignore[misc]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def with_credentials(url: str, credentials: str = CREDENTIALS) -> str:
    return url.replace("http://", f"http://{credentials}@")


# -- a real proxy -----------------------------------------------------------------------


async def test_http_and_https_through_a_real_proxy(
    proxies: tuple[str, str], site: RunningSite, https_base: str
) -> None:
    async with make_client(proxy=proxies[0], retries=0, verify_tls=False) as client:
        plain = await client.fetch(site.url("/echo?via=proxy"))
        secure = await client.fetch(https_base + "/echo")
    assert plain.status == secure.status == 200
    assert plain.json()["query"] == {"via": "proxy"}
    assert plain.json()["headers"]["Host"] == site.url("/").split("/")[2]
    assert secure.json()["method"] == "GET"
    # TLS runs end to end with the origin, through the tunnel: its certificate is checked.
    async with make_client(proxy=proxies[0], retries=0) as client:
        with pytest.raises(TLSError):
            await client.fetch(https_base + "/echo")


async def test_a_proxy_that_wants_credentials(
    proxies: tuple[str, str], site: RunningSite, https_base: str
) -> None:
    guarded = proxies[1]
    async with make_client(proxy=with_credentials(guarded), retries=0, verify_tls=False) as c:
        plain = await c.fetch(site.url("/echo"))
        secure = await c.fetch(https_base + "/echo")
    for response in (plain, secure):
        assert response.status == 200
        # The proxy's credentials are said to the proxy alone, never to the origin.
        assert "Proxy-Authorization" not in response.json()["headers"]
    for proxy, words in ((guarded, "wants credentials"), (with_credentials(guarded, "x:y"),
                                                          "refused the credentials")):  # fmt: skip
        async with make_client(proxy=proxy, retries=0, verify_tls=False) as c:
            for url in (site.url("/echo"), https_base + "/echo"):
                with pytest.raises(ProxyError, match=words) as caught:
                    await c.fetch(url)
                assert caught.value.kind == "proxy"
                assert "s3cret" not in str(caught.value)


# -- raw proxies ------------------------------------------------------------------------


@asynccontextmanager
async def raw_proxy(name: bytes, *, refuse_connect: int = 0) -> AsyncIterator[RawServer]:
    """A proxy that answers every plain request itself with its ``name`` (and records the
    heads), and answers CONNECT with ``refuse_connect`` (403, 407, ...)."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        if head.startswith(b"CONNECT"):
            status = refuse_connect or 403
            writer.write(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % status)
            return False
        writer.write(ok(name, b"Content-Type: text/html"))
        return True

    async with raw_server(answer) as server:
        yield server


async def test_a_refused_connect_is_kind_proxy_not_reset() -> None:
    async with raw_proxy(b"P", refuse_connect=403) as proxy:
        async with make_client(proxy=proxy.base, retries=2) as client:
            with pytest.raises(ProxyError) as caught:
                await client.fetch("https://origin.test/page")
    assert caught.value.kind == "proxy"
    assert "403" in str(caught.value)
    assert caught.value.attempts == 1  # proxy is not among the kinds retried by default
    assert proxy.heads == [b"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n"]


async def test_hosts_are_spread_over_proxies_each_host_staying_on_one() -> None:
    async with raw_proxy(b"A") as a, raw_proxy(b"B") as b:
        proxies = [a.base, with_credentials(b.base, "user:pw")]
        async with make_client(proxy=proxies, concurrency=4) as client:
            seen: dict[str, set[bytes]] = {}
            for round_ in range(3):
                for host in range(16):
                    url = f"http://host-{host}.test/p{round_}?q=1"
                    response = await client.fetch(url)
                    seen.setdefault(f"host-{host}.test", set()).add(response.body)
    assert all(len(names) == 1 for names in seen.values())  # one proxy per host
    assert {name for names in seen.values() for name in names} == {b"A", b"B"}
    assert len(a.heads) + len(b.heads) == 48
    assert a.heads[0].startswith(b"GET http://host-")  # the absolute form
    assert b"\r\nHost: host-" in a.heads[0]
    assert all(b"Proxy-Authorization" not in head for head in a.heads)
    credentials = base64.b64encode(b"user:pw")
    assert all(b"\r\nProxy-Authorization: Basic %s\r\n" % credentials in h for h in b.heads)
    assert a.connections + b.connections <= 4 + 2  # connections to a proxy are kept


async def test_proxies_and_no_proxy_from_the_environment_with_trust_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with (
        raw_proxy(b"env") as plain,
        raw_proxy(b"-", refuse_connect=403) as tunnels,
        raw_server(lambda r, w, n, h: _direct(w)) as origin,
    ):
        monkeypatch.setenv("HTTP_PROXY", plain.base)
        monkeypatch.setenv("HTTPS_PROXY", tunnels.base)
        monkeypatch.setenv("NO_PROXY", "localhost, 127.0.0.1")
        async with make_client(trust_env=True, retries=0) as client:
            assert (await client.fetch("http://name.test/")).body == b"env"
            with pytest.raises(ProxyError):
                await client.fetch("https://name.test/")
            assert (await client.fetch(f"{origin.base}/direct")).body == b"direct"
        async with make_client(retries=0) as client:  # without trust_env: no proxy
            with pytest.raises(DNSError):
                await client.fetch("http://name.test/")
    assert plain.heads[0].startswith(b"GET http://name.test/ HTTP/1.1\r\n")
    assert tunnels.heads[0].startswith(b"CONNECT name.test:443 ")
    assert origin.heads[0].startswith(b"GET /direct HTTP/1.1\r\n")


async def _direct(writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(b"direct"))
    return True


async def test_block_private_guards_the_origin_not_the_proxy_the_user_named() -> None:
    async with raw_proxy(b"P") as proxy:  # on 127.0.0.1: loopback, yet named by the user
        options = {"proxy": proxy.base, "block_private": True, "retries": 0}
        async with make_client(allow_networks=["127.0.0.2/32"], **options) as client:
            assert (await client.fetch("http://127.0.0.2/allowed")).body == b"P"
            with pytest.raises(Blocked):
                await client.fetch("http://127.0.0.3/refused")
    assert len(proxy.heads) == 1


async def test_block_private_checks_origin_names_behind_a_proxy() -> None:
    async with raw_proxy(b"P", refuse_connect=403) as proxy:
        options = {
            "allowed": parse_networks(["127.0.0.2/32"]),
            "proxies": ProxyRoutes([parse_proxy(proxy.base)]),
        }
        async with open_pool(resolve=dns("10.0.0.1"), **options) as pool:
            for url in ("http://inside.test/", "https://inside.test/"):
                with pytest.raises(AddressRefused):
                    await pool.request("GET", URL(url))
        assert proxy.heads == []  # refused before anything went to the proxy
        async with open_pool(resolve=dns("127.0.0.2"), **options) as allowed:
            with pytest.raises(ProxyRefused, match="403"):
                await allowed.request("GET", URL("https://allowed.test/"))
    # The tunnel was asked for the very address checked, not for a name to look up again.
    assert proxy.heads[0].startswith(b"CONNECT 127.0.0.2:443 HTTP/1.1\r\n")


async def test_with_cookies_the_session_goes_through_the_proxy_too() -> None:
    async with raw_proxy(b"via session") as proxy:
        async with make_client(proxy=with_credentials(proxy.base, "u:p"), cookies=True) as c:
            response = await c.fetch("http://name.test/page")
    assert response.body == b"via session"
    assert proxy.heads[0].startswith(b"GET http://name.test/page HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p") in proxy.heads[0]


def test_proxy_options_are_checked_when_the_config_is_built() -> None:
    with pytest.raises(UsageError, match="only http:// proxies") as caught:
        make_client(proxy="https://user:secret@proxy.test:443")
    assert "secret" not in str(caught.value)
    with pytest.raises(UsageError, match="block_private"):
        make_client(proxy="http://p.test:3128", block_private=True, cookies=True)
