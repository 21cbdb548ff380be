"""Fixtures of the HTTP tests: the test site on two loopback addresses, a client factory."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from conveyor.http import HttpClient
from conveyor.testing import RunningSite, make_app, run_site

# Fast retries: the tests check counts, never how long the waits were.
FAST = {"backoff": 0.01, "max_backoff": 0.05}


@pytest.fixture
async def site() -> AsyncIterator[RunningSite]:
    """The test site on 127.0.0.1 (host 0) and 127.0.0.2 (host 1): two hosts, one app."""
    async with run_site(("127.0.0.1", "127.0.0.2")) as running:
        yield running


@pytest.fixture
def client() -> Callable[..., AbstractAsyncContextManager[HttpClient]]:
    """``async with client(retries=...) as c`` with fast backoff unless told otherwise."""

    def make(**options: Any) -> AbstractAsyncContextManager[HttpClient]:
        return HttpClient(**{**FAST, **options})

    return make


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_for(condition: Callable[[], bool], *, limit: float = 10.0) -> None:
    """Poll ``condition`` (a counter of the site, say) until it holds."""
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def listing(directory: Path) -> list[str]:
    """File names in ``directory`` (sync on purpose: called from tests, not on hot paths)."""
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def https_base(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    """The test site over TLS on 127.0.0.1, with a self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    runner = web.AppRunner(make_app(), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    # The bound port from the socket: on aiohttp 3.10 site.name says the port asked, 0.
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
