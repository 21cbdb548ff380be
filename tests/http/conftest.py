"""Fixtures of the HTTP tests: the test site on two loopback addresses, a client factory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from conveyor.http import HttpClient
from conveyor.testing import RunningSite, run_site

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
