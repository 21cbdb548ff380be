"""The public face: ``conveyor.http``, the one-off ``fetch``, the site as a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings

import orjson
import pytest

import conveyor.http as http
from conveyor._errors import UsageError
from conveyor.http import HttpClient, Request
from conveyor.testing import RunningSite

from .conftest import wait_for


async def test_one_off_fetch(site: RunningSite) -> None:
    response = await http.fetch(Request(site.url("/echo"), params={"q": "a b"}), retries=0)
    assert response.ok
    assert response.status == 200
    assert response.reason == "OK"
    echoed = response.json()
    assert echoed["query"] == {"q": "a b"}
    assert echoed["headers"]["User-Agent"].startswith("conveyor/")
    assert response.elapsed > 0
    assert response.attempts == 1
    orjson.dumps(response.__conveyor_record__())


async def test_headers_user_agent_and_json_body(site: RunningSite) -> None:
    async with HttpClient(headers={"X-Run": "1"}, user_agent="bot/2") as client:
        response = await client.fetch(
            Request(site.url("/echo"), method="PUT", headers={"X-Item": "7"}, json=[1, 2])
        )
    echoed = response.json()
    assert echoed["method"] == "PUT"
    assert echoed["body"] == "[1,2]"
    assert echoed["headers"]["X-Run"] == "1"
    assert echoed["headers"]["X-Item"] == "7"
    assert echoed["headers"]["User-Agent"] == "bot/2"
    assert echoed["headers"]["Content-Type"] == "application/json"


async def test_fetch_outside_the_context_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="async with"):
        await HttpClient().fetch("http://127.0.0.1/")


async def test_session_is_closed_with_no_warning(site: RunningSite) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with HttpClient() as client:
            await client.fetch(site.url("/page/1"))
        await asyncio.sleep(0)


async def test_cancelling_a_fetch_releases_its_slots(site: RunningSite) -> None:
    async with HttpClient(per_host=1, concurrency=1) as client:
        slow = asyncio.ensure_future(client.fetch(site.url("/page/1?delay=5")))
        await wait_for(lambda: site.stats.in_flight[site.host(0)] > 0)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert client.statistics().in_flight == 0
        assert (await client.fetch(site.url("/page/2"))).status == 200


def test_the_public_names() -> None:
    for name in ("HttpClient", "FetchConfig", "Request", "Response", "fetch", "HttpStats"):
        assert hasattr(http, name)


def test_site_runs_as_a_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor.testing.site", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.split()[-1]
        response = asyncio.run(http.fetch(base + "/page/3"))
        assert "<title>Page 3</title>" in response.text
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "Warning" not in err
