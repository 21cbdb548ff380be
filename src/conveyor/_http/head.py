"""The request head: the one place that writes a request's bytes, so the one place that
checks them.

Every header name must be a token and every value free of CR, LF, NUL and the other
control characters (RFC 9110 5.1, 5.5): one line break in a value is a header of the
caller's choosing on the wire (``User-Agent: x\\r\\nX-Injected: 1``), or a request of its
own. Framing is the client's: ``Content-Length`` comes from the body and keep-alive is the
pool's business, so a caller's ``Content-Length``, ``Transfer-Encoding`` or
``Connection`` is refused (a second Content-Length beside ours is how requests are
smuggled). ``config.normalise_headers`` asks the same questions when a ``Request`` or a
``FetchConfig`` is built, for an early error; this module is the guarantee, for every
path: the wire builds each head here, and the aiohttp session (cookies) checks its
headers here before it sends them.

The checks run once per distinct set of headers (the blocks are cached by it), so a run
whose requests share their headers pays for them once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from .._errors import UsageError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
FRAMING = {
    "content-length": "the client writes it from the body",
    "transfer-encoding": "the client sends bodies with a Content-Length",
    "connection": "the client keeps connections alive itself",
}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Tab is allowed in a value (RFC 9110 5.5); bytes 0x80 and up are obs-text, allowed too.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
_MAX_CACHED = 1024  # distinct header sets kept built (per-request headers differ every time)

Headers = tuple[tuple[str, str], ...]


def header_problem(name: object, value: object) -> str | None:
    """Why this header may not be sent (a sentence), or None when it may."""
    if not isinstance(name, str) or not isinstance(value, str):
        return f"header names and values must be str, got {name!r}: {value!r}"
    if not _TOKEN.fullmatch(name):
        return (
            f"header name {name!r} is not a token "
            "(letters, digits and !#$%&'*+-.^_`|~ only, no spaces or colons)"
        )
    if _CONTROL.search(value):
        return f"header {name!r} holds a line break, NUL or other control character: {value!r}"
    why = FRAMING.get(name.lower())
    if why is not None:
        return f"header {name!r} is not yours to send ({why}); drop it"
    return None


def check_headers(headers: Sequence[tuple[object, object]], *, where: str) -> None:
    """Raise ``UsageError`` naming ``where`` for the first header that may not be sent."""
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is not None:
            raise UsageError(f"{where}: {problem}")


def check_target(method: str, target: str) -> None:
    """The request line's two words: a token, and a target of visible ASCII."""
    if method not in _METHODS and not _TOKEN.fullmatch(method):
        raise UsageError(f"method {method!r} is not a token")
    if not (target.isascii() and target.isprintable()) or " " in target:
        raise UsageError(f"request target {target!r} holds a space or a control character")


class Heads:
    """Request heads for one pool: the client's own headers (``agent``) under each
    request's, the block of header lines built and checked once per distinct set."""

    def __init__(self, agent: Sequence[tuple[str, str]]) -> None:
        check_headers(agent, where="the client's headers")
        self._agent = tuple(agent)
        self._blocks: dict[Headers, tuple[bytes, bool, bool]] = {}
        self._authorities: dict[tuple[str, int, bool], str] = {}

    def block(self, headers: Headers) -> tuple[bytes, bool, bool]:
        """The header lines, whether they name the Host, and whether a Content-Type."""
        cached = self._blocks.get(headers)
        if cached is None:
            check_headers(headers, where="request headers")
            merged = {name.lower(): (name, value) for name, value in self._agent}
            merged.setdefault("accept", ("Accept", "*/*"))
            for name, value in headers:
                merged[name.lower()] = (name, value)  # the request's own win
            lines = b"".join(f"{name}: {value}\r\n".encode() for name, value in merged.values())
            cached = (lines, "host" in merged, "content-type" in merged)
            if len(self._blocks) > _MAX_CACHED:
                self._blocks.clear()
            self._blocks[headers] = cached
        return cached

    def authority(self, host: str, port: int, default_port: bool) -> str:
        """``host[:port]`` as the Host header and an absolute target write it."""
        key = (host, port, default_port)
        authority = self._authorities.get(key)
        if authority is None:
            name = f"[{host}]" if ":" in host else host  # an IPv6 literal
            authority = name if default_port else f"{name}:{port}"
            check_target("GET", authority)
            if "/" in authority or "@" in authority:
                raise UsageError(f"host {host!r} cannot be written in a request")
            if len(self._authorities) > _MAX_CACHED * 64:
                self._authorities.clear()
            self._authorities[key] = authority
        return authority

    def payload(
        self,
        method: str,
        target: str,
        authority: str,
        headers: Headers,
        data: bytes | Mapping[str, str] | None,
        extra: bytes = b"",
    ) -> bytes:
        """The request's bytes: request line, Host (unless the headers name one), the
        header block, ``extra`` lines (a proxy's credentials), framing, body."""
        check_target(method, target)
        block, names_host, names_type = self.block(headers)
        host = b"" if names_host else b"Host: %s\r\n" % authority.encode("ascii")
        head = b"%s %s HTTP/1.1\r\n%s%s%s" % (method.encode(), target.encode(), host, block, extra)
        if data is None:  # a method made to carry a body says it has none
            return head + (b"Content-Length: 0\r\n\r\n" if method in BODY_METHODS else b"\r\n")
        if isinstance(data, Mapping):
            body = urlencode(list(data.items())).encode()
            if not names_type:
                head += _FORM
        else:
            body = bytes(data)
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
