"""Retry-After read as a browser reads it, and the one wait rule both layers share."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor import Retry
from conveyor._engine.retry import wait_before_retry
from conveyor._http.retry import parse_retry_after, retry_delay
from conveyor.http import FetchConfig, HttpClient
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "value",
    [
        "²",  # str.isdigit() is true for it, float() is not
        "١٢",  # Arabic-Indic digits: digits to Python, not to HTTP
        "\uff11\uff12",  # fullwidth digits
        "-5",
        "+5",
        "1.5",
        "1e3",
        "",
        "   ",
        "soon",
        "5 s",
        "Mon, 32 Foo 2024 99:99:99 GMT",
        "Fri, 31 Dec 2100 23:59:59",  # a date without its zone
    ],
)
def test_an_unreadable_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_whitespace_around_a_value_is_allowed() -> None:
    assert parse_retry_after(" 7\t", now=NOW) == 7.0
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after(f"  {date} ", now=NOW) == pytest.approx(30.0, abs=0.01)


def test_huge_values_are_numbers_for_the_cap_to_cut() -> None:
    config = FetchConfig(max_retry_after=5, backoff=1, jitter=0)
    for value in ("99999999999999999999", "9" * 400, "9" * 5000):
        seconds = parse_retry_after(value, now=NOW)
        assert seconds is not None
        assert seconds > 1e18
        assert retry_delay(config, 1, seconds) == 5.0
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW)
    assert far is not None
    assert math.isfinite(far)


@given(st.text(max_size=40))
def test_parse_never_raises(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or seconds >= 0


def test_one_rule_the_longer_of_backoff_and_capped_retry_after() -> None:
    assert wait_before_retry(1.0, None, max_retry_after=60) == 1.0
    assert wait_before_retry(1.0, 10.0, max_retry_after=60) == 10.0  # never sooner
    assert wait_before_retry(8.0, 1.0, max_retry_after=60) == 8.0  # backoff still grows
    assert wait_before_retry(1.0, 3600.0, max_retry_after=60) == 60.0  # capped
    assert wait_before_retry(1.0, math.inf, max_retry_after=60) == 60.0
    assert wait_before_retry(1.0, math.nan, max_retry_after=60) == 1.0
    assert wait_before_retry(1.0, -5.0, max_retry_after=60) == 1.0


def test_both_layers_use_the_one_rule() -> None:
    config = FetchConfig(backoff=1, max_backoff=30, jitter=0, max_retry_after=5)
    policy = Retry(attempts=9, backoff=1, max_backoff=30, jitter=0, max_retry_after=5)
    for attempt in (1, 2, 3, 4, 5):
        for after in (None, 0.0, 2.0, 3600.0):
            assert retry_delay(config, attempt, after) == policy.next_delay(
                attempt, retry_after=after
            )
    assert policy.next_delay(4, retry_after=2.0) == 8.0  # the backoff, longer
    assert policy.next_delay(1, retry_after=3600.0) == 5.0  # the cap


async def test_a_503_with_a_digit_like_retry_after_is_retried(
    site: RunningSite, client: Client
) -> None:
    # adapt=False: an unreadable Retry-After is a bare refusal, which the controller
    # answers with a pause of its own (tests/polite).
    async with client(retries=3, adapt=False) as c:
        response = await c.fetch(site.url("/flaky/sup?fail=1&status=503&retry_after=²"))
    assert (response.status, response.attempts) == (200, 2)
    assert site.stats.hits["/flaky/sup"] == 2


async def test_a_429_with_a_negative_retry_after_is_retried(
    site: RunningSite, client: Client
) -> None:
    async with client(retries=3, adapt=False) as c:
        response = await c.fetch(site.url("/flaky/neg?fail=2&status=429&retry_after=-1"))
    assert (response.status, response.attempts) == (200, 3)
