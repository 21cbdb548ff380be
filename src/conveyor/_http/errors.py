"""The exchange's own failures, and the one place where they, aiohttp's and the OS's
exceptions become ``FetchError``s.

The wire (``wire.py``, ``connect.py``) raises the ``WireError`` subclasses below, each
naming its kind. aiohttp's own exceptions (from the session used for cookies) are named in
``session.py``, loaded only when one of them is met, so that a run on the wire never loads
aiohttp. Imports point one way: this module imports ``safety`` and, lazily, ``session``;
neither imports it back.
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
    ProxyError,
    TLSError,
)
from .safety import AddressRefused


class WireError(Exception):
    """An exchange that failed below HTTP; ``kind`` is what ``to_fetch_error`` makes of it."""

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


class ProxyRefused(WireError):
    """The proxy answered CONNECT with anything but 2xx, or asked for credentials (407)."""

    kind = "proxy"


# One message per kind of failure, whichever transport raised it.
_VERDICTS: dict[str, tuple[type[FetchError], str]] = {
    "connect-timeout": (FetchTimeout, "connect timeout for {url}"),
    "read-timeout": (FetchTimeout, "read timeout for {url} (no bytes for read_timeout)"),
    "timeout": (FetchTimeout, "timeout for {url}"),
    "tls": (TLSError, "TLS failed for {url}: {detail}"),
    "dns": (DNSError, "cannot resolve the host of {url}: {detail}"),
    "connect": (ConnectError, "cannot connect to {url}: {detail}"),
    "bad-url": (BadURL, "invalid URL {url}: {detail}"),
    "proxy": (ProxyError, "the proxy refused {url}: {detail}"),
    # Disconnects, truncated payloads, malformed responses: the exchange broke.
    "reset": (ConnectionReset, "connection broken while fetching {url}: {detail}"),
}


def to_fetch_error(exc: BaseException, url: str) -> FetchError:
    """The ``FetchError`` for an exception raised while talking to ``url``."""
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, AddressRefused):
        return Blocked(f"block_private refused {url}: {exc}", url=url)
    error, message = _VERDICTS[_kind(exc)]
    return error(message.format(url=url, detail=str(exc) or type(exc).__name__), url=url)


def _kind(exc: BaseException) -> str:
    if isinstance(exc, WireError):
        return exc.kind
    if type(exc).__module__.partition(".")[0] == "aiohttp":
        from .session import aiohttp_kind  # loaded only with cookies

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


NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, AddressRefused, WireError)
"""What an exchange through the wire may raise; the aiohttp session adds its own
(``session.ERRORS``)."""
