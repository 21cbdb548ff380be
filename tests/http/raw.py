"""A raw socket server that writes exact bytes, for the wire's tests (``test_wire.py``,
``test_hostile.py``, ``test_proxy.py``).

The aiohttp test site speaks well-formed HTTP; these servers do what real ones sometimes
do, and what hostile ones do on purpose.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from conveyor._http.connect import Address, Resolve
from conveyor._http.pool import Pool
from conveyor.http import HttpClient

from .conftest import FAST


def make_client(**options: Any) -> HttpClient:
    return HttpClient(**{**FAST, **options})


Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int, bytes], Awaitable[bool]]


@dataclass
class RawServer:
    """Counts what it saw; ``answer(reader, writer, n, head)`` writes the n-th response
    (0-based over the whole server) and says whether to keep the connection."""

    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    open_now: int = 0
    heads: list[bytes] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def raw_server(
    answer: Answer, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RawServer]:
    state = RawServer(host=host)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                    return
                length = _content_length(head)
                if length:
                    head += await reader.readexactly(length)
                state.heads.append(head)
                if not await answer(reader, writer, len(state.heads) - 1, head):
                    return
        finally:
            state.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def ok(body: bytes = b"hello", *extra: bytes) -> bytes:
    headers = b"".join(line + b"\r\n" for line in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


def written(*responses: bytes, keep: bool = True) -> Answer:
    """Always the same bytes, written in pieces (``responses`` one after another)."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        for piece in responses:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.001)  # a separate segment each: the parser sees pieces
        return keep

    return answer


def dns(*hosts: str) -> Resolve:
    """A name server for the tests: every name has these addresses, in this order."""

    async def resolve(name: str) -> list[Address]:
        return [(socket.AF_INET, (host, 0)) for host in hosts]

    return resolve


@asynccontextmanager
async def open_pool(*, connect_timeout: float = 5.0, **options: Any) -> AsyncIterator[Pool]:
    """The wire's pool on its own (no client above it), closed afterwards."""
    pool = Pool(
        agent_headers=(), connect_timeout=connect_timeout, verify_tls=True, max_idle=4, **options
    )
    try:
        yield pool
    finally:
        await pool.close()
