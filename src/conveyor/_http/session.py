"""The aiohttp session: the client's transport for what the wire does not carry.

With ``cookies=True`` (a cookie jar across requests), exchanges go through an
``aiohttp.ClientSession`` instead of ``pool.Pool``; it answers with the same few response
members. This module is loaded only then, so a run on the wire never imports aiohttp
(~0.12 s of start-up in every process).

The client decides what aiohttp would otherwise decide for itself, so that both transports
behave alike: the proxy of each request (``proxy.ProxyRoutes``, the environment's too with
``trust_env``: the session's own ``trust_env`` stays off) and the credentials from
``.netrc``. The request headers are checked by ``head.check_headers``, as the wire
checks them, before aiohttp writes them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import aiohttp
from aiohttp.resolver import DefaultResolver
from yarl import URL

from .config import FetchConfig
from .head import check_headers
from .proxy import ProxyRoutes
from .resolver import GuardedResolver
from .safety import Network

ERRORS = (aiohttp.ClientError,)  # raised by an exchange, besides the OS's own


class SessionTransport:
    """``request`` and ``close`` as ``wire.Pool`` has them, over one aiohttp session."""

    def __init__(
        self,
        cfg: FetchConfig,
        allowed: tuple[Network, ...],
        headers: dict[str, str],
        proxies: ProxyRoutes | None = None,
    ) -> None:
        check_headers(list(headers.items()), where="the client's headers")
        self._proxies = proxies
        self._checked: set[Any] = set()  # header sets already checked
        resolver: aiohttp.abc.AbstractResolver = DefaultResolver()
        if cfg.block_private:
            resolver = GuardedResolver(resolver, allowed)
        connector = aiohttp.TCPConnector(
            limit=cfg.concurrency,
            limit_per_host=0,
            ssl=cfg.verify_tls,
            resolver=resolver,
        )
        jar: aiohttp.abc.AbstractCookieJar = (
            aiohttp.CookieJar(unsafe=True) if cfg.cookies else aiohttp.DummyCookieJar()
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=jar,
            # timeout and read_timeout are kept by Deadlines, with no timer per request.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout),
            auto_decompress=False,  # body.py decodes, under max_bytes
            trust_env=False,  # proxies and .netrc are the client's (see above)
            # Sent with every request unless the request names them itself. Nothing
            # sensitive goes here: a redirect to another host must be able to drop
            # credentials, and it can drop only what each request passes.
            # (With a User-Agent here, aiohttp adds none of its own.)
            headers=headers,
        )

    async def request(
        self, method: str, url: URL, headers: Any = (), data: Any = None
    ) -> aiohttp.ClientResponse:
        if headers not in self._checked:
            check_headers(headers, where="request headers")
            if len(self._checked) > 1024:
                self._checked.clear()
            self._checked.add(headers)
        proxy = self._proxies.choose(url) if self._proxies is not None else None
        if proxy is None:
            return await self._session.request(
                method, url, headers=headers, data=data, allow_redirects=False
            )
        tunnel: dict[str, str] = {}
        if proxy.authorization is not None:
            # aiohttp says proxy_headers only to CONNECT; a plain request carries the
            # proxy's credentials itself (it goes to the proxy, which takes them off).
            if url.scheme == "https":
                tunnel["Proxy-Authorization"] = proxy.authorization
            else:
                headers = (*headers, ("Proxy-Authorization", proxy.authorization))
        return await self._session.request(
            method,
            url,
            headers=headers,
            data=data,
            allow_redirects=False,
            proxy=proxy.label,
            proxy_headers=tunnel,
        )

    async def close(self) -> None:
        await self._session.close()


def aiohttp_kind(exc: BaseException) -> str:
    """What one of aiohttp's exceptions is, as ``errors.to_fetch_error`` names kinds. Order
    matters: its classes inherit from several bases (``ClientConnectorSSLError`` is a
    connector error *and* an ``ssl.SSLError``; ``SocketTimeoutError`` is a connection error
    *and* a ``TimeoutError``), so the most specific verdicts come first."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect-timeout"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "read-timeout"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or (
        isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror)
    ):
        return "dns"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return "proxy"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, aiohttp.InvalidURL):
        return "bad-url"
    return "reset"
