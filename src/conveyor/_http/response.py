"""``Response``: what a fetch returns, HTTP error statuses included.

It is a frozen value: safe to hand to threads, picklable for process stages (headers are
sent as pairs and rebuilt), and it turns itself into a small JSON-able record for sinks
through ``__conveyor_record__`` so that ``_io`` never needs to know about HTTP.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .charset import decode
from .request import Request

# Headers about how the body travelled, not what it is: a WARC record stores it decoded.
_TRANSFER_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})


@dataclass(frozen=True, eq=False)
class Response:
    """One fetched URL.

    Attributes:
        url: the URL asked for.
        final_url: where the redirects ended.
        status: the HTTP status; 4xx and 5xx are responses too (see ``ok``).
        reason: the status line's reason phrase.
        headers: the final response's headers, case-insensitive, multi-valued.
        body: the decoded (decompressed) body; empty when it was saved to ``path``.
        elapsed: seconds from the first attempt to the end of the body, waits included.
        attempts: how many tries it took (1 when the first one answered).
        redirects: the URLs that answered with a redirect, in order.
        path: the file the body was streamed to, with ``save_to``.
        request: the request this answers.
        raw_bytes: bytes read from the network for the body (before decompression).
    """

    url: str
    final_url: str
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes
    elapsed: float
    attempts: int = 1
    redirects: tuple[str, ...] = ()
    path: Path | None = None
    request: Request | None = field(default=None, repr=False)
    raw_bytes: int = 0

    @classmethod
    def build(cls, **fields: Any) -> Response:
        """The client's constructor: every field given, no per-field ``__setattr__``.

        A frozen dataclass's ``__init__`` pays ``object.__setattr__`` once per field; on
        the hot path of every fetch one ``__dict__.update`` is several times cheaper.
        """
        response = object.__new__(cls)
        response.__dict__.update(fields)
        return response

    @property
    def ok(self) -> bool:
        """True for 1xx, 2xx and 3xx statuses (as requests and aiohttp define it)."""
        return self.status < 400

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``"text/html"``)."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @functools.cached_property
    def _decoded(self) -> tuple[str, str]:
        return decode(self.content(), self.headers.get("Content-Type"))

    @property
    def text(self) -> str:
        """The body as text: declared charset, then ``<meta charset>``, then detection."""
        return self._decoded[0]

    @property
    def encoding(self) -> str:
        """The charset ``text`` was decoded with."""
        return self._decoded[1]

    def content(self) -> bytes:
        """The body, read back from ``path`` when it was saved to a file."""
        if self.path is not None and not self.body:
            return self.path.read_bytes()
        return self.body

    def json(self) -> Any:
        """The body parsed as JSON (``orjson``); raises ``ValueError`` when it is not JSON."""
        return orjson.loads(self.content())

    def __conveyor_record__(self) -> dict[str, Any]:
        """A JSON-able summary for sinks (the body itself is left out)."""
        record: dict[str, Any] = {
            "url": self.url,
            "final_url": self.final_url,
            "status": self.status,
            "content_type": self.content_type,
            "bytes": len(self.body) if self.path is None else self.raw_bytes,
            "elapsed_ms": round(self.elapsed * 1000, 3),
            "attempts": self.attempts,
        }
        if self.path is not None:
            record["path"] = str(self.path)
        return record

    def __conveyor_warc__(self) -> dict[str, Any]:
        """The exchange for a WARC sink (``conveyor._io.sinks.warc`` describes the keys).

        The body is stored as it was decoded (decompressed, de-chunked), so the headers
        that described the transfer (``Content-Encoding``, ``Transfer-Encoding``,
        ``Content-Length``) are replaced by a ``Content-Length`` of the stored body.
        The request is the one made to ``final_url``: its line, ``Host`` and this
        request's own headers (the client adds its ``User-Agent`` and ``Accept`` too).
        """
        url = URL(self.final_url)
        request = self.request
        host = url.raw_host or ""
        if ":" in host:
            host = f"[{host}]"
        if not url.is_default_port():
            host = f"{host}:{url.port}"
        method = request.method if request is not None else "GET"
        request_headers = [("Host", host), *(request.header_pairs if request is not None else ())]
        body = self.content()
        headers = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in _TRANSFER_HEADERS
        ]
        headers.append(("Content-Length", str(len(body))))
        return {
            "target": self.final_url,
            "request_line": f"{method} {url.raw_path_qs or '/'} HTTP/1.1",
            "request_headers": request_headers,
            "request_body": b"",
            "status_line": f"{self.status} {self.reason}".rstrip(),
            "protocol": "HTTP/1.1",
            "headers": headers,
            "body": body,
            "date": None,
        }

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.final_url} {len(self.body)} bytes>"

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k != "_decoded"}
        state["headers"] = list(self.headers.items())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["headers"] = CIMultiDictProxy(CIMultiDict(state["headers"]))
        for key, value in state.items():
            object.__setattr__(self, key, value)
