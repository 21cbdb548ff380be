"""The HTTP/1.1 exchange itself: keep-alive connection pools on asyncio protocols, each
response parsed by llhttp (``httptools``, the parser uvicorn uses).

Why not aiohttp's ``ClientSession``: on loopback against nginx, one request and response
through ``ClientSession.request`` costs ~145 us of CPU; the same exchange here ~25 us
(``benchmarks/README.md``, section *pages*). Everything the session does above the wire,
``HttpClient`` already does itself -- redirects hop by hop, timeouts (``Deadlines``),
limits, decompression under ``max_bytes`` (``body``), retries -- so what is left here is
small: connect (DNS cached for ``DNS_TTL``, TLS), write the request, parse the response,
keep the connection for the next request to the same origin. aiohttp still serves the two
things this does not carry, cookies and ``trust_env`` (proxies and .netrc from the
environment): ``HttpClient`` picks it for those.

The response object has the few members of aiohttp's ``ClientResponse`` the client uses
(``status``, ``reason``, ``headers``, ``url``, ``content_length``, ``content.total_bytes``,
``content.iter_any()``, ``read()``, ``connection``, ``release()``), so the client reads
both the same way.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast
from urllib.parse import urlencode

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .safety import Network, address_refusal, ip_literal

KEEPALIVE = 15.0  # seconds an idle connection is kept (aiohttp's default too)
DNS_TTL = 10.0  # seconds a name's addresses are reused (aiohttp's default too)
MAX_HEAD_BYTES = 256 * 1024  # a status line and headers longer than this are refused
HIGH_WATER = 1024 * 1024  # body bytes buffered before a streamed read pauses the socket
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Origin = tuple[str, str, int]  # (scheme, host, port): connections are shared within one


class WireError(Exception):
    """An exchange that failed below HTTP; ``kind`` is what ``errors.to_fetch_error``
    makes of it."""

    kind = "reset"


class DNSFailed(WireError):
    """The host's name did not resolve."""

    kind = "dns"


class ConnectFailed(WireError):
    """No connection could be opened (refused, unreachable, reset while opening)."""

    kind = "connect"


class ConnectTimeout(WireError):
    """No connection within ``connect_timeout``."""

    kind = "connect-timeout"


class ServerDisconnected(WireError):
    """The server closed the connection before the response ended."""


class BadResponse(WireError):
    """The bytes that came back are not an HTTP/1.x response."""


class AddressRefused(WireError):
    """``block_private``: the name resolves to an address that is not allowed."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")


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

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
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
        self._head_bytes = 0
        self._reason = b""
        self._headers: list[tuple[str, str]] = []
        self._informational = False

    # -- driven by the pool ------------------------------------------------------------

    def send(self, response: Response, payload: bytes) -> None:
        self.response = response
        self._head_bytes = 0
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
        if not response.head_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._broken(BadResponse(f"the response head is over {MAX_HEAD_BYTES} bytes"))
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

    def on_status(self, text: bytes) -> None:
        self._reason += text  # llhttp may hand it over in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
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
        if response is None:
            return
        headers = CIMultiDictProxy(CIMultiDict(self._headers))
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

    def _broken(self, error: WireError) -> None:
        response, self.response = self.response, None
        self.close()
        if response is not None:
            response._fail(error)


def idle_cap(concurrency: int) -> int:
    """How many idle connections to keep: twice ``concurrency`` (at least 256), so that a
    job cycling over many hosts finds its connections again (an eviction of the longest
    idle is exactly wrong for a cycle longer than the pool), within half the process's
    file descriptors after those its requests in flight need."""
    wanted = max(2 * concurrency, 256)
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not Unix
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(concurrency // 2, 1, min(wanted, soft // 2 - concurrency))


class Pool:
    """Keep-alive connections by origin; opens one when none is idle.

    How many requests run at once is the client's business (``Limits``); the pool keeps
    at most ``max_idle`` idle connections (``idle_cap``), closing the longest idle first,
    and closes any idle for ``KEEPALIVE`` seconds.
    """

    def __init__(
        self,
        *,
        agent_headers: Sequence[tuple[str, str]],
        connect_timeout: float | None,
        verify_tls: bool,
        max_idle: int,
        allowed: Sequence[Network] | None = None,
    ) -> None:
        self._agent_headers = tuple(agent_headers)
        self._connect_timeout = connect_timeout
        self._verify_tls = verify_tls
        self._max_idle = max(1, max_idle)
        self._allowed = None if allowed is None else tuple(allowed)  # None: no block_private
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_order: dict[Connection, None] = {}  # oldest first
        self._open: set[Connection] = set()
        self._host_lines: dict[Origin, bytes] = {}
        self._head_blocks: dict[tuple[tuple[str, str], ...], tuple[bytes, bool]] = {}
        self._dns: dict[str, tuple[float, list[tuple[int, str]]]] = {}
        self._resolving: dict[str, asyncio.Task[list[tuple[int, str]]]] = {}
        self._tls: ssl.SSLContext | None = None
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        url: URL,
        headers: Sequence[tuple[str, str]] = (),
        data: bytes | Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; return once the response's head is in (the body follows)."""
        origin: Origin = (url.scheme, url.raw_host or "", url.port or 0)
        payload = self._payload(method, url, origin, tuple(headers), data)
        while True:
            connection = self._take(origin)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(origin)
            response = Response(url, method, connection)
            connection.send(response, payload)
            try:
                while not response.head_done and response._error is None:
                    await response._wait()
            except BaseException:
                connection.close()  # cancelled mid-exchange: the connection is out of step
                raise
            if response._error is None:
                return response
            if reused and not response.answered and method in IDEMPOTENT:
                # An idle connection the server had closed as we sent: a fresh one, once
                # per stale connection (each is gone after this), as browsers do.
                continue
            raise response._error

    def give_back(self, connection: Connection) -> None:
        if self._closed or not connection.usable():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        self._idle_order[connection] = None
        if len(self._idle_order) > self._max_idle:
            oldest = next(iter(self._idle_order))
            self._unidle(oldest)
            oldest.close()
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(KEEPALIVE / 3, self._close_stale)

    def forget(self, connection: Connection) -> None:
        """The connection is gone (closed by either side)."""
        self._open.discard(connection)
        if connection in self._idle_order:
            self._unidle(connection)

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for lookup in list(self._resolving.values()):
            lookup.cancel()
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        self._idle_order.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost

    # -- connections -------------------------------------------------------------------

    def _take(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            del self._idle_order[connection]
            if connection.usable():
                return connection
            connection.close()
        return None

    def _unidle(self, connection: Connection) -> None:
        del self._idle_order[connection]
        idle = self._idle.get(connection.origin)
        if idle is not None:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.origin]

    def _close_stale(self) -> None:
        self._sweep = None
        cutoff = time.monotonic() - KEEPALIVE
        for connection in list(self._idle_order):
            if connection.idle_since > cutoff:
                break  # the rest went idle later
            self._unidle(connection)
            connection.close()
        if self._idle_order and not self._closed:
            self._sweep = asyncio.get_running_loop().call_later(KEEPALIVE / 3, self._close_stale)

    async def _connect(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        addresses = await self._addresses(host, port)
        tls = self._tls_context() if scheme == "https" else None
        failure: OSError | None = None
        for family, address in addresses:
            try:
                async with asyncio.timeout(self._connect_timeout):
                    _, connection = await loop.create_connection(
                        lambda: Connection(self, origin),
                        address,
                        port,
                        family=family,
                        ssl=tls,
                        server_hostname=host if tls is not None else None,
                    )
            except TimeoutError:
                raise ConnectTimeout(
                    f"no connection to {host}:{port} within connect_timeout="
                    f"{self._connect_timeout} s"
                ) from None
            except ssl.SSLError:
                raise  # a TLS failure, not a connection one (errors.py says so)
            except OSError as exc:
                failure = exc
                continue
            self._open.add(connection)
            return connection
        raise ConnectFailed(str(failure) or type(failure).__name__) from failure

    async def _addresses(self, host: str, port: int) -> list[tuple[int, str]]:
        """Where ``host`` is, cached for ``DNS_TTL``; one lookup at a time per name."""
        literal = ip_literal(host)
        if literal is not None:
            # IP literals are checked by the client on every hop (block_private).
            return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, host)]
        cached = self._dns.get(host)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lookup = self._resolving.get(host)
        if lookup is None:
            # A task of its own, shared by every request for this name meanwhile: one of
            # them cancelled (a timeout) does not cancel the others' lookup.
            lookup = asyncio.get_running_loop().create_task(self._resolve(host, port))
            self._resolving[host] = lookup
            lookup.add_done_callback(lambda done: self._resolved(host, done))
        return await asyncio.shield(lookup)

    def _resolved(self, host: str, lookup: asyncio.Task[list[tuple[int, str]]]) -> None:
        self._resolving.pop(host, None)
        if lookup.cancelled() or lookup.exception() is not None:
            return  # the exception is each waiter's (and retrieved here if none waits)
        if len(self._dns) > 100_000:
            self._dns.clear()  # a crawl over many names: keep the cache bounded
        self._dns[host] = (time.monotonic() + DNS_TTL, lookup.result())

    async def _resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DNSFailed(f"{host}: {exc.strerror or exc}") from None
        addresses: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            entry = (int(family), str(sockaddr[0]))
            if entry not in addresses:
                addresses.append(entry)
        if self._allowed is not None:
            # Checked on the addresses we then connect to, so a second lookup cannot see
            # another answer (DNS rebinding); one refused address refuses the name.
            for _, address in addresses:
                reason = address_refusal(address, self._allowed)
                if reason is not None:
                    raise AddressRefused(host, address, reason)
        if not addresses:
            raise DNSFailed(f"{host}: no addresses")
        return addresses

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context()
            if not self._verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls

    # -- the request's bytes -----------------------------------------------------------

    def _payload(
        self,
        method: str,
        url: URL,
        origin: Origin,
        headers: tuple[tuple[str, str], ...],
        data: bytes | Mapping[str, str] | None,
    ) -> bytes:
        block, names_host = self._head_block(headers)
        host_line = b"" if names_host else self._host_line(url, origin)
        target = url.raw_path_qs or "/"
        head = b"%s %s HTTP/1.1\r\n%s%s" % (method.encode(), target.encode(), host_line, block)
        if data is None:  # a method made to carry a body says it has none
            return head + (b"Content-Length: 0\r\n\r\n" if method in BODY_METHODS else b"\r\n")
        extra = b""
        if isinstance(data, Mapping):
            body = urlencode(list(data.items())).encode()
            if not any(name.lower() == "content-type" for name, _ in headers):
                extra = b"Content-Type: application/x-www-form-urlencoded\r\n"
        else:
            body = bytes(data)
        return head + b"%sContent-Length: %d\r\n\r\n" % (extra, len(body)) + body

    def _host_line(self, url: URL, origin: Origin) -> bytes:
        line = self._host_lines.get(origin)
        if line is None:
            host = origin[1]
            if ":" in host:
                host = f"[{host}]"  # an IPv6 literal
            if not url.is_default_port():
                host = f"{host}:{origin[2]}"
            line = self._host_lines[origin] = b"Host: %s\r\n" % host.encode("ascii")
        return line

    def _head_block(self, headers: tuple[tuple[str, str], ...]) -> tuple[bytes, bool]:
        """The header lines for these request headers over the client's own (built once
        per distinct set), and whether they name the Host themselves."""
        cached = self._head_blocks.get(headers)
        if cached is None:
            merged = {name.lower(): (name, value) for name, value in self._agent_headers}
            merged.setdefault("accept", ("Accept", "*/*"))
            for name, value in headers:
                merged[name.lower()] = (name, value)
            block = b"".join(f"{name}: {value}\r\n".encode() for name, value in merged.values())
            cached = (block, "host" in merged)
            if len(self._head_blocks) > 1024:
                self._head_blocks.clear()  # per-request headers that differ every time
            self._head_blocks[headers] = cached
        return cached
