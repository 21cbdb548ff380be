"""The fetch stage's details reach the display: a host paused by a 429 is named, live."""

from __future__ import annotations

import io

import conveyor as cv
from conveyor._http.stats import FetchReport
from conveyor.testing import RunningSite


async def test_a_paused_host_is_named_in_the_progress_line(site: RunningSite) -> None:
    stream = io.StringIO()
    progress = cv.Progress(mode="plain", plain_interval=0, stream=stream)
    urls = [site.url("/retry-after/pause?after=2")]
    urls += [site.url(f"/page/{i}?delay=0.5", host=1) for i in range(6)]
    result = await (
        cv.Pipeline(urls)
        .fetch(concurrency=4, retries=2, per_host=2)
        .run_async(observers=(progress,))
    )
    assert result.results == 7
    assert f"paused by the server (429 / Retry-After): {site.host(0)}" in stream.getvalue()
    # The details ride on every tick's stage statistics, and on the result's.
    fetch = result.stages[0]
    assert isinstance(fetch.details, FetchReport)
    assert fetch.details.requests == 8
    assert fetch.retried == 1
