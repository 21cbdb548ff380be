"""One host identity: the key everything that means "this server" uses.

``host_key(url)`` is ``host:port`` with the host lower-cased, IDNA-encoded (punycode) and
without a trailing dot, IPv6 in brackets, and the port always written, the scheme's
default made explicit. So ``http://127.0.0.3/p1``, ``HTTP://127.0.0.3:80/p2``,
``http://bücher.example./`` and ``http://xn--bcher-kva.example:80/`` each name one server,
and ``http://h/`` (``h:80``) and ``https://h/`` (``h:443``) two.

It is the key of loop routing (each host has one owner), per-host limits and pacing, the
report's host table, the per-host hint and Ray's shard slicing; one function, so that two
spellings of one server can never get two owners (and twice the per-host limit).

Routing asks it of every input URL, so the common spelling (ASCII, no user info, no IPv6
literal) is read with a few string splits; anything else goes through yarl, as the
client's own parse does, and is cached by its text.
"""

from __future__ import annotations

import functools
from typing import Any

from yarl import URL

DEFAULT_PORTS = {"http": 80, "https": 443}
_SLOW = frozenset("@[%\\")  # user info, IPv6 literals, escapes, backslashes: parse fully


def host_key(url: str | URL | Any) -> str:
    """The host identity of a URL, a yarl ``URL`` or a ``Request`` (its ``url``).

    A text that is no URL (no ``scheme://``) is its own key: it fails in the client, and
    until then it routes somewhere stable.
    """
    if isinstance(url, URL):
        return _from_url(url)
    text = url if type(url) is str else str(getattr(url, "url", url))
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop, 0, end)
        if found >= 0:
            end = found
    netloc = rest[:end]
    host, colon, port = netloc.rpartition(":")
    if not colon:
        host, port = netloc, ""
    if (
        not host
        or not netloc.isascii()
        or host.endswith(".")
        or (port and not port.isdigit())
        or not _SLOW.isdisjoint(netloc)
    ):
        return _parsed(scheme, netloc)
    scheme = scheme.lower()
    if port:
        return f"{host.lower()}:{int(port)}"
    default = DEFAULT_PORTS.get(scheme)
    return f"{host.lower()}:{default}" if default else host.lower()


def _from_url(url: URL) -> str:
    host = (url.raw_host or "").rstrip(".")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = url.port
    return f"{host}:{port}" if port is not None else host


@functools.lru_cache(maxsize=4096)
def _parsed(scheme: str, netloc: str) -> str:
    """The key of an unusual spelling, through yarl (what the client connects to)."""
    try:
        return _from_url(URL(f"{scheme.lower()}://{netloc}/"))
    except (ValueError, TypeError):
        return f"{scheme}://{netloc}"  # unparsable: fails in the client, routes stably
