"""Retries against the live test site: what is retried, how often, and Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from conveyor._errors import ConnectionReset
from conveyor.http import HttpClient, Request
from conveyor.testing import RunningSite

Client = Callable[..., AbstractAsyncContextManager[HttpClient]]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_fail_twice_then_succeed(site: RunningSite, client: Client, status: int) -> None:
    # adapt=False: today's retries; the controller would pause the host for a bare
    # refusal (tests/polite covers that).
    async with client(retries=3, adapt=False) as c:
        response = await c.fetch(site.url(f"/flaky/s{status}?fail=2&status={status}"))
    assert response.status == 200
    assert response.attempts == 3
    assert site.stats.hits[f"/flaky/s{status}"] == 3


async def test_resets_are_retried(site: RunningSite, client: Client) -> None:
    async with client(retries=3) as c:
        response = await c.fetch(site.url("/flaky/r?fail=2&mode=reset"))
    assert (response.status, response.attempts) == (200, 3)


async def test_exhausted_retries_return_the_last_response(
    site: RunningSite, client: Client
) -> None:
    async with client(retries=2) as c:
        response = await c.fetch(site.url("/flaky/x?fail=99&status=500"))
    assert (response.status, response.attempts, response.ok) == (500, 3, False)
    assert site.stats.hits["/flaky/x"] == 3


async def test_exhausted_retries_on_errors_raise_with_attempts(
    site: RunningSite, client: Client
) -> None:
    async with client(retries=2) as c:
        with pytest.raises(ConnectionReset) as info:
            await c.fetch(site.url("/reset"))
    assert info.value.attempts == 3  # type: ignore[attr-defined]
    assert site.stats.hits["/reset"] == 3


@pytest.mark.parametrize("path", ["/status/404", "/status/400", "/status/501"])
async def test_other_statuses_are_answers_not_retried(
    site: RunningSite, client: Client, path: str
) -> None:
    async with client(retries=3) as c:
        response = await c.fetch(site.url(path))
    assert response.attempts == 1
    assert site.stats.hits[path] == 1


async def test_retry_statuses_are_configurable(site: RunningSite, client: Client) -> None:
    async with client(retries=3, retry_statuses={404}) as c:
        response = await c.fetch(site.url("/flaky/n?fail=1&status=404"))
    assert (response.status, response.attempts) == (200, 2)
    async with client(retries=3, retry_statuses=()) as c:
        response = await c.fetch(site.url("/flaky/m?fail=1&status=503"))
    assert (response.status, response.attempts) == (503, 1)


async def test_post_is_not_repeated_after_a_500(site: RunningSite, client: Client) -> None:
    async with client(retries=3) as c:
        response = await c.fetch(Request(site.url("/flaky/p?fail=1&status=500"), method="POST"))
    assert (response.status, response.attempts) == (500, 1)


@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_retry_after_is_honoured(site: RunningSite, client: Client, form: str) -> None:
    async with client(retries=2) as c:
        response = await c.fetch(site.url(f"/retry-after/{form}?after=1&form={form}"))
    assert (response.status, response.attempts) == (200, 2)
    # The server counts a retry that came before the time it asked for.
    assert site.stats.state.get(f"retry-after/{form}/early", 0) == 0


async def test_retry_after_is_capped(site: RunningSite, client: Client) -> None:
    # adapt=False: max_retry_after caps the host's pause too (the controller honours a
    # Retry-After in full, up to max_pause).
    async with client(retries=1, max_retry_after=0.05, adapt=False) as c:
        response = await c.fetch(site.url("/retry-after/cap?after=3600"))
    assert (response.status, response.attempts) == (200, 2)


async def test_a_429_slows_the_host_down_for_everyone(site: RunningSite, client: Client) -> None:
    # per_host=1: the other requests queue behind the one that gets the 429; without the
    # shared pause they would go while it waits out its Retry-After.
    async with client(retries=2, per_host=1) as c:
        responses = await asyncio.gather(*(c.fetch(site.url(f"/throttled/{i}")) for i in range(6)))
        slowed = c.statistics().slowed_hosts
    assert [r.status for r in responses] == [200] * 6
    assert site.stats.state.get("throttled-early", 0) == 0
    assert site.host(0) in slowed
    assert site.stats.max_in_flight[site.host(0)] == 1


async def test_statistics_count_requests_and_retries(site: RunningSite, client: Client) -> None:
    async with client(retries=3, adapt=False) as c:
        await c.fetch(site.url("/flaky/st?fail=2"))
        await c.fetch(site.url("/chain/2"))
        stats = c.statistics()
    assert (stats.fetches, stats.responses, stats.retries) == (2, 2, 2)
    assert stats.requests == 3 + 3
    assert stats.redirects == 2
    assert stats.in_flight == 0


def test_options_reach_the_config() -> None:
    assert HttpClient(retries=5, per_host=2).config.retries == 5
