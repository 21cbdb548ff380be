"""When to try again and how long to wait: pure arithmetic, clocks passed in."""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from .._errors import FetchError
from .config import FetchConfig

# Methods that may be repeated without changing the outcome (RFC 9110 9.2.2), the set
# urllib3's Retry allows by default. Others are retried only when nothing was sent.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, in either form, or None.

    Args:
        value: the header: delay-seconds (``"120"``) or an HTTP date.
        now: the current wall-clock time (``time.time()``), to turn a date into a delay.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; be lenient with sloppy servers
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    config: FetchConfig, attempt: int, *, rand: Callable[[], float] = random.random
) -> float:
    """The wait after ``attempt`` failed tries: exponential, capped, with jitter."""
    delay = min(config.max_backoff, config.backoff * 2.0 ** (attempt - 1))
    return max(0.0, delay * (1.0 + config.jitter * (2.0 * rand() - 1.0)))


def retry_delay(
    config: FetchConfig,
    attempt: int,
    retry_after: float | None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before the next try: the server's Retry-After (capped) wins over backoff."""
    if retry_after is not None:
        return min(retry_after, config.max_retry_after)
    return backoff_delay(config, attempt, rand=rand)


def status_is_retryable(config: FetchConfig, method: str, status: int) -> bool:
    """Retry idempotent methods; others only on 429 and 503, where the server did not act."""
    if status not in config.retry_statuses:
        return False
    return method.upper() in IDEMPOTENT or status in (429, 503)


def error_is_retryable(config: FetchConfig, method: str, exc: FetchError) -> bool:
    if exc.kind not in config.retry_kinds:
        return False
    # A reset or a timeout may come after the server acted on the request: repeat only
    # what is safe to repeat. A connect error means nothing was sent.
    return exc.kind in ("connect", "dns") or method.upper() in IDEMPOTENT
