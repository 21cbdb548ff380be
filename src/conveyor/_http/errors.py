"""The one place where the wire's, aiohttp's and the OS's exceptions become ``FetchError``s.

aiohttp's own (from the session used for cookies and ``trust_env``) are named in
``session.py``, so that a run on the wire never loads aiohttp.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from .._errors import (
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
    if type(exc).__module__.partition(".")[0] == "aiohttp":
        from .session import aiohttp_fetch_error  # loaded only with cookies or trust_env

        return aiohttp_fetch_error(exc, url, detail)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return FetchTimeout(f"timeout for {url}", url=url)
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS failed for {url}: {detail}", url=url)
    if isinstance(exc, socket.gaierror):
        return DNSError(f"cannot resolve the host of {url}: {detail}", url=url)
    if isinstance(exc, OSError):
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


NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, AddressBlocked, WireError)
"""What an exchange through the wire may raise; the aiohttp session adds its own
(``session.ERRORS``)."""
