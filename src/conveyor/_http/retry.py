"""When to try again and how long to wait: pure arithmetic, clocks passed in."""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from .._engine.retry import backoff_delay as _backoff_delay
from .._engine.retry import wait_before_retry
from .._errors import FetchError
from .config import FetchConfig

# Methods that may be repeated without changing the outcome (RFC 9110 9.2.2), the set
# urllib3's Retry allows by default. Others are retried only when nothing was sent.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

# Added to a Retry-After date's wait: the date is a time not to come before, turned into a
# wait against a wall clock reading and waited out on the monotonic clock. The controller
# reads it as of the answer's own time (``HostController.to_wall``: a reading taken later,
# by a process preempted in between, made a busy run's retry early by the gap); the
# margin covers what is left (the test site once counted a retry microseconds early).
DATE_MARGIN = 0.005


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in either form, or None.

    A value that is neither form (``"soon"``, ``"-5"``, ``"1.5"``, ``"²"``) is None: it is
    ignored, as a browser ignores it, and the usual backoff applies. Only ASCII digits are
    a delay (``str.isdigit`` also takes ``"²"`` and other digit-like characters); a huge
    one is returned as it is, finite or not, for the caller's cap to cut.

    Args:
        value: the header: delay-seconds (``"120"``) or an HTTP date.
        now: the current wall-clock time (``time.time()``), to turn a date into a delay.
    """
    if value is None:
        return None
    value = value.strip(" \t")  # HTTP's own whitespace around a field value (RFC 9110 5.5)
    if value.isascii() and value.isdigit():
        return float(value)  # never raises: thousands of digits are inf, not an error
    if not value.isascii():
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # an HTTP date is always GMT; be lenient with sloppy servers
            return None
        wait = when.timestamp() - now
        return wait + DATE_MARGIN if wait > 0 else 0.0
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff_delay(
    config: FetchConfig, attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """The wait after ``attempt`` failed tries: exponential, capped, with jitter."""
    return _backoff_delay(
        attempt,
        backoff=config.backoff,
        max_backoff=config.max_backoff,
        jitter=config.jitter,
        rand=rand,
    )


def retry_delay(
    config: FetchConfig,
    attempt: int,
    retry_after: float | None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before the next try: the engine's one rule (``wait_before_retry``), the
    longer of the backoff and the server's Retry-After cut to ``max_retry_after``."""
    return wait_before_retry(
        backoff_delay(config, attempt, rand=rand),
        retry_after,
        max_retry_after=config.max_retry_after,
    )


def status_is_retryable(config: FetchConfig, method: str, status: int) -> bool:
    """Retry idempotent methods; others only on 429 and 503, where the server did not act."""
    if status not in config.retry_statuses:
        return False
    return method.upper() in IDEMPOTENT or status in (429, 503)


def error_is_retryable(config: FetchConfig, method: str, exc: FetchError) -> bool:
    if exc.kind not in config.retry_kinds:
        return False
    # A reset or a timeout may come after the server acted on the request: repeat only
    # what is safe to repeat. A connect error means nothing was sent, and so does a
    # proxy's refusal (the request never reached the origin).
    return exc.kind in ("connect", "dns", "proxy") or method.upper() in IDEMPOTENT
