"""``Request``: what to fetch, when a bare URL string is not enough."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
from yarl import URL

from .._errors import BadURL, UsageError
from .config import HeadersLike, normalise_headers

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

Params = Mapping[str, str | int | float] | Sequence[tuple[str, str | int | float]]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request.

    Args:
        url: an ``http`` or ``https`` URL.
        method: the HTTP method, upper-cased.
        headers: headers for this request; they win over the run's ``headers``.
        params: query parameters added to the URL.
        json: a value sent as a JSON body (``orjson``); None sends no body.
        data: a body: bytes, str (UTF-8), or a dict sent as a form.
        meta: anything of yours, carried unchanged to ``Response.request.meta``.
    """

    url: str
    method: str = "GET"
    headers: HeadersLike | None = field(default=())
    params: Params | None = None
    json: Any = None
    data: bytes | str | Mapping[str, str] | None = None
    meta: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise UsageError(f"Request(url={self.url!r}): the URL must be a str")
        method = self.method.upper() if isinstance(self.method, str) else self.method
        if method not in METHODS:
            raise UsageError(f"Request(method={self.method!r}): use one of {sorted(METHODS)}")
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "headers", normalise_headers(self.headers, name="Request.headers"))
        if self.json is not None and self.data is not None:
            raise UsageError("Request: give json= or data=, not both")
        if self.data is not None and not isinstance(self.data, bytes | str | Mapping):
            raise UsageError(f"Request(data=...) must be bytes, str or a dict, got {self.data!r}")

    @classmethod
    def coerce(cls, value: object) -> Request:
        """A ``Request`` from one input item; anything else is that item's ``bad-url``."""
        if isinstance(value, Request):
            return value
        if isinstance(value, str):
            # The common case, on every fetch: a plain GET needs none of the checks.
            request = object.__new__(cls)
            setattr_ = object.__setattr__
            setattr_(request, "url", value)
            setattr_(request, "method", "GET")
            setattr_(request, "headers", ())
            for name in _NONE_FIELDS:
                setattr_(request, name, None)
            return request
        if isinstance(value, URL):
            return cls(str(value))
        raise BadURL(f"fetch got {value!r}: give a URL string or a conveyor.http.Request(url, ...)")

    @property
    def header_pairs(self) -> tuple[tuple[str, str], ...]:
        return self.headers if isinstance(self.headers, tuple) else ()

    def body(self) -> tuple[bytes | Mapping[str, str] | None, str | None]:
        """The payload to send and the Content-Type it implies (None: leave it to aiohttp)."""
        if self.json is not None:
            return orjson.dumps(self.json), "application/json"
        if isinstance(self.data, str):
            return self.data.encode(), "text/plain; charset=utf-8"
        return self.data, None


_NONE_FIELDS = ("params", "json", "data", "meta")
assert ("url", "method", "headers", *_NONE_FIELDS) == tuple(f.name for f in fields(Request))
