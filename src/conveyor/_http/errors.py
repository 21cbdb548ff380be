"""The one place where the wire's, aiohttp's and the OS's exceptions become ``FetchError``s.

aiohttp's own (from the session used for cookies and ``trust_env``) are named in
``session.py``, so that a run on the wire never loads aiohttp.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

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
from .wire import AddressRefused, WireError


class AddressBlocked(Exception):
    """Raised by the guarded resolver; deliberately not an ``OSError``, so aiohttp lets it
    through unwrapped instead of reporting it as a DNS failure."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason})")
        self.host, self.address, self.reason = host, address, reason


# One message per kind of failure, whichever transport raised it.
_VERDICTS: dict[str, tuple[type[FetchError], str]] = {
    "connect-timeout": (FetchTimeout, "connect timeout for {url}"),
    "read-timeout": (FetchTimeout, "read timeout for {url} (no bytes for read_timeout)"),
    "timeout": (FetchTimeout, "timeout for {url}"),
    "tls": (TLSError, "TLS failed for {url}: {detail}"),
    "dns": (DNSError, "cannot resolve the host of {url}: {detail}"),
    "connect": (ConnectError, "cannot connect to {url}: {detail}"),
    "bad-url": (BadURL, "invalid URL {url}: {detail}"),
    # Disconnects, truncated payloads, malformed responses: the exchange broke.
    "reset": (ConnectionReset, "connection broken while fetching {url}: {detail}"),
}


def to_fetch_error(exc: BaseException, url: str) -> FetchError:
    """The ``FetchError`` for an exception raised while talking to ``url``."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, AddressBlocked | AddressRefused):
        return Blocked(f"block_private refused {url}: {exc}", url=url)
    error, message = _VERDICTS[_kind(exc)]
    return error(message.format(url=url, detail=str(exc) or type(exc).__name__), url=url)


def _kind(exc: BaseException) -> str:
    if isinstance(exc, WireError):
        return exc.kind
    if type(exc).__module__.partition(".")[0] == "aiohttp":
        from .session import aiohttp_kind  # loaded only with cookies or trust_env

        return aiohttp_kind(exc)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, OSError):
        return "reset"
    raise TypeError(f"not a fetch error: {exc!r}")  # pragma: no cover - a programming error


NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, AddressBlocked, WireError)
"""What an exchange through the wire may raise; the aiohttp session adds its own
(``session.ERRORS``)."""
