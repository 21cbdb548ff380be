"""Retry policy: how many attempts, how long to wait between them, and on what.

The wait rule lives here, once, for every layer (the fetch stage imports it):

- the backoff is exponential from ``backoff``, capped at ``max_backoff``, with jitter;
- a server's ``Retry-After`` is honoured, cut to ``max_retry_after``, and the wait is never
  shorter than it: the wait is the longer of the backoff and the capped Retry-After.

Why the longer of the two: Retry-After is a floor the server asked for ("not before"), not
a promise that an earlier retry is welcome, so coming back sooner breaks the rule; and a
short Retry-After (``0``, ``1``) on the fifth failure must not undo the backoff that keeps
many clients from retrying in step. The cap keeps a server from parking an item for an
hour; the wait is never longer than ``max(max_backoff, max_retry_after)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .._errors import UsageError, failure_kind


def backoff_delay(
    attempt: int,
    *,
    backoff: float,
    max_backoff: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after ``attempt`` failed tries: ``backoff`` doubled each time, capped at
    ``max_backoff``, then moved up or down by a random share ``jitter`` of itself."""
    delay = min(max_backoff, backoff * 2.0 ** (attempt - 1))
    if jitter:
        delay *= 1.0 + jitter * (2.0 * rand() - 1.0)
    return max(0.0, float(delay))


def wait_before_retry(
    backoff_wait: float, retry_after: float | None, *, max_retry_after: float
) -> float:
    """The one rule: the longer of the backoff and the server's Retry-After cut to
    ``max_retry_after`` (see the module docstring for why)."""
    if retry_after is None or retry_after != retry_after:  # none, or NaN: backoff alone
        return max(0.0, backoff_wait)
    return max(0.0, backoff_wait, min(retry_after, max_retry_after))


RetryOn = tuple[type[BaseException] | str, ...] | Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class Retry:
    """How a stage retries a failing item.

    Args:
        attempts: total tries per item, the first included (``retries=3`` means 4 attempts).
        backoff: the wait before the second attempt, in seconds; doubled after each failure.
        max_backoff: the longest wait between two attempts.
        jitter: a random share of the wait (0.0 to 1.0) added or removed, so that many items
            that failed together do not retry together.
        retry_on: exception types or failure kinds (``"timeout"``, ``"worker-crashed"``) to
            retry, or a predicate taking the exception. By default every ``Exception``.
        max_retry_after: the longest ``retry_after`` (seconds, an attribute of the exception
            raised, as the fetch stage's errors carry a server's ``Retry-After``) honoured;
            longer ones are cut to it. The wait is never shorter than the capped value.
    """

    attempts: int = 1
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    retry_on: RetryOn = field(default=(Exception,))
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise UsageError(f"Retry(attempts={self.attempts!r}) must be an int")
        if self.attempts < 1:
            raise UsageError(f"Retry(attempts={self.attempts}) must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.max_retry_after < 0:
            raise UsageError("Retry backoff, max_backoff and max_retry_after must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise UsageError(f"Retry(jitter={self.jitter}) must be between 0 and 1")

    @classmethod
    def coerce(cls, retries: int | Retry | None) -> Retry:
        """Accept ``retries=N`` (N retries after the first attempt) or a ``Retry``."""
        if retries is None:
            return cls()
        if isinstance(retries, Retry):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UsageError(
                f"retries={retries!r}: give a number of retries (0 or more) "
                "or a conveyor.Retry(attempts=..., backoff=...)"
            )
        return cls(attempts=retries + 1)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether to try again after ``attempt`` tries ended with ``exc``."""
        if attempt >= self.attempts:
            return False
        if callable(self.retry_on) and not isinstance(self.retry_on, tuple):
            return bool(self.retry_on(exc))
        kind = failure_kind(exc)
        for rule in self.retry_on:
            if isinstance(rule, str):
                if rule == kind:
                    return True
            elif isinstance(exc, rule):
                return True
        return False

    def next_delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after ``attempt`` failed tries: the longer of the backoff and
        ``retry_after`` cut to ``max_retry_after`` (:func:`wait_before_retry`)."""
        delay = backoff_delay(
            attempt,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            jitter=self.jitter,
            rand=rand,
        )
        return wait_before_retry(delay, retry_after, max_retry_after=self.max_retry_after)
