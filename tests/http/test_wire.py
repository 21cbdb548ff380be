"""The wire (``_http/wire.py``) against a raw socket server that writes exact bytes.

The aiohttp test site speaks well-formed HTTP; these servers do what real ones sometimes
do: answer HTTP/1.0 with no length, send 1xx first, close a kept-alive connection just as
the next request goes out, send garbage or endless headers, answer twice.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from yarl import URL

from conveyor._http.connect import Address, Lookups
from conveyor._http.pool import Pool, idle_cap
from conveyor.http import FetchError, Request

from .conftest import wait_for
from .raw import Answer, make_client, ok, raw_server, written


async def test_chunked_body_in_pieces() -> None:
    chunked = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhello\r\n",
        b"6\r\n, worl\r\n1\r\nd\r\n",
        b"0\r\n\r\n",
    ]
    async with raw_server(written(*chunked)) as server, make_client() as client:
        first = await client.fetch(f"{server.base}/a")
        second = await client.fetch(f"{server.base}/b")
    assert first.body == second.body == b"hello, world"
    assert server.connections == 1  # the connection was kept for the second request


async def test_body_delimited_by_the_end_of_the_connection() -> None:
    answer = written(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"up to ", b"EOF", keep=False
    )
    async with raw_server(answer) as server, make_client() as client:
        responses = [await client.fetch(f"{server.base}/{i}") for i in range(3)]
    assert [r.body for r in responses] == [b"up to EOF"] * 3
    assert server.connections == 3  # none of them could be reused


async def test_truncated_body_is_a_broken_connection_and_is_retried() -> None:
    answer = written(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this", keep=False)
    async with raw_server(answer) as server, make_client(retries=2) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(f"{server.base}/")
    assert caught.value.kind == "reset"
    assert caught.value.attempts == 3
    assert "mid-body" in str(caught.value)
    assert len(server.heads) == 3


async def test_head_has_no_body_whatever_it_announces() -> None:
    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        else:
            writer.write(ok(b"the body"))
        return True

    async with raw_server(answer) as server, make_client() as client:
        head = await client.fetch(Request(f"{server.base}/", method="HEAD"))
        get = await client.fetch(f"{server.base}/")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "5000")
    assert get.body == b"the body"


async def test_informational_responses_come_before_the_answer() -> None:
    answer = written(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        ok(b"final", b"X-Which: last"),
    )
    async with raw_server(answer) as server, make_client() as client:
        first = await client.fetch(f"{server.base}/")
        second = await client.fetch(f"{server.base}/")
    for response in (first, second):
        assert (response.status, response.body, response.headers["X-Which"]) == (
            200,
            b"final",
            "last",
        )
        assert "Link" not in response.headers


def closes_reused_connections(state: dict[str, int]) -> Answer:
    """Answers the first request on each connection; closes on the second without a word,
    as a server does whose keep-alive timer fired as the request went out."""

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        peer = writer.get_extra_info("peername")
        seen = state.get(str(peer), 0)
        state[str(peer)] = seen + 1
        if seen:
            return False
        writer.write(ok(b"fresh"))
        return True

    return answer


async def test_a_stale_kept_connection_is_replaced_without_an_attempt() -> None:
    async with raw_server(closes_reused_connections({})) as server:
        async with make_client(retries=0) as client:
            bodies = [(await client.fetch(f"{server.base}/{i}")).body for i in range(4)]
            # Each later request met a closed connection first, then a fresh one.
        assert bodies == [b"fresh"] * 4
        assert server.connections == 4


async def test_a_stale_connection_is_not_replayed_for_a_post() -> None:
    async with raw_server(closes_reused_connections({})) as server:
        async with make_client(retries=0) as client:
            first = await client.fetch(Request(f"{server.base}/", method="POST", data=b"one"))
            with pytest.raises(FetchError) as caught:
                await client.fetch(Request(f"{server.base}/", method="POST", data=b"two"))
    assert first.body == b"fresh"
    assert caught.value.kind == "reset"
    assert [h.endswith(b"two") for h in server.heads] == [False, True]  # sent once, not twice


async def test_garbage_is_a_broken_connection() -> None:
    async with (
        raw_server(written(b"HELLO THERE\r\n\r\n", keep=False)) as server,
        make_client(retries=0) as client,
    ):
        with pytest.raises(FetchError) as caught:
            await client.fetch(f"{server.base}/")
    assert caught.value.kind == "reset"
    assert "malformed response" in str(caught.value)


async def test_endless_headers_are_refused() -> None:
    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(100_000):  # ~3 MB of headers, bounded
            writer.write(b"X-Filler-%d: %s\r\n" % (i, b"x" * 20))
            if i % 1000 == 0:
                try:
                    await writer.drain()
                except ConnectionError:
                    return False
        return False

    async with raw_server(answer) as server, make_client(retries=0) as client:
        with pytest.raises(FetchError) as caught:
            await client.fetch(f"{server.base}/")
    assert caught.value.kind == "reset"
    assert "head is over" in str(caught.value)


async def test_a_second_unasked_response_spoils_only_its_connection() -> None:
    answer = written(ok(b"asked") + ok(b"not asked"))
    async with raw_server(answer) as server, make_client(retries=0) as client:
        bodies = [(await client.fetch(f"{server.base}/{i}")).body for i in range(3)]
    assert bodies == [b"asked"] * 3
    assert server.connections == 3


async def test_kept_connections_one_per_request_in_flight_and_bounded_when_idle() -> None:
    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, head: bytes
    ) -> bool:
        await asyncio.sleep(0.01)
        writer.write(ok(b"x" * 100))
        return True

    async with (
        raw_server(answer) as one,
        raw_server(answer) as two,
        raw_server(answer) as three,
        make_client(concurrency=4, per_host=4) as client,
    ):
        for _ in range(3):
            await asyncio.gather(*(client.fetch(f"{one.base}/{i}") for i in range(12)))
        # Never more than `concurrency` requests out, so never more connections than that.
        assert one.connections <= 4

    pool = Pool(agent_headers=(), connect_timeout=5, verify_tls=True, max_idle=4)
    async with raw_server(answer) as one, raw_server(answer) as two, raw_server(answer) as three:

        async def get(url: str) -> bytes:
            return await (await pool.request("GET", URL(url))).read()

        await asyncio.gather(*(get(f"{s.base}/{i}") for s in (one, two, three) for i in range(4)))
        # Idle connections kept: `max_idle` at most, the longest idle closed first.
        await wait_for(lambda: one.open_now + two.open_now + three.open_now <= 4)
        await pool.close()


def test_the_idle_cap_leaves_room_in_the_file_descriptors() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    for concurrency in (1, 100, 500, 5000):
        cap = idle_cap(concurrency)
        assert cap >= 1
        if soft != resource.RLIM_INFINITY and concurrency < soft // 4:
            assert concurrency + cap <= soft // 2 or cap == max(concurrency // 2, 1)


async def test_request_bytes_host_header_and_body() -> None:
    async with raw_server(written(ok())) as server:
        async with make_client(headers={"X-Run": "r"}) as client:
            await client.fetch(f"{server.base}/path%20x?q=1#fragment")
            await client.fetch(Request(f"{server.base}/form", method="POST", data={"a": "1 2"}))
            await client.fetch(Request(f"{server.base}/put", method="PUT"))
            await client.fetch(Request(f"{server.base}/own", headers={"Host": "example.test"}))
    get, form, put, own = server.heads
    assert get.startswith(b"GET /path%20x?q=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:%d\r\n" % server.port in get
    assert b"\r\nX-Run: r\r\n" in get
    assert b"\r\nAccept-Encoding: gzip, deflate, br\r\n" in get
    assert form.endswith(b"\r\n\r\na=1+2")
    assert b"Content-Type: application/x-www-form-urlencoded" in form
    assert b"\r\nContent-Length: 0\r\n" in put
    assert b"Host: example.test" in own
    assert b"127.0.0.1" not in own


async def test_repeated_and_undecodable_headers_are_kept() -> None:
    answer = written(ok(b"", b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"X-Bytes: caf\xe9"))
    async with raw_server(answer) as server, make_client() as client:
        response = await client.fetch(f"{server.base}/")
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Bytes"].encode("utf-8", "surrogateescape") == b"caf\xe9"


async def test_a_name_is_looked_up_once_and_a_cancelled_asker_leaves_the_others_theirs() -> None:
    lookups = 0

    async def slow_lookup(host: str) -> list[Address]:  # no DNS in tests
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.05)
        return [(socket.AF_INET, ("127.0.0.1", 0))]

    names = Lookups(None, slow_lookup)
    askers = [asyncio.create_task(names.addresses("name.test")) for _ in range(3)]
    await asyncio.sleep(0.01)
    askers[0].cancel()  # say, its request timed out
    assert await askers[1] == await askers[2] == [(socket.AF_INET, ("127.0.0.1", 0))]
    assert askers[0].cancelled()
    assert await names.addresses("name.test") == [(socket.AF_INET, ("127.0.0.1", 0))]  # cached
    assert lookups == 1
    await names.close()


async def test_lookups_still_running_end_with_their_owner() -> None:
    started = asyncio.Event()

    async def endless_lookup(host: str) -> list[Address]:
        started.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    names = Lookups(None, endless_lookup)
    asker = asyncio.create_task(names.addresses("slow.test"))
    await started.wait()
    (lookup,) = names._running.values()
    await names.close()  # cancels and awaits its lookups: none outlives the pool
    assert lookup.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await asker  # its asker, shielded from it, is told it ended


async def test_harmless_grammar_slips_are_read_as_aiohttp_and_browsers_read_them() -> None:
    answer = written(
        b"HTTP/1.1 200 OK\nContent-Type: text/plain\nX-Odd: a\x01b\n"
        b"Transfer-Encoding: chunked\n\n5  \r\nhello\r\n0\r\n\r\n"
    )
    async with raw_server(answer) as server, make_client(retries=0) as client:
        response = await client.fetch(f"{server.base}/")
    assert (response.status, response.body) == (200, b"hello")
    assert response.headers["Content-Type"] == "text/plain"
