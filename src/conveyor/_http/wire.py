"""One HTTP/1.1 exchange on a connection: an asyncio protocol whose responses llhttp
(``httptools``, the parser uvicorn uses) parses, and the response as it arrives.

Why not aiohttp's ``ClientSession``: on loopback against nginx, one request and response
through ``ClientSession.request`` costs ~145 us of CPU; the same exchange here ~25 us
(``benchmarks/README.md``, section *pages*). Everything the session does above the wire,
``HttpClient`` already does itself -- redirects hop by hop, timeouts (``Deadlines``),
limits, decompression under ``max_bytes`` (``body``), retries -- and ``pool.Pool`` keeps
the connections, so what is left here is one exchange at a time per connection.

What a hostile server cannot do here: make the client keep more than ``MAX_HEAD_BYTES``
of anything but body (a head, and after it trailers and chunk extensions: trailers are
read and dropped), send bytes nobody asked for (the connection is closed), hand a second
response to the next request, or switch protocols.

The response object has the few members of aiohttp's ``ClientResponse`` the client uses
(``status``, ``reason``, ``headers``, ``url``, ``content_length``, ``content.total_bytes``,
``content.iter_any()``, ``read()``, ``connection``, ``release()``), so the client reads
both the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .errors import BadResponse, ServerDisconnected

# The most bytes that may come with no body byte among them: a status line and headers,
# or trailers and chunk extensions between two body bytes. Past it the connection breaks.
MAX_HEAD_BYTES = 256 * 1024
HIGH_WATER = 1024 * 1024  # body bytes buffered before a streamed read pauses the socket

# Connections are shared within one key: (scheme, host, port, via). Direct: the origin,
# via "". A tunnel: the origin, via the proxy's label. Plain http through a proxy:
# ("http", proxy host, proxy port, the proxy's label), shared by every origin behind it.
Key = tuple[str, str, int, str]


class Keeper(Protocol):
    """What a connection tells the pool that keeps it (``pool.Pool``)."""

    def give_back(self, connection: Connection) -> None: ...

    def forget(self, connection: Connection) -> None: ...


class Response:
    """One response as it arrives: the head at once, the body as it is read."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_complete",
        "_error",
        "_paused",
        "_streaming",
        "_until_eof",
        "_waiter",
        "answered",
        "connection",
        "content_length",
        "head_done",
        "headers",
        "method",
        "reason",
        "status",
        "total_bytes",
        "url",
    )

    def __init__(self, url: URL, method: str, connection: Connection) -> None:
        self.url = url
        self.method = method
        self.status = 0
        self.reason = ""
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.content_length: int | None = None
        self.total_bytes = 0  # body bytes off the wire: how ``Deadlines`` sees progress
        self.connection: Connection | None = connection  # None once the body is all in
        self.head_done = False
        self.answered = False  # any byte of the answer arrived
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._complete = False
        self._streaming = False
        self._paused = False
        self._until_eof = False  # a body with neither length nor chunks ends with the socket

    @property
    def content(self) -> Response:
        """The body stream (aiohttp's name for it): ``total_bytes`` and ``iter_any()``."""
        return self

    async def read(self) -> bytes:
        """The whole body (the client calls this only for bodies of a checked length)."""
        if self._paused:
            self._resume()
        while not self._complete and self._error is None:
            await self._wait()
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        self._chunks = []
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def iter_any(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in the pieces it arrives in (joined when several wait)."""
        self._streaming = True
        while True:
            if self._chunks:
                chunks, self._chunks, self._buffered = self._chunks, [], 0
                if self._paused:
                    self._resume()
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif self._error is not None:
                raise self._error
            elif self._complete:
                return
            else:
                await self._wait()

    def release(self) -> None:
        """Give up on an unread body: the connection cannot carry another request."""
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()

    async def wait_for_close(self) -> None:
        """Nothing to wait for (aiohttp's ``ClientResponse`` has this)."""

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        size = len(chunk)
        self.total_bytes += size
        if self._streaming:
            self._buffered += size
            if self._buffered > HIGH_WATER and not self._paused and self.connection is not None:
                self._paused = True
                self.connection.pause()
            self._wake()

    def _resume(self) -> None:
        self._paused = False
        if self.connection is not None:
            self.connection.resume()

    def _finish(self) -> None:
        self._complete = True
        self.connection = None
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._complete or self._error is not None:
            return
        self._error = error
        self.connection = None
        self._wake()


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class Connection(asyncio.Protocol):
    """One keep-alive connection: at most one exchange at a time (no pipelining)."""

    def __init__(self, pool: Keeper, key: Key) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        # As lax as aiohttp's response parser is (and browsers are) with servers that
        # break the grammar harmlessly: control bytes in header values, a bare LF for CRLF,
        # spaces after a chunk's size. Nothing that changes where a message ends.
        self.parser.set_dangerous_leniencies(
            lenient_headers=True,
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
        )
        self.response: Response | None = None  # the exchange in progress
        self.reusable = True
        self.lost = False
        self.idle_since = 0.0
        self._since_body = 0  # bytes received since the last body byte (or the request)
        self._reason = b""
        self._headers: list[tuple[str, str]] = []
        self._informational = False
        self._trailers = False  # the head is in: header callbacks now are trailers

    # -- driven by the pool ------------------------------------------------------------

    def send(self, response: Response, payload: bytes) -> None:
        self.response = response
        self._since_body = 0
        assert self.transport is not None
        self.transport.write(payload)

    def usable(self) -> bool:
        transport = self.transport
        return (
            self.reusable and not self.lost and transport is not None and not transport.is_closing()
        )

    def pause(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        """Close now, dropping anything unsent or unread (the exchange is over or given up)."""
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            # Bytes nobody asked for: the server is out of step with us.
            self.close()
            return
        response.answered = True
        # Anything but body is bounded: the head, and after it trailers and chunk
        # extensions, which llhttp reads without end (a server streaming trailer lines
        # would otherwise hold the connection until read_timeout: they are not progress).
        # A body byte resets the count, so the bound is this cap plus one read.
        self._since_body += len(data)
        if self._since_body > MAX_HEAD_BYTES:
            what = (
                "of trailers or chunk extensions came without a body byte"
                if response.head_done
                else "of response head came (the head is over the limit)"
            )
            self._broken(BadResponse(f"over {MAX_HEAD_BYTES} bytes {what}"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._broken(BadResponse("the server switched protocols, which was not asked for"))
        except httptools.HttpParserError as exc:
            self._broken(BadResponse(f"malformed response: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.reusable = False
        self.pool.forget(self)
        response, self.response = self.response, None
        if response is None:
            return
        if exc is None and response.head_done and response._until_eof:
            response._finish()  # the body was delimited by the end of the connection
            return
        if not response.head_done:
            message = "the server closed the connection before answering"
        else:
            message = f"the server closed the connection mid-body ({response.total_bytes} bytes in)"
        if exc is not None:
            message += f": {exc}"
        response._fail(ServerDisconnected(message))

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.response is None:
            self.reusable = False  # a second response to one request
        self._reason = b""
        self._headers = []
        self._trailers = False

    def on_status(self, text: bytes) -> None:
        self._reason += text  # llhttp may hand it over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._trailers:
            return  # trailers are not used (aiohttp, urllib3 and h11 drop them too)
        # As aiohttp decodes them: UTF-8, any other byte kept as a surrogate.
        self._headers.append(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        )

    def on_headers_complete(self) -> None:
        response = self.response
        status = self.parser.get_status_code()
        if status < 200:
            self._informational = True  # 100 Continue, 103 Early Hints: the answer follows
            return
        self._trailers = True
        if response is None:
            return
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
        self._headers = []
        response.status = status
        response.reason = self._reason.decode("latin-1")
        response.headers = headers
        response.head_done = True
        length = headers.get("Content-Length")
        if length is not None:
            try:
                response.content_length = int(length)
            except ValueError:
                response.content_length = None
        if response.method == "HEAD":
            # No body follows, whatever the headers announce; llhttp cannot be told so,
            # so this connection is not reused.
            self.reusable = False
            self.response = None
            response._finish()
            self.close()
            return
        response._until_eof = (
            length is None
            and status not in (204, 304)
            and "chunked" not in headers.get("Transfer-Encoding", "").lower()
        )
        response._wake()

    def on_body(self, chunk: bytes) -> None:
        self._since_body = 0
        response = self.response
        if response is not None:
            response._feed(chunk)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        response, self.response = self.response, None
        if response is None:
            return
        keep = self.reusable and self.parser.should_keep_alive()
        response._finish()
        if keep:
            self.pool.give_back(self)
        else:
            self.close()

    def _broken(self, error: Exception) -> None:
        response, self.response = self.response, None
        self.close()
        if response is not None:
            response._fail(error)
