"""The one place where the wire's, aiohttp's and the OS's exceptions become ``FetchError``s.

Order matters: aiohttp's classes inherit from several bases (``ClientConnectorSSLError``
is a connector error *and* an ``ssl.SSLError``; ``SocketTimeoutError`` is a connection
error *and* a ``TimeoutError``), so the most specific verdicts come first.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp

from .._errors import (
    BadURL,
    Blocked,
    ConnectError,
    ConnectionReset,
    DNSError,
    FetchError,
    FetchTimeout,
    TLSError,
)
from .wire import (
    AddressRefused,
    BadResponse,
    ConnectFailed,
    ConnectTimeout,
    DNSFailed,
    ServerDisconnected,
    WireError,
)


class AddressBlocked(Exception):
    """Raised by the guarded resolver; deliberately not an ``OSError``, so aiohttp lets it
    through unwrapped instead of reporting it as a DNS failure."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")
        self.host, self.address, self.reason = host, address, reason


def to_fetch_error(exc: BaseException, url: str) -> FetchError:
    """The ``FetchError`` for an exception raised while talking to ``url``."""
    if isinstance(exc, FetchError):
        return exc
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, AddressBlocked | AddressRefused):
        return Blocked(f"block_private refused {url}: {exc}", url=url)
    if isinstance(exc, WireError):
        return _wire_error(exc, url, detail)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FetchTimeout(f"connect timeout for {url}", url=url)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return FetchTimeout(f"read timeout for {url} (no bytes for read_timeout)", url=url)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return FetchTimeout(f"timeout for {url}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return TLSError(f"TLS failed for {url}: {detail}", url=url)
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS failed for {url}: {detail}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or (
        isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, socket.gaierror)
    ):
        return DNSError(f"cannot resolve the host of {url}: {detail}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"cannot connect to {url}: {detail}", url=url)
    if isinstance(exc, aiohttp.InvalidURL):
        return BadURL(f"invalid URL {url}: {detail}", url=url)
    if isinstance(exc, aiohttp.ClientError | OSError):
        # Disconnects, truncated payloads, malformed responses: the exchange broke.
        return ConnectionReset(f"connection broken while fetching {url}: {detail}", url=url)
    raise TypeError(f"not a fetch error: {exc!r}")  # pragma: no cover - a programming error


def _wire_error(exc: WireError, url: str, detail: str) -> FetchError:
    if isinstance(exc, ConnectTimeout):
        return FetchTimeout(f"connect timeout for {url}", url=url)
    if isinstance(exc, DNSFailed):
        return DNSError(f"cannot resolve the host of {url}: {detail}", url=url)
    if isinstance(exc, ConnectFailed):
        return ConnectError(f"cannot connect to {url}: {detail}", url=url)
    assert isinstance(exc, ServerDisconnected | BadResponse)
    return ConnectionReset(f"connection broken while fetching {url}: {detail}", url=url)


NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, AddressBlocked, WireError)
