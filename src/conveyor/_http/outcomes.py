"""What one request's end says about its host: ok, refusal, server error, network failure.

Every per-host decision (concurrency, rate, pauses, the breaker, the report) starts from
this one classification, so that each signal goes to the one mechanism built for it:

- ``ok``: an answer that is not a refusal (2xx, 3xx, and 4xx such as 404: the host
  served the request, the page is what it is). Only these feed the latency signal:
  errors come back fast and would look like good latency (Netflix concurrency-limits
  #176), and a host that always times out must not look idle enough to grow (#137).
- ``refusal``: the host asked us to slow down (429, 503, and 403 when told so, for sites
  that answer bots with a 403). Refusals go to pacing, never to the breaker.
- ``server_error``: any other 5xx. The host is up but broken; the breaker counts them.
- ``net_fail``: no answer at all (``dns``, ``connect``, ``tls``, ``reset``, ``timeout``,
  the failure kinds of ``_errors.py``). The host may be down; the breaker counts these.

Other failure kinds (``too-large``, ``too-slow``, ``blocked``, ``bad-url``,
``too-many-redirects``) are our own decisions about an answer or a URL and say nothing
about the host: ``None``.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """The class of one request's end; the values are stable strings for reports."""

    OK = "ok"
    REFUSAL = "refusal"
    SERVER_ERROR = "server_error"
    NET_FAIL = "net_fail"


REFUSALS = frozenset({429, 503})
"""Statuses that mean "too many requests" by default."""

NET_FAIL_KINDS = frozenset({"dns", "connect", "tls", "reset", "timeout"})
"""Failure kinds (``FetchError.kind``) that mean the host did not answer."""


def refusal_statuses(*, refuse_403: bool = False) -> frozenset[int]:
    """The statuses read as refusals: 429 and 503, and 403 when ``refuse_403``."""
    return REFUSALS | {403} if refuse_403 else REFUSALS


def classify_status(status: int, refusals: frozenset[int] = REFUSALS) -> Outcome:
    """The class of an answer with this status (``refusals`` from ``refusal_statuses``)."""
    if status in refusals:
        return Outcome.REFUSAL
    if 500 <= status < 600:
        return Outcome.SERVER_ERROR
    return Outcome.OK


def classify_failure(kind: str) -> Outcome | None:
    """The class of a failure of this kind, or None when it says nothing of the host."""
    return Outcome.NET_FAIL if kind in NET_FAIL_KINDS else None
