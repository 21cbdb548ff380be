"""``conveyor.http``: the HTTP client of the fetch stage, usable on its own.

::

    from conveyor.http import HttpClient

    async with HttpClient(concurrency=50, per_host=4, retries=2) as client:
        response = await client.fetch("https://example.org/")
        print(response.status, response.text[:80])

Inside a pipeline, ``Pipeline.fetch(**options)`` takes the same options and opens one
client per run. Errors are the ``conveyor.FetchError`` family (``kind`` says which).
"""

from __future__ import annotations

from typing import Any

from ._errors import (
    BadURL,
    Blocked,
    ConnectError,
    ConnectionReset,
    DecodeError,
    DNSError,
    FetchError,
    FetchTimeout,
    ProxyError,
    TLSError,
    TooLarge,
    TooManyRedirects,
    TooSlow,
)
from ._http.client import HttpClient
from ._http.config import FetchConfig
from ._http.request import Request
from ._http.response import Response
from ._http.stats import HttpStats

__all__ = [
    "BadURL",
    "Blocked",
    "ConnectError",
    "ConnectionReset",
    "DNSError",
    "DecodeError",
    "FetchConfig",
    "FetchError",
    "FetchTimeout",
    "HttpClient",
    "HttpStats",
    "ProxyError",
    "Request",
    "Response",
    "TLSError",
    "TooLarge",
    "TooManyRedirects",
    "TooSlow",
    "fetch",
]


async def fetch(url_or_request: str | Request, **options: Any) -> Response:
    """Fetch one URL with a client of its own (opened and closed around this call).

    For more than a handful of URLs, share one ``HttpClient``: it keeps connections open
    and applies the limits across requests.
    """
    async with HttpClient(**options) as client:
        return await client.fetch(url_or_request)
