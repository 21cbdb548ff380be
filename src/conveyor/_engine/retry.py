"""Retry policy: how many attempts, how long to wait between them, and on what."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .._errors import UsageError, failure_kind

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
    """

    attempts: int = 1
    backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    retry_on: RetryOn = field(default=(Exception,))

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise UsageError(f"Retry(attempts={self.attempts!r}) must be an int")
        if self.attempts < 1:
            raise UsageError(f"Retry(attempts={self.attempts}) must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0:
            raise UsageError("Retry backoff and max_backoff must not be negative")
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
        """Seconds to wait after ``attempt`` failed tries; a server's Retry-After wins if longer."""
        delay = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        if self.jitter:
            delay *= 1.0 + self.jitter * (2.0 * rand() - 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return max(0.0, float(delay))
