"""The one wait rule between retries: the longer of the backoff and a capped Retry-After."""

from __future__ import annotations

import math
from typing import Any

import pytest

import conveyor as cv
from conveyor._engine.events import ItemRetrying
from conveyor._engine.retry import backoff_delay, wait_before_retry


class SlowDown(Exception):
    """What a user's own HTTP call might raise: it carries the server's Retry-After."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"slow down for {retry_after} s")
        self.retry_after = retry_after


def test_the_rule() -> None:
    assert wait_before_retry(0.5, None, max_retry_after=60) == 0.5
    assert wait_before_retry(0.5, 3.0, max_retry_after=60) == 3.0  # never sooner than asked
    assert wait_before_retry(8.0, 1.0, max_retry_after=60) == 8.0  # the backoff still grows
    assert wait_before_retry(0.5, 1e9, max_retry_after=60) == 60.0
    assert wait_before_retry(0.5, math.inf, max_retry_after=60) == 60.0
    assert wait_before_retry(0.5, math.nan, max_retry_after=60) == 0.5
    assert wait_before_retry(-1.0, -1.0, max_retry_after=60) == 0.0


def test_backoff_doubles_caps_and_jitters() -> None:
    plain = {"backoff": 1.0, "max_backoff": 5.0, "jitter": 0.0}
    assert [backoff_delay(a, **plain) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jitter = {"backoff": 1.0, "max_backoff": 5.0, "jitter": 0.5}
    assert backoff_delay(1, **jitter, rand=lambda: 0.0) == 0.5
    assert backoff_delay(1, **jitter, rand=lambda: 1.0) == 1.5


def test_retry_caps_retry_after_and_checks_its_cap() -> None:
    policy = cv.Retry(attempts=3, backoff=0.0, jitter=0.0, max_retry_after=2.0)
    assert policy.next_delay(1, retry_after=30.0) == 2.0
    assert policy.next_delay(1, retry_after=1.0) == 1.0
    assert cv.Retry().max_retry_after == 60.0
    with pytest.raises(cv.UsageError, match="max_retry_after"):
        cv.Retry(max_retry_after=-1)


def test_a_stage_waits_out_an_exceptions_retry_after() -> None:
    calls: dict[int, int] = {}

    def flaky(item: int) -> int:
        calls[item] = calls.get(item, 0) + 1
        if calls[item] == 1:
            raise SlowDown(0.05 if item else 3600.0)
        return item

    events: list[Any] = []
    policy = cv.Retry(attempts=2, backoff=0.001, jitter=0.0, max_retry_after=0.1)
    result = cv.Pipeline([0, 1]).map(flaky, retries=policy).run(observers=(events.append,))
    assert result.results == 2
    delays = {e.key: e.delay for e in events if isinstance(e, ItemRetrying)}
    assert sorted(delays.values()) == [0.05, 0.1]  # as asked; 3600 s cut to the cap
