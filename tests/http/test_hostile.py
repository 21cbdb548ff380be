"""The wire against hostile and careless servers, each case a raw socket writing exact bytes:
trailer floods, header injection through the client's own headers, framing headers from
the caller, a first address that never answers, sizes announced for bodies that never
come, bodies that are not what their encoding says.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from yarl import URL

from conveyor._errors import DecodeError, UsageError
from conveyor._http.errors import ConnectFailed, ConnectTimeout
from conveyor._http.pool import Pool
from conveyor.http import FetchError, FetchTimeout, Request

from .raw import Answer, dns, make_client, ok, open_pool, raw_server, written

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def streamed(*pieces: bytes, repeat: bytes = b"", times: int = 0, then: bytes = b"") -> Answer:
    """``pieces``, then ``repeat`` written ``times`` times (drained every 1,000), then
    ``then``; stops quietly when the client has gone."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        try:
            writer.write(b"".join(pieces))
            for i in range(times):
                writer.write(repeat)
                if i % 1000 == 0:
                    await writer.drain()
            writer.write(then)
            await writer.drain()
        except ConnectionError:
            return False
        return True

    return answer


# -- 1. trailers and other bytes that are not body --------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        # one chunk, then 1.6 MB of trailer lines
        streamed(CHUNKED, b"5\r\nhello\r\n0\r\n", repeat=b"a:b\r\n", times=320_000, then=b"\r\n"),
        # one trailer value of 1 MiB
        streamed(
            CHUNKED, b"5\r\nhello\r\n0\r\nX-Big: ", repeat=b"v" * 1024, times=1024, then=b"\r\n\r\n"
        ),
        # a chunk extension of 1 MiB
        streamed(CHUNKED, b"5;e=", repeat=b"x" * 1024, times=1024, then=b"\r\nhello\r\n0\r\n\r\n"),
    ],
    ids=["trailer-lines", "trailer-value", "chunk-extension"],
)
async def test_bytes_without_a_body_byte_are_capped(answer: Answer) -> None:
    async with raw_server(answer) as server, make_client(retries=0) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(f"{server.base}/")
    assert caught.value.kind == "reset"
    assert "without a body byte" in str(caught.value)


async def test_trailers_are_dropped_and_the_connection_kept() -> None:
    answer = written(CHUNKED, b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")
    async with raw_server(answer) as server, make_client() as client:
        first = await client.fetch(f"{server.base}/a")
        second = await client.fetch(f"{server.base}/b")
    for response in (first, second):
        assert response.body == b"hello"
        assert "X-Trailer" not in response.headers
    assert server.connections == 1


async def test_trailer_bytes_do_not_keep_the_read_timeout_alive() -> None:
    async def trickle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        writer.write(CHUNKED + b"5\r\nhello\r\n0\r\n")
        try:
            for i in range(2000):  # one short trailer line every 10 ms: under the cap
                writer.write(b"X-T-%d: v\r\n" % i)
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        return False

    async with raw_server(trickle) as server, make_client(retries=0, read_timeout=0.3) as client:
        with pytest.raises(FetchTimeout, match="read timeout"):
            await client.fetch(f"{server.base}/")


# -- 2. what goes on the wire is checked where it is written ----------------------------


async def test_a_line_break_in_the_user_agent_never_reaches_the_wire() -> None:
    async with raw_server(written(ok())) as server:
        with pytest.raises(UsageError, match="user_agent"):
            async with make_client(user_agent="x\r\nX-Injected: 1") as client:
                await client.fetch(f"{server.base}/")
    assert server.heads == []


@pytest.mark.parametrize(
    "header",
    [
        ("X-Value", "a\r\nX-Injected: 1"),
        ("X-Value", "a\nX-Injected: 1"),
        ("X-Value", "nul\x00byte"),
        ("X-Value", "bell\x07"),
        ("X Injected", "1"),
        ("X-Injected:", "1"),
        ("Content-Length", "0"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
    ],
)
async def test_the_wire_refuses_what_may_not_be_sent_whatever_the_path(
    header: tuple[str, str],
) -> None:
    async with raw_server(written(ok())) as server:
        # The friendly check, where a Request is made ...
        with pytest.raises(UsageError):
            Request(f"{server.base}/", headers=[header])
        # ... and the guarantee, where the bytes are written: a Request whose headers were
        # put past its checks, and the pool itself, with its own headers or the request's.
        sneaked = Request(f"{server.base}/")
        object.__setattr__(sneaked, "headers", (header,))
        async with make_client(retries=0) as client:
            with pytest.raises(UsageError, match="request headers"):
                await client.fetch(sneaked)
        with pytest.raises(UsageError, match="the client's headers"):
            Pool(agent_headers=[header], connect_timeout=5, verify_tls=True, max_idle=4)
        async with open_pool() as pool:
            with pytest.raises(UsageError, match="request headers"):
                await pool.request("GET", URL(f"{server.base}/"), headers=[header])
    assert server.heads == []  # nothing was sent


async def test_a_body_gets_one_content_length_the_clients() -> None:
    async with raw_server(written(ok())) as server:
        with pytest.raises(UsageError, match="Content-Length"):
            Request(
                f"{server.base}/", method="POST", data=b"hello", headers={"Content-Length": "0"}
            )
        async with make_client() as client:
            await client.fetch(Request(f"{server.base}/", method="POST", data=b"hello"))
    (head,) = server.heads
    assert head.lower().count(b"content-length") == 1
    assert head.endswith(b"Content-Length: 5\r\n\r\nhello")


# -- 3. a silent first address ----------------------------------------------------------


@contextmanager
def silent_listener(host: str, port: int) -> Iterator[None]:
    """A port on ``host`` that takes no connection and refuses none: a listener whose
    accept queue is full drops each new SYN, as a firewall that drops packets does."""
    listener = socket.socket()
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):  # bounded: the queue of a listen(0) holds one
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_silent_first_address_does_not_end_the_fetch() -> None:
    async with raw_server(written(ok(b"from the second")), host="127.0.0.6") as good:
        with silent_listener("127.0.0.5", good.port):
            async with open_pool(resolve=dns("127.0.0.5", "127.0.0.6")) as pool:
                response = await pool.request("GET", URL(f"http://dual.test:{good.port}/"))
                assert await response.read() == b"from the second"
    assert good.heads[0].startswith(b"GET / HTTP/1.1\r\nHost: dual.test:")


async def test_connect_fails_only_when_every_address_has(closed_port: int) -> None:
    url = URL(f"http://dual.test:{closed_port}/")
    async with open_pool(resolve=dns("127.0.0.1", "127.0.0.1")) as refusing:
        with pytest.raises(ConnectFailed):
            await refusing.request("GET", url)
    with silent_listener("127.0.0.5", closed_port), silent_listener("127.0.0.6", closed_port):
        async with open_pool(connect_timeout=0.6, resolve=dns("127.0.0.5", "127.0.0.6")) as silent:
            with pytest.raises(ConnectTimeout):
                await silent.request("GET", url)


# -- 4. sizes announced for bodies that never come --------------------------------------


async def test_head_204_and_304_are_not_refused_by_their_content_length() -> None:
    huge = b"Content-Length: 100000000\r\n"

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\n" + huge + b"\r\n")
        elif b"/not-modified" in head:
            writer.write(b"HTTP/1.1 304 Not Modified\r\n" + huge + b"\r\n")
        elif b"/no-content" in head:
            writer.write(b"HTTP/1.1 204 No Content\r\n" + huge + b"\r\n")
        else:
            writer.write(ok(b"next"))
        return True

    async with raw_server(answer) as server, make_client(max_bytes=1000, retries=0) as client:
        head = await client.fetch(Request(f"{server.base}/big.iso", method="HEAD"))
        not_modified = await client.fetch(f"{server.base}/not-modified")
        no_content = await client.fetch(f"{server.base}/no-content")
        after = await client.fetch(f"{server.base}/after")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "100000000")
    assert (not_modified.status, not_modified.body) == (304, b"")
    assert (no_content.status, no_content.body) == (204, b"")
    assert after.body == b"next"


# -- 5. bodies that are not what their encoding says ------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_a_corrupt_encoded_body_is_kind_decode_and_retried_by_kind(encoding: str) -> None:
    garbage = b"\xff" * 64  # no valid gzip, zlib, raw deflate or brotli stream starts so
    answer = written(ok(garbage, b"Content-Encoding: " + encoding.encode()))
    async with raw_server(answer) as server:
        async with make_client(retries=0) as client:
            with pytest.raises(DecodeError) as caught:
                await client.fetch(f"{server.base}/")
        assert caught.value.kind == "decode"
        assert encoding in str(caught.value)
        async with make_client(retries=2, retry_kinds={"decode"}) as client:
            with pytest.raises(DecodeError) as again:
                await client.fetch(f"{server.base}/")
    assert again.value.attempts == 3
    assert len(server.heads) == 1 + 3


async def test_url_user_info_is_sent_as_basic_auth_not_in_the_request_line() -> None:
    async with raw_server(written(ok())) as server, make_client() as client:
        await client.fetch(f"http://user:p%40ss@127.0.0.1:{server.port}/private")
        own = Request(
            f"http://user:pw@127.0.0.1:{server.port}/own", headers={"Authorization": "Bearer t"}
        )
        await client.fetch(own)
    first, second = server.heads
    expected = base64.b64encode(b"user:p@ss").decode()
    assert first.startswith(b"GET /private HTTP/1.1\r\n")
    assert f"\r\nAuthorization: Basic {expected}\r\n".encode() in first
    assert b"user" not in first.split(b"\r\n")[0] + first.split(b"\r\n")[1]  # line and Host
    assert b"\r\nAuthorization: Bearer t\r\n" in second
    assert second.count(b"Authorization") == 1
