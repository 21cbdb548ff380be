"""``Pool``: keep-alive connections by origin (or proxy), and the route of each request.

One request: its origin's route (direct, or which proxy and how: ``proxy.ProxyRoutes``,
decided once per origin) -> its bytes (``head.Heads``, which checks every header) -> an
idle connection of that route, or a new one (``connect``: lookup, happy eyeballs, TLS,
a tunnel) -> the exchange (``wire.Connection``) until the head of the response is in.

Through a proxy, an ``http://`` request goes to the proxy in absolute form (``GET
http://host/path``) with the proxy's credentials, over connections shared by every origin
behind that proxy; an ``https://`` one goes through a ``CONNECT`` tunnel per origin, with
TLS to the origin inside it, so the proxy's credentials are said to the proxy alone.
``block_private`` still guards the origin: its name is looked up and checked here, and a
tunnel goes to the checked address (a plain ``http://`` request names the host, and the
proxy looks it up again: docs/http.md says so). The proxy itself may be anywhere: the
user named it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from yarl import URL

from .connect import Lookups, Resolve, authority, open_socket, open_tunnel, refusal
from .errors import ConnectFailed, ConnectTimeout, ProxyRefused
from .head import Heads
from .proxy import Proxy, ProxyRoutes
from .safety import Network, ip_literal
from .wire import Connection, Key, Response

KEEPALIVE = 15.0  # seconds an idle connection is kept (aiohttp's default too)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_MAX_ROUTES = 100_000

Origin = tuple[str, str, int]  # (scheme, host, port)


@dataclass(frozen=True, slots=True)
class Route:
    """How requests to one origin travel."""

    key: Key  # the connections they share
    host: str  # the origin's host and port
    port: int
    authority: str  # ``host[:port]``: the Host header, and the absolute target's
    proxy: Proxy | None = None
    tunnel: bool = False  # https through CONNECT
    prefix: str = ""  # ``http://authority`` before the path: the absolute form
    extra: bytes = b""  # the proxy's credentials, in a plain request's head


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
    """Keep-alive connections by route; opens one when none is idle.

    How many requests run at once is the client's business (``Limits``); the pool keeps
    at most ``max_idle`` idle connections (``idle_cap``), closing the longest idle first,
    and closes any idle for ``KEEPALIVE`` seconds.

    Args:
        agent_headers: the client's own headers (User-Agent, ...), under each request's.
        connect_timeout: seconds to open a connection: lookup aside, the race of a name's
            addresses, TLS and a proxy's tunnel together.
        verify_tls: check certificates.
        max_idle: idle connections kept at most.
        allowed: the networks ``block_private`` exempts; None: no ``block_private``.
        proxies: the proxy of each origin; None: every request goes direct.
        resolve: how names are looked up (default ``getaddrinfo``; tests give their own).
    """

    def __init__(
        self,
        *,
        agent_headers: Sequence[tuple[str, str]],
        connect_timeout: float | None,
        verify_tls: bool,
        max_idle: int,
        allowed: Sequence[Network] | None = None,
        proxies: ProxyRoutes | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self._heads = Heads(agent_headers)
        self._connect_timeout = connect_timeout
        self._verify_tls = verify_tls
        self._max_idle = max(1, max_idle)
        self._allowed = None if allowed is None else tuple(allowed)  # None: no block_private
        self._lookups = Lookups(self._allowed, resolve)
        self._proxies = proxies
        self._routes: dict[Origin, Route] = {}
        self._idle: dict[Key, list[Connection]] = {}
        self._idle_order: dict[Connection, None] = {}  # oldest first
        self._open: set[Connection] = set()
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
        route = self._routes.get(origin)
        if route is None:
            route = self._route(url, origin)
        target = url.raw_path_qs or "/"
        if route.prefix:
            target = route.prefix + target
            if self._allowed is not None:
                # The proxy connects by name: check the name here, on every request (the
                # connection is shared by every origin behind the proxy). Cached lookups.
                await self._lookups.addresses(route.host)
        payload = self._heads.payload(
            method, target, route.authority, tuple(headers), data, route.extra
        )
        while True:
            connection = self._take(route.key)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(route)
            response = Response(url, method, connection)
            connection.send(response, payload)
            try:
                while not response.head_done and response._error is None:
                    await response._wait()
            except BaseException:
                connection.close()  # cancelled mid-exchange: the connection is out of step
                raise
            if response._error is None:
                if response.status == 407 and route.prefix:
                    assert route.proxy is not None
                    response.release()
                    raise ProxyRefused(
                        refusal(route.proxy.label, f"{method} {target}", 407, response.reason,
                                route.proxy.authorization)
                    )  # fmt: skip
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
        self._idle.setdefault(connection.key, []).append(connection)
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
        await self._lookups.close()
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        self._idle_order.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost

    # -- routes ------------------------------------------------------------------------

    def _route(self, url: URL, origin: Origin) -> Route:
        scheme, host, port = origin
        where = self._heads.authority(host, port, url.is_default_port())
        proxy = self._proxies.choose(url) if self._proxies is not None else None
        if proxy is None:
            route = Route((scheme, host, port, ""), host, port, where)
        elif scheme == "https":
            route = Route((scheme, host, port, proxy.label), host, port, where, proxy, True)
        else:
            extra = b""
            if proxy.authorization is not None:
                extra = b"Proxy-Authorization: %s\r\n" % proxy.authorization.encode()
            key = ("http", proxy.host, proxy.port, proxy.label)
            route = Route(key, host, port, where, proxy, False, f"http://{where}", extra)
        if len(self._routes) > _MAX_ROUTES:
            self._routes.clear()
        self._routes[origin] = route
        return route

    # -- connections -------------------------------------------------------------------

    def _take(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            del self._idle_order[connection]
            if connection.usable():
                return connection
            connection.close()
        return None

    def _unidle(self, connection: Connection) -> None:
        del self._idle_order[connection]
        idle = self._idle.get(connection.key)
        if idle is not None:
            idle.remove(connection)
            if not idle:
                del self._idle[connection.key]

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

    async def _connect(self, route: Route) -> Connection:
        proxy = route.proxy
        if proxy is None:
            addresses = await self._lookups.addresses(route.host)
            port, via = route.port, ""
        else:
            addresses = await self._lookups.addresses(proxy.host, checked=False)
            port, via = proxy.port, f" through the proxy {proxy.label}"
        target = authority(route.host, route.port)
        if route.tunnel and self._allowed is not None and ip_literal(route.host) is None:
            # The tunnel goes to the very address checked, not to a name the proxy would
            # look up again (TLS still checks the certificate against the name).
            checked = await self._lookups.addresses(route.host)
            target = authority(str(checked[0][1][0]), route.port)
        try:
            async with asyncio.timeout(self._connect_timeout):
                sock = await open_socket(addresses, port)
                try:
                    connection = await self._over(sock, route, target)
                except BaseException:
                    sock.close()  # no transport took it (or the one that did is gone)
                    raise
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to {target}{via} within connect_timeout={self._connect_timeout} s"
            ) from None
        except ConnectFailed as exc:
            if proxy is None:
                raise
            raise ConnectFailed(f"the proxy {proxy.label}: {exc}") from exc
        except ssl.SSLError:
            raise  # a TLS failure, not a connection one (errors.py says so)
        except OSError as exc:
            raise ConnectFailed(f"{target}{via}: {exc}") from exc
        self._open.add(connection)
        return connection

    async def _over(self, sock: socket.socket, route: Route, target: str) -> Connection:
        """The connection on a connected socket: TLS for https, through a tunnel when the
        route has one."""
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if route.key[0] == "https" else None
        hostname = route.host if tls is not None else None
        if not route.tunnel:
            _, connection = await loop.create_connection(
                lambda: Connection(self, route.key), sock=sock, ssl=tls, server_hostname=hostname
            )
            return connection
        proxy = route.proxy
        assert proxy is not None
        assert tls is not None
        transport = await open_tunnel(sock, target, proxy.label, proxy.authorization)
        connection = Connection(self, route.key)
        try:
            secure = await loop.start_tls(transport, connection, tls, server_hostname=hostname)
        except BaseException:
            transport.abort()
            raise
        assert secure is not None
        connection.connection_made(secure)  # start_tls does not call it
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context()
            if not self._verify_tls:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls
